"""``aiprod demo``, ``dev`` and ``reconcile``: the pipeline without a cloud (in-process, or on
the emulator stack), and one lease sweep now against the environment's project."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from aiprod.exceptions import ConfigError
from aiprod_tools.cli import context
from aiprod_tools.exceptions import UsageError
from aiprod_tools.paths import EXAMPLES


def add_demo(sub, name: str) -> argparse.ArgumentParser:
    demo = sub.add_parser(name, help="run the sample batch on the embedded bus and store")
    demo.add_argument("--batch", default=str(EXAMPLES), help="JSON lines of JobRequests")
    demo.add_argument("--log", default=".aiprod/demo.log", help="where the JSON logs go")
    return demo


def demo(args: argparse.Namespace) -> int:
    from aiprod_tools.demo import run_demo

    return run_demo(Path(args.batch), Path(args.log))


DEV_EPILOG = """\
Every AIPROD_* variable of this shell reaches each function (budgets, thresholds,
lease, AIPROD_SIMULATION ...). A function process that dies is started again on its port.

Simulated providers (AIPROD_SIMULATION or --simulation: JSON, one object per backend,
runway, veo or replicate; keys left out keep their default):
  latency_s      seconds from submit until the render is done (default 0)
  failure_rate   share of renders that fail, 0..1, chosen per job and attempt (default 0)
  down           true: every submit is refused
  outage_after   with outage_count: submits number outage_after+1 ...
  outage_count     ... outage_after+outage_count are refused (a scripted outage)
  cost_ratio     reported cost as a share of the worst-case hold (default 1.0)
  error_class    how failures are classified: FALLBACK (default), RETRY_SAME,
                 TERMINAL or UNKNOWN
  error_code     their code, any of the error taxonomy's: unavailable (default for a
                 refused submit), render_failed (default for a failed render),
                 throttled, content_policy, server_error ...

Example:
  AIPROD_DAILY_BUDGET_USD=5 AIPROD_SIMULATION='{"runway": {"down": true},
    "veo": {"latency_s": 2, "failure_rate": 0.2, "error_code": "throttled",
    "error_class": "RETRY_SAME"}, "replicate": {"outage_after": 3, "outage_count": 2,
    "cost_ratio": 0.5}}' aiprod dev
"""


def add_dev(sub, name: str) -> argparse.ArgumentParser:
    dev = sub.add_parser(
        name,
        help="start the emulator stack and wait (Ctrl-C stops it)",
        description="Start the Pub/Sub and Firestore emulators and every function on them.",
        epilog=DEV_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dev.add_argument(
        "--simulation", default=None, help="AIPROD_SIMULATION JSON (overrides the variable)"
    )
    return dev


def dev(args: argparse.Namespace) -> int:
    from aiprod_tools.stack.dev import dev_env, run_dev

    try:
        dev_env(os.environ, args.simulation)  # a bad setting is a usage error, not a traceback
    except (ConfigError, ValueError) as exc:
        raise UsageError(f"dev: {exc}") from exc
    return run_dev(simulation=args.simulation)


def add_reconcile(sub, name: str) -> argparse.ArgumentParser:
    reconcile = sub.add_parser(
        name, help="one lease sweep now (what Cloud Scheduler runs every minute)"
    )
    reconcile.add_argument("--json", action="store_true", help="the report as JSON")
    return reconcile


def reconcile(args: argparse.Namespace) -> int:
    from aiprod_tools.views.tables import render_table

    report = context.make_app().reconciler.run().to_json()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_table(["action", "jobs"], list(report.items())))
    return 1 if report["errors"] else 0
