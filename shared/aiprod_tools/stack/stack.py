"""The emulator stack: every function of the topology under functions-framework, wired by
push subscriptions on the Pub/Sub emulator, with state in the Firestore emulator.

Each stack runs under its own project id, so several stacks share one pair of emulators
without seeing each other's topics or documents.

Concurrency: functions-framework 3.10 serves through gunicorn's threaded worker (one process,
``THREADS`` threads, default 4 per CPU). Each function process gets ``WORKERS=1`` (one App,
one set of clients, like one Cloud Run instance) and ``THREADS`` = the function's
``concurrency`` from the topology, so it serves that many pushes at once, as deployed.

What the Pub/Sub emulator (0.8.20) does differently from production, measured here:
- It pushes with exactly two loops per subscription, one message each, so a function sees at
  most 2 concurrent pushes whatever its ``THREADS``.
- A failed push is retried after about 1 s, then on the retry policy's backoff, roughly; with
  the topology's 10 s minimum a dead-letter takes minutes, so dead-letter scenarios should
  pass ``min_backoff_s=0.1, max_backoff_s=1`` (five attempts then take about 13 s).
- Dead-lettered messages carry ``CloudPubSubDeadLetterSource*`` attributes, as in production;
  pushes carry no ``deliveryAttempt`` and no auth header.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path

from aiprod import topology
from aiprod_tools.exceptions import EmulatorNotFoundError
from aiprod_tools.paths import REPO_ROOT
from aiprod_tools.stack.emulators import Emulators
from aiprod_tools.stack.processes import Child, free_port, spawn, stop_all, wait_http
from aiprod_tools.stack.provision import create_topology, emulator_bus, emulator_store


class EmulatorStack:
    """Start with ``with EmulatorStack(emulators, extra_env={...}) as stack:`` (or ``start()``).

    The functions' settings are exactly ``extra_env`` (``AIPROD_*`` variables of this process
    are not inherited), plus the emulator hosts, the stack's project and its prefix.
    """

    def __init__(
        self,
        emulators: Emulators,
        project: str | None = None,
        prefix: str = "aiprod-",
        extra_env: Mapping[str, str] | None = None,
        min_backoff_s: float = topology.MIN_BACKOFF_S,
        max_backoff_s: float = topology.MAX_BACKOFF_S,
        source_root: Path = REPO_ROOT,
        timeout_s: float = 60.0,
    ):
        self.project = project or f"aiprod-stack-{uuid.uuid4().hex[:8]}"
        self.prefix = prefix
        self.env = {**(extra_env or {}), **emulators.env(self.project), "AIPROD_PREFIX": prefix}
        self.bus = emulator_bus(self.env, prefix)
        self.store = emulator_store(self.env)
        self.functions: dict[str, Child] = {}
        self.startup_s: dict[str, float] = {}
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"{self.project}-"))
        # The functions' metrics go to one JSON-lines file (aiprod report), never to the cloud.
        self.env.setdefault("AIPROD_METRICS", f"jsonl:{self.log_dir / 'metrics.jsonl'}")
        self.metrics_path = Path(self.env["AIPROD_METRICS"].removeprefix("jsonl:"))
        self._backoff = (min_backoff_s, max_backoff_s)
        self._root, self._timeout_s = source_root, timeout_s

    def start(self) -> EmulatorStack:
        executable = _functions_framework()
        try:
            for spec in topology.FUNCTIONS:
                self.functions[spec.name] = self._spawn(executable, spec)
            self.startup_s = wait_http(list(self.functions.values()), self._timeout_s)
            endpoints = {name: child.url for name, child in self.functions.items()}
            create_topology(self.bus, endpoints, *self._backoff)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop every function process (after traffic gunicorn lingers ~2 s on keep-alives)."""
        stop_all(list(self.functions.values()), grace_s)

    def call(self, function: str, timeout_s: float = 60.0) -> dict:
        """POST to an HTTP function (what Cloud Scheduler does) and return its JSON answer."""
        request = urllib.request.Request(self.functions[function].url, data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"{}")

    def log(self, function: str, lines: int = 200) -> str:
        """The last lines a function process wrote (its JSON logs and tracebacks)."""
        return self.functions[function].log_tail(lines)

    def __enter__(self) -> EmulatorStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(self, executable: str, spec: topology.FunctionSpec) -> Child:
        source = self._root / "functions" / spec.name / "main.py"
        if not source.is_file():
            raise EmulatorNotFoundError(f"{source} is missing (run from a source checkout)")
        port = free_port()
        argv = [
            executable,
            f"--target={spec.name}",
            f"--source={source}",
            f"--signature-type={spec.signature_type}",
            "--host=127.0.0.1",
            f"--port={port}",
        ]
        env = {
            **_base_env(),
            **self.env,
            "WORKERS": "1",
            "THREADS": str(spec.concurrency),
            "FUNCTION_TARGET": spec.name,  # as deployed: the metrics' generic_task job
            "PYTHONUNBUFFERED": "1",
        }
        return spawn(spec.name, argv, port, self.log_dir, env=env, cwd=self._root)


def _functions_framework() -> str:
    """The functions-framework next to this interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "functions-framework"
    found = str(beside) if beside.is_file() else shutil.which("functions-framework")
    if found is None:
        raise EmulatorNotFoundError("functions-framework is not installed (pip install .[gcp])")
    return found


def _base_env() -> dict[str, str]:
    """This process's environment minus settings that would leak into the stack's own."""
    drop = ("GOOGLE_APPLICATION_CREDENTIALS", "FUNCTION_TARGET", "PORT")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AIPROD_")}
