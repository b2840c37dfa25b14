"""The job events users subscribe to, built from the job document. Pure.

Each lifecycle event is published once per transition; a redelivery of a message whose first
handling stopped before it noted the event out may publish it again (at least once):
consumers key on ``job_id`` and ``type``.
"""

from __future__ import annotations

from aiprod.domain.jobs import Job
from aiprod.domain.messages import AttemptSummary, EventType, JobEvent, RejectReason
from aiprod.domain.money import usd

STATUS_OF = {
    EventType.ACCEPTED: "ACCEPTED",
    EventType.QUEUED: "QUEUED",
    EventType.REJECTED: "REJECTED",
    EventType.COMPLETED: "SUCCEEDED",
    EventType.FAILED: "FAILED",
    EventType.CANCELLED: "CANCELLED",
}


def event_for(job: Job, kind: EventType) -> JobEvent:
    last = job.current
    finished = job.finished_at
    return JobEvent(
        type=kind,
        job_id=job.job_id,
        tenant=job.tenant,
        status=STATUS_OF[kind],
        reason=None if job.reason is None else str(job.reason),
        message=job.message,
        backends_tried=job.backends_tried(),
        backend=last.backend if last else None,
        model=last.model if last else None,
        output_uri=job.output_uri,
        cost_micros=job.cost_micros,
        cost_usd=usd(job.cost_micros),
        qa=last.outcome.qa if last and last.outcome and job.output_uri else None,
        attempts=[
            AttemptSummary(
                attempt=a.number,
                backend=a.backend,
                model=a.model,
                state=a.state.value,
                error_class=a.error_class,
                error_code=a.error_code,
                reason=a.reason,
                cost_micros=a.cost_micros,
                qa=a.outcome.qa if a.outcome else None,
            )
            for a in job.attempts
        ],
        accepted_at=job.created_at,
        finished_at=finished,
        duration_s=None if finished is None else round(finished - job.created_at, 3),
        metadata=job.request.get("metadata", {}),
    )


def duplicate_rejection(
    job: Job, payload_hash: str, message: str, tenant: str | None, metadata: dict | None = None
) -> JobEvent:
    """A message that reused ``job``'s job_id for another payload is refused: addressed to
    the tenant that sent it, echoing its metadata, with its payload's hash and the job's own
    status (the job itself is untouched, and may well succeed)."""
    return JobEvent(
        type=EventType.DUPLICATE_REJECTED,
        job_id=job.job_id,
        tenant=tenant,
        status=job.status.value,
        reason=RejectReason.CONFLICT.value,
        message=message,
        payload_hash=payload_hash,
        metadata=metadata or {},
    )


def cancel_refusal(
    job: Job | None, job_id: str, reason: str, message: str, tenant: str | None = None
) -> JobEvent:
    """A cancel that did not cancel, to whoever asked: the job's own status (``UNKNOWN``
    when there is no such job, or none the asker may see) and why
    (``cancellation.CancelRefusal``). With no job, ``tenant`` is the asker's."""
    return JobEvent(
        type=EventType.CANCEL_REFUSED,
        job_id=job_id,
        tenant=tenant if job is None else job.tenant,
        status="UNKNOWN" if job is None else job.status.value,
        reason=reason,
        message=message,
        cost_micros=0 if job is None else job.cost_micros,
        cost_usd=usd(0 if job is None else job.cost_micros),
        metadata={} if job is None else job.request.get("metadata", {}),
    )
