"""Reserve an attempt (hold + DISPATCHED, in the caller's transaction) and send its task."""

from __future__ import annotations

from aiprod import topology
from aiprod.domain.budget import scopes_for
from aiprod.domain.jobs import Attempt, ChainStep, Job, add_attempt
from aiprod.domain.messages import JobRequest, RenderTask
from aiprod.ports import Bus, Transaction
from aiprod.services.ledger import Ledger


def reserve_attempt(
    tx: Transaction,
    book: Ledger,
    job: Job,
    options: list[tuple[ChainStep, float]],
    day: str,
    now: float,
    lease_s: float,
) -> tuple[Job, int] | None:
    """In the caller's transaction: hold the budget for the first option that fits every
    scope of the job, and add it as the next DISPATCHED attempt. Returns the job and the
    index of the option taken, or None when none fits."""
    scopes = scopes_for(job.tenant)
    for index, (step, not_before) in enumerate(options):
        keys = book.reserve(tx, scopes, day, step.hold_micros)
        if keys is None:
            continue
        lease_until = max(now, not_before) + lease_s
        job = add_attempt(job, step, keys, now, not_before=not_before, lease_expires_at=lease_until)
        return job, index
    return None


def task_for(job: Job, attempt: Attempt) -> RenderTask:
    return RenderTask(
        job_id=job.job_id,
        attempt=attempt.number,
        backend=attempt.backend,
        model=attempt.model,
        request=JobRequest.model_validate(job.request, strict=False),
        hold_micros=attempt.hold_micros,
        not_before=attempt.not_before,
    )


def publish_task(bus: Bus, task: RenderTask) -> None:
    attrs = {"job_id": task.job_id, "attempt": str(task.attempt), "backend": task.backend}
    bus.publish(topology.render_topic(task.backend), task.model_dump_json().encode(), attrs)
