"""``aiprod demo`` (``make run``): a sample batch through the real handlers, in-process.

Runway is scripted to go down part-way, so the run shows fallback and the circuit breaker;
the budget is sized so the 70 % warning (cheapest-first routing) is reached; Veo runs one
render at a time, so its jobs wait in the render queue (the report's queue columns).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path

from aiprod import logs
from aiprod.adapters.local_metrics import JsonLinesSink
from aiprod.config import Settings
from aiprod.domain.jobs import TERMINAL_STATUSES
from aiprod.domain.messages import RejectReason
from aiprod.domain.money import money
from aiprod.repositories import jobs as job_records
from aiprod.services.capacity_admin import set_capacity
from aiprod_tools.client import publish_job
from aiprod_tools.embedded import add_tenant, embedded_app
from aiprod_tools.views.budget import ledger_days_table
from aiprod_tools.views.jobs import jobs_table
from aiprod_tools.views.report import run_report

DEMO_SETTINGS = Settings(
    project="aiprod-demo",
    global_limit_micros=9_000_000,
    tenant_limits={"social": 400_000},
    poll_interval_s=0.05,
    image_buckets=frozenset({"aiprod-demo-assets"}),  # examples/jobs.jsonl's gs:// images
    simulation={
        "runway": {"latency_s": 0.4, "outage_after": 4, "outage_count": 8},
        "veo": {"latency_s": 0.3, "cost_ratio": 1.0},
        "replicate": {"latency_s": 0.2, "cost_ratio": 0.9},
    },
)
DEMO_CAPACITY = {"veo": 1}  # renders at a time (aiprod capacity set), so some jobs queue


def run_demo(batch: Path, log_path: Path, spacing_s: float = 0.05) -> int:
    lines = [line for line in batch.read_text().splitlines() if line.strip()]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    _log_to_file(log_path)
    metrics_path = log_path.parent / "metrics.jsonl"
    metrics_path.unlink(missing_ok=True)  # this run's metrics only
    metrics = JsonLinesSink(metrics_path, job="demo")
    app = embedded_app(DEMO_SETTINGS, workers=24, metrics=metrics)
    for backend, concurrent in DEMO_CAPACITY.items():
        set_capacity(app.store, app.catalog, backend, concurrent)
    for tenant, limit in DEMO_SETTINGS.tenant_limits.items():  # each publishes on its topic
        add_tenant(app, tenant, limit)
    out = sys.stdout
    out.write(f"aiprod demo: {len(lines)} jobs from {batch} on the embedded bus and store\n")
    out.write("simulated providers; runway is scripted to fail part-way (watch the fallbacks),\n")
    out.write("and veo runs one render at a time (watch its queue: queued, wait p95)\n\n")
    started = time.time()
    stop = threading.Event()
    progress = threading.Thread(target=_show_progress, args=(app, len(lines), stop, out))
    progress.start()
    for line in lines:
        publish_job(app.bus, line)
        time.sleep(spacing_s)
    app.bus.drain(timeout_s=120)
    stop.set()
    progress.join()
    jobs = [job_records.load(app.store, _job_id(line)) for line in lines]
    known = [job for job in jobs if job is not None]
    # an invalid line with a usable job_id is a REJECTED job (reason invalid); one without is not
    invalid = len(lines) - len(known) + sum(j.reason == RejectReason.INVALID for j in known)
    out.write("\n" + jobs_table(known) + "\n\n")
    out.write(ledger_days_table(app.store, DEMO_SETTINGS) + "\n\n")
    done = [j for j in known if j.is_terminal]
    spent = sum(j.cost_micros for j in known)
    out.write(
        f"{len(done)}/{len(known)} jobs finished ({invalid} of {len(lines)} lines rejected as "
        f"invalid); charged {money(spent)} in {time.time() - started:.1f}s. Logs: {log_path}\n"
    )
    metrics.flush()
    out.write(
        "\nWhat the metrics say (aiprod report; Cloud Monitoring gets the same when deployed):\n"
    )
    run_report(metrics_path, log_path.parent / "report.html", out)
    return 0 if len(done) == len(known) else 1


def _show_progress(app, total: int, stop: threading.Event, out) -> None:
    tty = out.isatty()
    last = ""
    while True:
        finished = stop.is_set()
        jobs = job_records.every(app.store, limit=100_000)
        done = sum(1 for j in jobs if j.status in TERMINAL_STATUSES)
        fallbacks = sum(max(0, len(j.attempts) - 1) for j in jobs)
        running = len(jobs) - done
        bar = "#" * (20 * done // max(total, 1))
        line = (
            f"[{bar:<20}] {done:>3}/{total} done  {running:>2} running  "
            f"{fallbacks:>2} fallbacks/retries"
        )
        if tty:
            out.write("\r" + line)
        elif line != last and (finished or done % 6 == 0):
            out.write(line + "\n")
        out.flush()
        last = line
        if finished:
            break
        time.sleep(0.1)
    if tty:
        out.write("\n")


def _job_id(line: str) -> str:
    try:
        value = json.loads(line).get("job_id", "")
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def _log_to_file(path: Path) -> None:
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logs.CloudLoggingFormatter("aiprod-demo"))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
