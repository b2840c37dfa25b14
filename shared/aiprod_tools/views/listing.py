"""Jobs found by ``aiprod jobs list`` and followed by ``aiprod wait``, for people and tools.

``--since`` takes a duration back from now (``45s``, ``90m``, ``2h``, ``3d``, ``1w``) or a
moment: a date (``2026-11-30``, its midnight) or an ISO date-time; one without a UTC offset is
in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiprod.domain.jobs import Job
from aiprod.domain.money import money
from aiprod_tools.views.tables import render_table

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")


def since_moment(text: str, now: float) -> float:
    """The epoch second ``--since`` names; ValueError when it is neither form."""
    match = _DURATION.fullmatch(text.strip())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_row(job: Job) -> dict:
    """One job for ``--json``: the fields a list shows (``aiprod status --json`` for all)."""
    last = job.current
    return {
        "job_id": job.job_id,
        "tenant": job.tenant,
        "status": job.status.value,
        "reason": None if job.reason is None else str(job.reason),
        "backend": last.backend if last else None,
        "attempt_state": last.state.value if last else None,
        "attempts": len(job.attempts),
        "cost_micros": job.cost_micros,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


def jobs_table(jobs: list[Job]) -> str:
    headers = ["job", "tenant", "status", "backend", "attempts", "cost", "created", "reason"]
    rows = [
        [
            r["job_id"],
            r["tenant"],
            r["status"],
            r["backend"],
            r["attempts"],
            money(r["cost_micros"]),
            iso(r["created_at"]),
            r["reason"],
        ]
        for r in map(job_row, jobs)
    ]
    return render_table(headers, rows) if rows else "no job matches"


def progress_line(job: Job) -> str:
    """``RUNNING  attempt 2 on veo (RUNNING)  cost $0.00``: what ``wait`` prints on a change."""
    last = job.current
    where = f"attempt {last.number} on {last.backend} ({last.state.value})" if last else "-"
    reason = f"  reason {job.reason}" if job.reason else ""
    if job.cancel is not None and not job.is_terminal:
        reason += "  (cancel requested)"
    return f"{job.status.value:<9} {where}  cost {money(job.cost_micros)}{reason}"
