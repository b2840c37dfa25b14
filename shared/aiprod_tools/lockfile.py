"""``requirements.lock``: the versions and hashes every install of this repository uses.

``make lock`` writes it (``uv pip compile --all-extras --generate-hashes --universal``);
``make`` installs it with ``--require-hashes``; ``aiprod package`` refuses to pin a function
to a version the lock does not hold, so two builds of one commit deploy the same versions.
Only what those need is read here: each ``name==version`` and its hashes, not the markers
(the packaging evaluates markers from the distributions' own metadata).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aiprod_tools.exceptions import PackagingError

LOCK_NAME = "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class Locked:
    """One locked distribution: its version and the hashes of its files."""

    version: str
    hashes: tuple[str, ...]


def canonical(name: str) -> str:
    """PEP 503 name, as pip compares them (``Google_Cloud.Pubsub`` → ``google-cloud-pubsub``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read(path: Path) -> dict[str, Locked]:
    """canonical name → what the lock holds for it."""
    if not path.is_file():
        raise PackagingError(f"{path} is missing: run `make lock` and commit it")
    locked: dict[str, Locked] = {}
    current: str | None = None
    for line in path.read_text().splitlines():
        pin = _PIN.match(line)
        if pin:
            current = canonical(pin.group(1))
            locked[current] = Locked(pin.group(2), ())
        elif current and _HASH.search(line):
            entry = locked[current]
            locked[current] = Locked(entry.version, (*entry.hashes, *_HASH.findall(line)))
        else:
            current = None  # a comment or a blank line ends the entry
    return locked


def check_pins(pins: dict[str, str], locked: dict[str, Locked], function: str) -> None:
    """Refuse a pin the lock does not hold: the environment drifted from the lock."""
    drift = [
        f"{name}=={version} (lock: {locked[key].version if key in locked else 'absent'})"
        for name, version in pins.items()
        if (key := canonical(name)) not in locked or locked[key].version != version
    ]
    if drift:
        raise PackagingError(
            f"{function}: installed versions differ from {LOCK_NAME}: {', '.join(drift)}; "
            "reinstall with `make clean package`, or run `make lock` after a dependency change"
        )
