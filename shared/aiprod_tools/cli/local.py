"""``aiprod demo``, ``dev`` and ``reconcile``: the pipeline without a cloud (in-process, or on
the emulator stack), and one lease sweep now against the environment's project."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aiprod_tools.cli import context
from aiprod_tools.paths import EXAMPLES


def add_demo(sub, name: str) -> argparse.ArgumentParser:
    demo = sub.add_parser(name, help="run the sample batch on the embedded bus and store")
    demo.add_argument("--batch", default=str(EXAMPLES), help="JSON lines of JobRequests")
    demo.add_argument("--log", default=".aiprod/demo.log", help="where the JSON logs go")
    return demo


def demo(args: argparse.Namespace) -> int:
    from aiprod_tools.demo import run_demo

    return run_demo(Path(args.batch), Path(args.log))


def add_dev(sub, name: str) -> argparse.ArgumentParser:
    dev = sub.add_parser(name, help="start the emulator stack and wait (Ctrl-C stops it)")
    dev.add_argument("--simulation", default="{}", help="AIPROD_SIMULATION JSON")
    return dev


def dev(args: argparse.Namespace) -> int:
    from aiprod_tools.stack.dev import run_dev

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
