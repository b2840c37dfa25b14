"""``aiprod status``: one job, readable at a glance."""

from __future__ import annotations

from datetime import UTC, datetime

from aiprod.domain.jobs import Job
from aiprod.domain.messages import money
from aiprod.local.tables import render_table


def describe_job(job: Job) -> str:
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


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
