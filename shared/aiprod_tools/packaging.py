"""Deployable folders, one per function of the topology (``aiprod package --out DIR``).

Each folder is what ``gcloud functions deploy --source`` uploads: the function's ``main.py``,
a copy of ``shared/aiprod``, the runtime (no tests, no caches, and no tooling: this package,
``aiprod_tools``, is never copied), and a ``requirements.txt`` with exactly the distributions
that function needs, each pinned to the version installed here.

How the pins are resolved (no index is asked, so packaging is offline and repeatable): the
function's optional-dependency groups are read from ``pyproject.toml``; each requirement is
looked up with ``importlib.metadata`` in this environment, and its own ``Requires-Dist`` are
followed, markers evaluated for the deployed runtime (CPython 3.12 on Linux), extras
included. An installed version that does not satisfy a specifier, or a needed distribution
that is not installed, stops the packaging with the reason: ``make`` installs every group
from ``requirements.lock``. Every pin must also be the lock's version (``lockfile``), so the
folders of one commit pin the same versions wherever they are built. The packaging test
then installs each folder's pins into a fresh virtual environment with ``--no-index``, which
proves the set is closed.

Only the development tooling imports this module (``packaging`` is a dev dependency).
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from aiprod import topology
from aiprod_tools import lockfile
from aiprod_tools.exceptions import PackagingError
from aiprod_tools.paths import REPO_ROOT

RUNTIME_PYTHON = "3.12"  # gcloud functions deploy --runtime=python312
BASE_GROUPS = ("gcp",)
# A function that renders on a provider also copies the output to the bucket.
RENDER_GROUPS = ("storage",)
SELF = "aiprod"
COPY_IGNORE = ("__pycache__", "*.pyc", "*.pyo", "tests", "test_*.py", "*_test.py", "*.egg-info")
GCLOUDIGNORE = "# aiprod package: upload the folder as written\n__pycache__/\n*.pyc\n"


@dataclass(frozen=True)
class Package:
    """One written folder: the function, the groups it installs and its pins."""

    function: str
    path: Path
    groups: tuple[str, ...]
    pins: Mapping[str, str]

    @property
    def requirements(self) -> Path:
        return self.path / "requirements.txt"


def groups_for(spec: topology.FunctionSpec) -> tuple[str, ...]:
    """The pyproject optional-dependency groups a function installs, in a stable order."""
    renders = any(extra in topology.BACKENDS for extra in spec.extras)
    wanted = (*BASE_GROUPS, *spec.extras, *(RENDER_GROUPS if renders else ()))
    return tuple(dict.fromkeys(wanted))


def deployed_name(prefix: str, function: str) -> str:
    """The Cloud Functions (and Cloud Run service) name: ``aiprod-route-job``.

    Hyphens, because the gen2 function's Cloud Run service (and its deterministic run.app
    URL, which the push subscriptions target) allows no underscore.
    """
    return f"{prefix}{function.replace('_', '-')}"


def target_environment(python_version: str = RUNTIME_PYTHON) -> dict[str, str]:
    """Marker variables of the deployed runtime (Cloud Functions: CPython on x86-64 Linux)."""
    from packaging.markers import default_environment

    env = default_environment()
    env.update(
        implementation_name="cpython",
        os_name="posix",
        platform_machine="x86_64",
        platform_python_implementation="CPython",
        platform_system="Linux",
        sys_platform="linux",
        python_version=python_version,
        python_full_version=f"{python_version}.0",
        implementation_version=f"{python_version}.0",
    )
    return env


def group_requirements(groups: Sequence[str], pyproject: Path) -> list[str]:
    """The project's own dependencies plus each group's, ``aiprod[...]`` references expanded."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    found, pending, seen = list(project.get("dependencies", [])), list(groups), set()
    while pending:
        group = pending.pop(0)
        if group in seen:
            continue
        seen.add(group)
        if group not in optional:
            raise PackagingError(f"{pyproject.name} has no optional-dependency group {group!r}")
        for line in optional[group]:
            inner = _self_reference(line)
            if inner is None:
                found.append(line)
            else:
                pending.extend(inner)
    return found


def resolve(requirements: Iterable[str], environment: Mapping[str, str]) -> dict[str, str]:
    """Every distribution the requirements pull in → its installed version (closed set)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, tuple[str, str]] = {}
    extras_done: dict[str, set[str]] = {}
    queue = [(Requirement(line), "pyproject.toml") for line in requirements]
    while queue:
        req, wanted_by = queue.pop(0)
        key = canonicalize_name(req.name)
        if key == SELF:
            continue
        dist = _installed(req.name, wanted_by)
        if not req.specifier.contains(dist.version, prereleases=True):
            raise PackagingError(
                f"{req.name} {dist.version} is installed but {wanted_by} needs {req}: "
                "reinstall with `make clean package` (requirements.lock)"
            )
        pins[key] = (dist.metadata["Name"], dist.version)
        new_extras = set(req.extras) - extras_done.get(key, set())
        first_visit = key not in extras_done
        extras_done.setdefault(key, set()).update(req.extras)
        if not first_visit and not new_extras:
            continue
        for line in dist.requires or []:
            child = Requirement(line)
            if _applies(child, new_extras | ({""} if first_visit else set()), environment):
                queue.append((child, f"{dist.metadata['Name']} {dist.version}"))
    return {name: version for name, version in sorted(pins.values(), key=lambda p: p[0].lower())}


def write_packages(
    out: Path,
    functions: Sequence[str] | None = None,
    source_root: Path = REPO_ROOT,
    python_version: str = RUNTIME_PYTHON,
) -> list[Package]:
    """Write ``out/<function>/`` for each function named (default: all of the topology)."""
    specs = [topology.function(name) for name in functions] if functions else topology.FUNCTIONS
    package_src = source_root / "shared" / SELF
    if not package_src.is_dir():
        raise PackagingError(f"{package_src} is missing (run from a source checkout)")
    environment = target_environment(python_version)
    pyproject = source_root / "pyproject.toml"
    locked = lockfile.read(source_root / lockfile.LOCK_NAME)
    written = []
    for spec in specs:
        groups = groups_for(spec)
        pins = resolve(group_requirements(groups, pyproject), environment)
        lockfile.check_pins(pins, locked, spec.name)
        folder = out / spec.name
        _write_folder(folder, spec, source_root, package_src)
        text = _requirements_text(spec, groups, pins, environment)
        (folder / "requirements.txt").write_text(text)
        written.append(Package(spec.name, folder, groups, pins))
    return written


def _write_folder(folder: Path, spec, source_root: Path, package_src: Path) -> None:
    entry = source_root / "functions" / spec.name / "main.py"
    if not entry.is_file():
        raise PackagingError(f"{entry} is missing: every function of the topology needs one")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copy2(entry, folder / "main.py")
    shutil.copytree(package_src, folder / SELF, ignore=shutil.ignore_patterns(*COPY_IGNORE))
    (folder / ".gcloudignore").write_text(GCLOUDIGNORE)


def _requirements_text(spec, groups, pins: Mapping[str, str], environment) -> str:
    header = (
        f"# {spec.name}: groups {', '.join(groups)} of pyproject.toml, pinned to the versions "
        "of requirements.lock,\n"
        f"# markers evaluated for Python {environment['python_version']} on Linux. "
        "Generated: do not edit.\n"
    )
    return header + "".join(f"{name}=={version}\n" for name, version in pins.items())


def _self_reference(line: str) -> list[str] | None:
    """``aiprod[gcp,storage]`` → ``["gcp", "storage"]``; another requirement → None."""
    match = re.fullmatch(rf"\s*{SELF}\s*\[([^\]]*)\]\s*", line)
    return [g.strip() for g in match.group(1).split(",") if g.strip()] if match else None


def _installed(name: str, wanted_by: str) -> metadata.Distribution:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError as exc:
        raise PackagingError(
            f"{name} (needed by {wanted_by}) is not installed here: "
            "`make package` installs requirements.lock"
        ) from exc


def _applies(req, extras: set[str], environment: Mapping[str, str]) -> bool:
    if req.marker is None:
        return "" in extras
    return any(req.marker.evaluate({**environment, "extra": extra}) for extra in extras)
