"""The emulator stack: every function of the topology under functions-framework, wired by
push subscriptions on the Pub/Sub emulator, with state in the Firestore emulator.

Each stack runs under its own project id, so several stacks share one pair of emulators
without seeing each other's topics or documents.

Concurrency, as Cloud Run enforces it: each function process (``stack.serve``) is one
instance (gunicorn, ``WORKERS=1``: one App, one set of clients) behind a gate that admits the
function's ``concurrency`` from the topology (or the stack's ``concurrency`` override) and
answers 429 at once past it, as Cloud Run does at max instances; gunicorn gets a few more
threads than the gate, so the gate answers rather than gunicorn's queue. ``gate(name)``
reads its counters (``refused``: pushes answered 429; ``max_in_flight``).

What the Pub/Sub emulator (0.8.20) does, measured here against production:
- Push concurrency: exactly two push loops per subscription (hard-coded), one message each,
  so a function sees at most 2 concurrent pushes whatever its concurrency. Production pushes
  as many as the function accepts; to see that here, ``extra_env={"AIPROD_PUSH_LANES": N}``
  publishes each push-fed topic round-robin over N lane topics, each with its own push
  subscription to the same function (``topology.lane_topic``): 2N pushes at once. Deployed,
  lanes is 1.
- A refused push (any non-2xx, 429 included) counts as a delivery attempt, and after the
  subscription's ``max_delivery_attempts`` the message is dead-lettered with the
  ``CloudPubSubDeadLetterSource*`` attributes (``...DeliveryCount``), as in production.
- Retry: about 1 s after a failed push, then the retry policy's backoff: at least 1 s
  (a smaller minimum is raised to 1 s), whole seconds, growing 1.3x a delivery from the
  minimum with 0.6-1.0 jitter, capped at the maximum (10 s / 600 s: about 15, 17, 22 s ...).
  With the topology's 10 s minimum a dead-letter takes minutes, so dead-letter scenarios
  pass ``min_backoff_s=0.1, max_backoff_s=1`` (five attempts then take about 10-13 s).
- Pushes carry no ``deliveryAttempt`` and no auth header.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path

from aiprod import topology
from aiprod_tools.exceptions import EmulatorNotFoundError, EmulatorStartError
from aiprod_tools.paths import REPO_ROOT
from aiprod_tools.stack.emulators import Emulators
from aiprod_tools.stack.gate import STATS_PATH
from aiprod_tools.stack.processes import Child, free_port, spawn, stop_all, wait_http
from aiprod_tools.stack.provision import (
    create_topology,
    emulator_bus,
    emulator_store,
    provision_tenant,
    repoint_push,
)


class EmulatorStack:
    """Start with ``with EmulatorStack(emulators, extra_env={...}) as stack:`` (or ``start()``).

    The functions' settings are exactly ``extra_env`` (``AIPROD_*`` variables of this process
    are not inherited, so tests stay isolated; ``aiprod dev`` passes its environment's
    explicitly, ``dev.dev_env``), plus the emulator hosts, the stack's project and its prefix.
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
        concurrency: Mapping[str, int] | None = None,
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
        unknown = set(concurrency or {}) - {spec.name for spec in topology.FUNCTIONS}
        if unknown:
            raise KeyError(f"no function named {sorted(unknown)} in the topology")
        self.concurrency = {
            spec.name: (concurrency or {}).get(spec.name, spec.concurrency)
            for spec in topology.FUNCTIONS
        }

    def start(self) -> EmulatorStack:
        _require_functions_framework()
        try:
            for spec in topology.FUNCTIONS:
                self.functions[spec.name] = self._spawn(spec)
            self.startup_s = wait_http(list(self.functions.values()), self._timeout_s)
            endpoints = {name: child.url for name, child in self.functions.items()}
            create_topology(self.bus, endpoints, *self._backoff)
            self.provision_tenants()
        except BaseException:
            self.stop()
            raise
        return self

    def provision_tenants(self, *names: str) -> None:
        """Topics and push subscriptions of ``names``, or of every tenant in the registry
        (emulators that kept their data): what Terraform's ``tenants`` variable makes."""
        from aiprod.repositories import tenants

        for name in names or [t.name for t in tenants.list_all(self.store)]:
            provision_tenant(self.bus, name)

    def stop(self, grace_s: float = 1.0) -> None:
        """Stop every function process (after traffic gunicorn lingers ~2 s on keep-alives)."""
        stop_all(list(self.functions.values()), grace_s)

    def restart(self, name: str) -> Child:
        """Start a function again (after its process died) on its port, so its push
        subscriptions keep their endpoint; on another port, repointing them, if that port
        was taken meanwhile. Returns the new process once it answers HTTP."""
        spec = topology.function(name)
        old = self.functions[name]
        old.stop(grace_s=0.0)  # what is left of its group (a worker may still hold the port)
        try:
            child = self._ready(self._spawn(spec, port=old.port, append_log=True))
        except EmulatorStartError:
            child = self._ready(self._spawn(spec, append_log=True))
            repoint_push(self.bus, spec, child.url)
        self.functions[name] = child
        return child

    def _ready(self, child: Child) -> Child:
        self.startup_s[child.name] = wait_http([child], self._timeout_s)[child.name]
        return child

    def call(self, function: str, timeout_s: float = 60.0) -> dict:
        """POST to an HTTP function (what Cloud Scheduler does) and return its JSON answer."""
        request = urllib.request.Request(self.functions[function].url, data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read() or b"{}")

    def gate(self, function: str) -> dict[str, int]:
        """The function's concurrency gate counters: ``served``, ``refused`` (429s),
        ``in_flight``, ``max_in_flight`` and the ``concurrency`` it enforces."""
        url = self.functions[function].url.rstrip("/") + STATS_PATH
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def log(self, function: str, lines: int = 200) -> str:
        """The last lines a function process wrote (its JSON logs and tracebacks)."""
        return self.functions[function].log_tail(lines)

    def __enter__(self) -> EmulatorStack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _spawn(
        self, spec: topology.FunctionSpec, port: int | None = None, append_log: bool = False
    ) -> Child:
        source = self._root / "functions" / spec.name / "main.py"
        if not source.is_file():
            raise EmulatorNotFoundError(f"{source} is missing (run from a source checkout)")
        port = port or free_port()
        argv = [
            sys.executable,
            "-m",
            "aiprod_tools.stack.serve",
            f"--target={spec.name}",
            f"--source={source}",
            f"--signature-type={spec.signature_type}",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--concurrency={self.concurrency[spec.name]}",
        ]
        env = {
            **_base_env(),
            **self.env,
            "FUNCTION_TARGET": spec.name,  # as deployed: the metrics' generic_task job
            "PYTHONUNBUFFERED": "1",
        }
        log_dir = self.log_dir
        return spawn(spec.name, argv, port, log_dir, env=env, cwd=self._root, append=append_log)


def _require_functions_framework() -> None:
    """Functions are served by this interpreter (``-m aiprod_tools.stack.serve``)."""
    if importlib.util.find_spec("functions_framework") is None:
        raise EmulatorNotFoundError("functions-framework is not installed (pip install .[gcp])")


def _base_env() -> dict[str, str]:
    """This process's environment minus settings that would leak into the stack's own."""
    drop = ("GOOGLE_APPLICATION_CREDENTIALS", "FUNCTION_TARGET", "PORT")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AIPROD_")}
