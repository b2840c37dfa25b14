"""Child processes for the local stack: free ports, process groups, readiness, clean stops.

Every child starts in its own session (so its own process group) and is stopped by killing
the group: the emulator wrappers fork a JVM, and killing only the wrapper leaves the JVM
holding the port.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiprod_tools.exceptions import EmulatorStartError

HOST = "127.0.0.1"


LOWEST_PORT = 10_000  # below it: well-known and registered services
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nobody listens on right now, picked below the OS's ephemeral range: a port
    the OS hands out (``bind(0)``) may be taken, between this check and the server's own
    bind, as the local port of an outbound connection (seen in CI: a function's gunicorn
    found its port in use). A port below that range is only ever taken by a bind, and this
    process never hands the same one out twice."""
    ceiling = _ephemeral_floor()
    for _ in range(200):
        port = random.randrange(LOWEST_PORT, ceiling)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # all taken: the OS's
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _ephemeral_floor() -> int:
    """The first port of the OS's ephemeral range (Linux: ip_local_port_range)."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        floor = int(text.split()[0])
    except (OSError, ValueError, IndexError):
        floor = 32_768
    return max(floor, LOWEST_PORT + 1_000)


@dataclass
class Child:
    """A started process group with its log file, known by a short name for messages."""

    name: str
    process: subprocess.Popen
    log_path: Path
    port: int
    started_at: float = field(default_factory=time.monotonic)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace_s: float = 3.0) -> None:
        stop_all([self], grace_s)


def stop_all(children: Sequence[Child], grace_s: float = 3.0) -> None:
    """SIGTERM every child's group at once, then SIGKILL what is left after ``grace_s``."""
    for child in children:
        _signal_group(child.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_group_alive(c.process.pid) for c in children):
        for child in children:
            child.process.poll()  # reap the leader, or its zombie keeps the group "alive"
        time.sleep(0.05)
    for child in children:
        _signal_group(child.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=grace_s)


def spawn(
    name: str,
    argv: Sequence[str],
    port: int,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    append: bool = False,
) -> Child:
    """Start ``argv`` in a new process group, output to ``<log_dir>/<name>.log`` (after what
    an earlier process of that name wrote there if ``append``)."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab" if append else "wb") as log:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ if env is None else env),
            cwd=cwd,
            start_new_session=True,
        )
    return Child(name, process, log_path, port)


def wait_http(children: Sequence[Child], timeout_s: float) -> dict[str, float]:
    """Wait until each child answers HTTP on its port (any status); stop them all if not.

    Returns each child's start-up time in seconds, from its spawn to its first answer.
    """
    deadline = time.monotonic() + timeout_s
    pending, ready = list(children), {}
    while pending:
        for child in [c for c in pending if _answers(c)]:
            ready[child.name] = round(time.monotonic() - child.started_at, 3)
            pending.remove(child)
        for child in pending:
            if child.process.poll() is not None:
                _fail(children, child, f"exited with code {child.process.returncode}")
        if pending and time.monotonic() > deadline:
            _fail(children, pending[0], f"did not answer within {timeout_s:.0f} s")
        if pending:
            time.sleep(0.05)
    return ready


def _answers(child: Child) -> bool:
    try:
        with urllib.request.urlopen(child.url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if not with 200
    except OSError:
        return False


def _fail(children: Sequence[Child], culprit: Child, why: str) -> None:
    stop_all(children)
    raise EmulatorStartError(
        f"{culprit.name} {why}; last lines of {culprit.log_path}:\n{culprit.log_tail()}"
    )


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
