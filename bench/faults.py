"""Fault-matrix benchmark (issue 10, "Money truth"): does aiprod record what the providers
bill, under every fault, and how fast do the jobs end? A script, not a test: run it with
``PYTHONPATH=shared .venv/bin/python bench/faults.py`` (no pytest needed).

It runs every (fault, provider) scenario of ``tests/support/faults.py`` (the matrix
``tests/integration/test_fault_matrix.py`` asserts on): the embedded pipeline with the live
adapters against the wire fakes, the storage emulator in process (started and stopped
here), production's lease and deadlines on a simulated clock, the reconciler swept every
simulated minute until every job ended or a job's longest life passed.

Per scenario: ``recorded`` = the ledger's spend plus any hold left (a quarantined job's),
``billed`` = what the fakes' bills say the providers charge. The ratio is recorded / billed;
when nothing was billed it is 1.0 if nothing was recorded either, else recorded over one
micro-USD (a large number: plainly over-recorded). ``stuck``: jobs not over at the end (a
quarantined document aside), summed. ``recovery_s``: simulated seconds from the jobs'
publication (every fault strikes in their first render) to the last job's end.

Targets: min ratio >= 1.0 (never under-recorded), max <= 1.0 except where a hold is charged
for a task nobody can look up, stuck 0, recovery p95 <= 60 s. One line per scenario goes to
stderr; the last line on stdout is one JSON object:
{"scenarios", "recorded_over_billed_min", "recorded_over_billed_max", "stuck", "recovery_s_p95"}.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fakes.storage import StorageEmulator
from support.fault_world import summary
from support.faults import matrix, scenario


def ratio(recorded: int, billed: int) -> float:
    if billed == 0:
        return 1.0 if recorded == 0 else float(recorded)
    return recorded / billed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(only: set[str], providers: set[str]) -> dict:
    storage = StorageEmulator().start()
    rows = []
    try:
        for fault, provider in matrix():
            if (only and fault.name not in only) or (providers and provider not in providers):
                continue
            with (
                tempfile.TemporaryDirectory(prefix="aiprod-faults-") as folder,
                scenario(fault, provider, storage, Path(folder)) as world,
            ):
                row = {"scenario": f"{fault.name}-{provider}", **summary(world)}
            row["ratio"] = round(ratio(row["recorded_micros"], row["billed_micros"]), 4)
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    finally:
        storage.stop()
    ratios = [row["ratio"] for row in rows]
    return {
        "scenarios": len(rows),
        "recorded_over_billed_min": min(ratios, default=None),
        "recorded_over_billed_max": max(ratios, default=None),
        "stuck": sum(row["stuck"] for row in rows),
        "recovery_s_p95": percentile([r["recovery_s"] for r in rows], 0.95) if rows else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fault", action="append", default=[], help="only this fault (repeat)")
    parser.add_argument("--provider", action="append", default=[], help="only this provider")
    parser.add_argument("--verbose", action="store_true", help="the pipeline's warnings too")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL)
    print(json.dumps(run(set(args.fault), set(args.provider))))


if __name__ == "__main__":
    main()
