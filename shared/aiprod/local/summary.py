"""Summaries for people: the jobs table and the budget table (demo, status, CLI)."""

from __future__ import annotations

from aiprod.config import Settings
from aiprod.domain.jobs import Job
from aiprod.domain.messages import money
from aiprod.local.tables import render_table
from aiprod.ports import DocumentStore
from aiprod.services.ledger import SHARDS, Ledger


def jobs_table(jobs: list[Job]) -> str:
    rows = []
    for job in jobs:
        last = job.current
        used = last.backend if last and job.status.value == "SUCCEEDED" else None
        duration = None if job.finished_at is None else job.finished_at - job.created_at
        rows.append(
            [
                job.job_id,
                " > ".join(job.backends_tried()) or "-",
                used,
                job.status.value if job.reason is None else f"{job.status.value} ({job.reason})",
                money(job.cost_micros),
                None if duration is None else f"{duration:.2f}s",
            ]
        )
    return render_table(["job", "backends tried", "used", "status", "cost", "duration"], rows)


def budget_table(store: DocumentStore, settings: Settings) -> str:
    """Every scope and day the ledger has shards for, summed, with its threshold state."""
    book = Ledger(settings)
    days = sorted({(d["day"], d["scope"]) for d in store.list(SHARDS, limit=100_000)})
    rows = []
    for day, scope in days:
        entry = book.snapshot(store, scope, day)
        rows.append(
            [
                entry.scope,
                entry.day,
                money(entry.limit_micros),
                money(entry.held_micros),
                money(entry.spent_micros),
                money(entry.headroom),
                f"{100 * entry.utilization():.0f}%",
                entry.state(settings.thresholds).value,
            ]
        )
    headers = ["scope", "day", "limit", "held", "spent", "headroom", "used", "state"]
    return render_table(headers, rows)
