"""Jobs for people: one in detail (``aiprod status``), many as a table (the demo)."""

from __future__ import annotations

from datetime import UTC, datetime

from aiprod.domain.jobs import Job
from aiprod.domain.money import money
from aiprod.repositories.queue import QUEUE_READ
from aiprod_tools.views.tables import render_table


def describe_job(job: Job, now: float | None = None, ahead: int | None = None) -> str:
    """The job; a queued one (given ``now`` and ``ahead``: ``queue.queued_ahead``) also says
    where it waits, for how long, and its place in the queue."""
    head = [
        f"job       {job.job_id}" + (f"  (tenant {job.tenant})" if job.tenant else ""),
        f"status    {job.status.value}"
        + (f"  reason {job.reason}: {job.message}" if job.reason else ""),
        f"created   {_when(job.created_at)}",
        f"finished  {_when(job.finished_at)}",
        f"cost      {money(job.cost_micros)}",
        f"output    {job.output_uri or '-'}",
        "chain     " + (" > ".join(f"{s.backend}/{s.model}" for s in job.chain) or "-"),
    ]
    if job.queue_key and now is not None and ahead is not None:
        head.insert(2, queue_line(job, now, ahead))
    if job.cancel is not None and not job.is_terminal:
        who = f" by {job.cancel.requested_by}" if job.cancel.requested_by else ""
        head.insert(2, f"cancel    requested{who} at {_when(job.cancel.requested_at)}")
    rows = [
        [
            a.number,
            a.backend,
            a.model,
            a.state.value,
            money(a.hold_micros),
            money(a.cost_micros),
            a.error_class or "-",
            (a.reason or "")[:60],
        ]
        for a in job.attempts
    ]
    table = render_table(
        ["#", "backend", "model", "state", "hold", "cost", "class", "reason"], rows
    )
    return "\n".join(head) + ("\n\n" + table if rows else "")


def queue_line(job: Job, now: float, ahead: int) -> str:
    """``queued    on runway for 2m05s, position 4 (3 ahead)``; past the bounded read of the
    queue (``QUEUE_READ``) the count is a floor: ``1000+ ahead``."""
    attempt = job.current
    waited = wait_text(max(0.0, now - (attempt.queued_at or now)))
    more = "+" if ahead >= QUEUE_READ else ""
    place = f"position {ahead + 1}{more} ({ahead}{more} ahead)"
    return f"queued    on {attempt.backend} for {waited}, {place}"


def wait_text(seconds: float) -> str:
    """42s, 2m05s, 1h02m."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


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


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
