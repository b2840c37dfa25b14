"""``aiprod dev``: the emulator stack for a person, until Ctrl-C.

Prints the environment that points ``aiprod submit`` / ``aiprod status`` (or gcloud-free
scripts using the Google Cloud clients) at this stack, and stops every process it started.
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

from aiprod import topology
from aiprod_tools.paths import DEFAULT_METRICS
from aiprod_tools.stack.emulators import start_emulators
from aiprod_tools.stack.stack import EmulatorStack

SCHEDULE_EVERY_S = 60.0  # Cloud Scheduler's "* * * * *"


def run_dev(simulation: str = "{}", project: str = "aiprod-dev") -> int:
    json.loads(simulation)  # fail before starting anything if the JSON is broken
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    emulators = start_emulators()
    try:
        metrics = Path(DEFAULT_METRICS).resolve()
        extra = {
            "AIPROD_SIMULATION": simulation,
            "AIPROD_POLL_INTERVAL_S": "0.2",
            "AIPROD_METRICS": f"jsonl:{metrics}",
        }
        with EmulatorStack(emulators, project=project, extra_env=extra) as stack:
            print("aiprod dev: emulators and functions are up. In another shell:\n")
            for name in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"):
                print(f"  export {name}={stack.env[name]}")
            print(f"  export AIPROD_PREFIX={stack.prefix}")
            print("  .venv/bin/aiprod submit --job-id hello-1 --prompt 'A red kite over hills'")
            print("  .venv/bin/aiprod status hello-1")
            print(f"  .venv/bin/aiprod report --metrics {metrics}\n")
            for name, child in stack.functions.items():
                print(f"  {name:<17} {child.url}  log {child.log_path}")
            scheduled = ", ".join(spec.name for spec in topology.scheduled_functions())
            print(
                f"\n{scheduled}: called every {SCHEDULE_EVERY_S:.0f} s, as Cloud Scheduler would."
            )
            threading.Thread(target=_schedule, args=(stack, stop), daemon=True).start()
            print("Ctrl-C stops everything.")
            stop.wait()
    finally:
        emulators.stop()
    print("aiprod dev: stopped.")
    return 0


def _schedule(stack: EmulatorStack, stop: threading.Event) -> None:
    """Cloud Scheduler's part: POST to each scheduled function every minute until stopped."""
    while not stop.wait(SCHEDULE_EVERY_S):
        for spec in topology.scheduled_functions():
            try:
                stack.call(spec.name)
            except (OSError, ValueError) as exc:
                print(f"aiprod dev: calling {spec.name} failed: {exc}")
