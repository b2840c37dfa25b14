"""``aiprod report``: what the metrics say, for a person — a table per backend and a chart.

It reads the raw points a local sink kept (the demo's file, or the one the emulator stack's
function processes append to); ``views/metrics.py`` sums them, ``views/report_html.py`` draws.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from aiprod.adapters.local_metrics import read_points
from aiprod_tools.views.metrics import backend_table, overview, summarize
from aiprod_tools.views.report_html import render_html


def run_report(metrics: Path, html: Path | None, out: TextIO | None = None) -> int:
    """Print the overview and the backend table; write the HTML page when asked."""
    out = out or sys.stdout
    if not metrics.is_file():
        out.write(f"no metrics at {metrics}: run `aiprod demo` or `aiprod dev` first\n")
        return 1
    summary = summarize(read_points(metrics))
    out.write(overview(summary) + "\n\n" + backend_table(summary) + "\n")
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(summary, f"aiprod report: {metrics}"))
        out.write(f"\nchart: {html}\n")
    return 0
