"""Failpoints: crash a function at a named step boundary, for crash-injection tests.

Off unless ``AIPROD_FAULTS`` is set, e.g.
``AIPROD_FAULTS="router.after_commit=exit:0.5,outcome.before_settle=raise:0.5"``
with ``AIPROD_FAULTS_DIR`` naming a directory shared by the function processes. Each point
fires at most once per key (job and attempt): the decision is a stable hash of the key, and
a marker file created with O_EXCL remembers that it fired, even across a process that died.
``raise`` fails the invocation (HTTP 500, so Pub/Sub redelivers); ``exit`` kills the
process at once, as an instance lost mid-invocation would be (gunicorn starts a new worker).
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import cache
from pathlib import Path

from aiprod.exceptions import TransientError

log = logging.getLogger(__name__)


class InjectedFault(TransientError):
    """A failpoint fired (only ever under AIPROD_FAULTS)."""


@cache
def _plan() -> dict[str, tuple[str, float]]:
    spec = os.environ.get("AIPROD_FAULTS", "")
    plan = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, action = item.partition("=")
        mode, _, rate = action.partition(":")
        plan[name] = (mode, float(rate or 1.0))
    return plan


def checkpoint(name: str, key: str) -> None:
    """Crash here if this failpoint is armed for this key and has not fired for it yet."""
    plan = _plan()
    if name not in plan:
        return
    mode, rate = plan[name]
    digest = hashlib.sha256(f"{name}|{key}".encode()).digest()
    if int.from_bytes(digest[:8], "big") / 2**64 >= rate or not _first_time(name, key):
        return
    log.warning("failpoint %s fired (%s) for %s", name, mode, key, extra={"event": "failpoint"})
    if mode == "exit":
        logging.shutdown()
        os._exit(17)
    raise InjectedFault(f"failpoint {name} for {key}")


def _first_time(name: str, key: str) -> bool:
    folder = Path(os.environ.get("AIPROD_FAULTS_DIR", ".aiprod/faults"))
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / hashlib.sha256(f"{name}|{key}".encode()).hexdigest()
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True
