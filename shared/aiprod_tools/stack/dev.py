"""``aiprod dev``: the emulator stack for a person, until Ctrl-C.

Every ``AIPROD_*`` setting of the invoking environment reaches each function (``dev_env``),
so the CLI and the functions agree on budgets, thresholds and leases. A function process
that dies is started again on its port and the console says so (``Supervisor``). Prints the
environment that points ``aiprod submit`` / ``aiprod status`` (or gcloud-free scripts using
the Google Cloud clients) at this stack, and stops every process it started.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from aiprod import topology
from aiprod.config import Settings
from aiprod.logs import CloudLoggingFormatter
from aiprod_tools.paths import DEFAULT_METRICS
from aiprod_tools.stack.emulators import Emulators, start_emulators
from aiprod_tools.stack.stack import EmulatorStack
from aiprod_tools.stack.supervisor import Supervisor

SCHEDULE_EVERY_S = 60.0  # Cloud Scheduler's "* * * * *"
DEV_DEFAULTS = {
    "AIPROD_SIMULATION": "{}",
    "AIPROD_POLL_INTERVAL_S": "0.2",
    "AIPROD_IMAGE_BUCKETS": "aiprod-demo-assets",  # examples/jobs.jsonl's gs:// images
}


def dev_env(
    environ: Mapping[str, str], simulation: str | None = None, metrics: str | Path = DEFAULT_METRICS
) -> dict[str, str]:
    """The functions' settings: dev's defaults, overridden by every ``AIPROD_*`` of
    ``environ``, then by ``--simulation`` when given. Checked as the functions will read
    them, so a bad value fails before anything starts."""
    env = {**DEV_DEFAULTS, "AIPROD_METRICS": f"jsonl:{Path(metrics).resolve()}"}
    env.update({key: value for key, value in environ.items() if key.startswith("AIPROD_")})
    if simulation is not None:
        env["AIPROD_SIMULATION"] = simulation
    json.loads(env["AIPROD_SIMULATION"])  # the message names the broken JSON's position
    Settings.from_env(env)  # raises ConfigError naming the variable
    return env


def dev_stack(
    emulators: Emulators,
    environ: Mapping[str, str] | None = None,
    simulation: str | None = None,
    project: str = "aiprod-dev",
) -> EmulatorStack:
    """The stack ``aiprod dev`` runs (not started), its functions set from ``environ``."""
    env = dev_env(os.environ if environ is None else environ, simulation)
    prefix = env.get("AIPROD_PREFIX", "aiprod-")
    return EmulatorStack(emulators, project=project, prefix=prefix, extra_env=env)


def run_dev(simulation: str | None = None, project: str = "aiprod-dev") -> int:
    env = dev_env(os.environ, simulation)  # fail before starting anything
    _log_json_to_stderr()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    emulators = start_emulators()
    try:
        with dev_stack(emulators, env, project=project) as stack:
            supervisor = Supervisor(stack).start()
            try:
                _print_intro(stack)
                threading.Thread(target=_schedule, args=(stack, stop), daemon=True).start()
                stop.wait()
            finally:
                supervisor.stop()
    finally:
        emulators.stop()
    print("aiprod dev: stopped.")
    return 0


def _print_intro(stack: EmulatorStack) -> None:
    print("aiprod dev: emulators and functions are up. In another shell:\n")
    for name in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"):
        print(f"  export {name}={stack.env[name]}")
    print(f"  export AIPROD_PREFIX={stack.prefix}")
    print("  .venv/bin/aiprod submit --job-id hello-1 --prompt 'A red kite over hills'")
    print("  .venv/bin/aiprod status hello-1")
    print(f"  .venv/bin/aiprod report --metrics {stack.metrics_path}\n")
    settings = sorted(key for key in stack.env if key.startswith("AIPROD_"))
    print("The functions' settings:")
    for key in settings:
        print(f"  {key}={stack.env[key]}")
    print()
    for name, child in stack.functions.items():
        print(f"  {name:<17} {child.url}  log {child.log_path}")
    scheduled = ", ".join(spec.name for spec in topology.scheduled_functions())
    print(f"\n{scheduled}: called every {SCHEDULE_EVERY_S:.0f} s, as Cloud Scheduler would.")
    print("A function that dies is started again on its port. Ctrl-C stops everything.")


def _log_json_to_stderr() -> None:
    """The stack's own structured lines (a restart, for one) as Cloud Logging JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(CloudLoggingFormatter())
    logger = logging.getLogger("aiprod_tools.stack")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _schedule(stack: EmulatorStack, stop: threading.Event) -> None:
    """Cloud Scheduler's part: POST to each scheduled function every minute until stopped."""
    while not stop.wait(SCHEDULE_EVERY_S):
        for spec in topology.scheduled_functions():
            try:
                stack.call(spec.name)
            except (OSError, ValueError) as exc:
                print(f"aiprod dev: calling {spec.name} failed: {exc}")
