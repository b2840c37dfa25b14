"""Fresh virtual environments for packaged functions (the packaging test, the cold-start bench).

A venv is built from a package's ``requirements.txt`` alone, with ``pip install --no-index
--find-links WHEELHOUSE``: nothing of the development environment leaks in, and a pin set
that is not closed fails the install. The wheelhouse (one folder per Python version, under
``.aiprod/wheelhouse`` by default) is filled once with ``pip download --no-deps`` of exactly
the pins, and only what is missing is fetched again, so later runs are offline.

Functions with identical pins share one venv (the router and the outcome handler do).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiprod_tools.exceptions import VenvBuildError
from aiprod_tools.paths import REPO_ROOT

DEFAULT_WHEELHOUSE = REPO_ROOT / ".aiprod" / "wheelhouse"
PYTHON_CANDIDATES = (
    "python{v}",
    "/usr/bin/python{v}",
    "/usr/local/bin/python{v}",
    "~/.pyenv/versions/{v}*/bin/python{v}",
)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def find_python(version: str) -> str | None:
    """An interpreter of ``version`` (``"3.12"``) on this machine, or None."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    for pattern in PYTHON_CANDIDATES:
        candidate = os.path.expanduser(pattern.format(v=version))
        found = sorted(glob.glob(candidate)) if "*" in candidate else [shutil.which(candidate)]
        for path in filter(None, found):
            if _reports_version(path, version):
                return path
    return None


def read_pins(requirements: Path) -> dict[str, str]:
    """``name → version`` of a pinned requirements file (comments ignored)."""
    pins = {}
    for line in requirements.read_text().splitlines():
        match = PIN.match(line.strip())
        if match:
            pins[_canonical(match.group(1))] = match.group(2)
    return pins


class Wheelhouse:
    """A folder of wheels for one Python version, filled on demand from the index."""

    def __init__(self, python: str, root: Path = DEFAULT_WHEELHOUSE):
        self.python = python
        self.path = root / f"py{_version_of(python)}"
        self.path.mkdir(parents=True, exist_ok=True)

    def missing(self, pins: Mapping[str, str]) -> dict[str, str]:
        have = {_wheel_key(Path(name).name) for name in os.listdir(self.path)}
        return {n: v for n, v in pins.items() if (_canonical(n), _normal_version(v)) not in have}

    def ensure(self, pins: Mapping[str, str], timeout_s: float = 600.0) -> None:
        """Download (wheels only, no dependencies) every pin not already here."""
        wanted = self.missing(pins)
        if not wanted:
            return
        argv = [
            sys.executable,
            "-m",
            "pip",
            "--python",
            self.python,
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(self.path),
            *(f"{name}=={version}" for name, version in sorted(wanted.items())),
        ]
        _run(argv, "download wheels", timeout_s)
        still = self.missing(pins)
        if still:
            raise VenvBuildError(f"no wheel was downloaded for {sorted(still)}")


def build_venv(python: str, requirements: Path, wheelhouse: Wheelhouse, dest: Path) -> Path:
    """A fresh venv at ``dest`` with exactly ``requirements`` installed; its interpreter."""
    if dest.exists():
        shutil.rmtree(dest)
    _run([python, "-m", "venv", "--without-pip", str(dest)], "create a venv", 120)
    venv_python = dest / "bin" / "python"
    argv = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(venv_python),
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        str(wheelhouse.path),
        "--only-binary=:all:",
        "-r",
        str(requirements),
    ]
    _run(argv, f"install {requirements}", 600)
    return venv_python


def build_venvs(
    requirements: Mapping[str, Path], python: str, wheelhouse: Wheelhouse, root: Path
) -> dict[str, Path]:
    """One venv per distinct pin set (``name → requirements.txt``); ``name → interpreter``."""
    by_pins: dict[str, list[str]] = {}
    for name, path in requirements.items():
        by_pins.setdefault(pin_digest(read_pins(path)), []).append(name)
    wheelhouse.ensure(_union(read_pins(p) for p in requirements.values()))

    def build(digest: str) -> Path:
        first = by_pins[digest][0]
        return build_venv(python, requirements[first], wheelhouse, root / digest[:12])

    with ThreadPoolExecutor(max_workers=2) as pool:
        built = dict(zip(by_pins, pool.map(build, by_pins), strict=True))
    return {name: built[digest] for digest, names in by_pins.items() for name in names}


def pin_digest(pins: Mapping[str, str]) -> str:
    text = "\n".join(f"{name}=={version}" for name, version in sorted(pins.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for a venv's interpreter: nothing of this venv or its settings."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    return {**env, **(extra or {})}


def _union(pin_sets: Iterable[Mapping[str, str]]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for pins in pin_sets:
        for name, version in pins.items():
            if merged.setdefault(name, version) != version:
                raise VenvBuildError(f"{name} is pinned to {merged[name]} and {version}")
    return merged


def _run(argv: list[str], what: str, timeout_s: float) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VenvBuildError(f"could not {what}: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).splitlines()[-15:])
        raise VenvBuildError(f"could not {what} (exit {done.returncode}):\n{tail}")


def _reports_version(python: str, version: str) -> bool:
    try:
        return _version_of(python) == version
    except VenvBuildError:
        return False


def _version_of(python: str) -> str:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VenvBuildError(f"{python} does not run: {exc}") from exc
    if done.returncode != 0:
        raise VenvBuildError(f"{python} does not run: {done.stderr.strip()}")
    return done.stdout.strip()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _normal_version(version: str) -> str:
    return version.lower()


def _wheel_key(filename: str) -> tuple[str, str] | None:
    """``(name, version)`` of a wheel file name (``grpcio-1.85.1-cp312-...whl``)."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[:-4].split("-")
    return (_canonical(parts[0]), _normal_version(parts[1])) if len(parts) >= 5 else None
