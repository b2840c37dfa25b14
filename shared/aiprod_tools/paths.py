"""Where the tooling finds the source checkout, and where it keeps its local files."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples" / "jobs.jsonl"
# Relative to the working directory: what a local run (demo, dev) leaves for `aiprod report`.
DEFAULT_METRICS = ".aiprod/metrics.jsonl"
DEFAULT_HTML = ".aiprod/report.html"
