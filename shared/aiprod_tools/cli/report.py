"""``aiprod report``: the local metrics (demo or emulator stack) as a table and an HTML chart."""

from __future__ import annotations

import argparse
from pathlib import Path

from aiprod_tools.paths import DEFAULT_HTML, DEFAULT_METRICS


def add_report(sub, name: str) -> argparse.ArgumentParser:
    report = sub.add_parser(
        name, help="per-backend table and chart from the metrics the local sinks kept"
    )
    report.add_argument("--metrics", default=DEFAULT_METRICS, help="JSON lines of metric points")
    report.add_argument("--html", default=DEFAULT_HTML, help="where the chart page goes")
    report.add_argument("--no-html", action="store_true", help="print the table only")
    return report


def report(args: argparse.Namespace) -> int:
    from aiprod_tools.views.report import run_report

    return run_report(Path(args.metrics), None if args.no_html else Path(args.html))
