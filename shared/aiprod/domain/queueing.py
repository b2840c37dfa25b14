"""An attempt waiting for a render slot, and its start when one frees. Pure.

An admitted job is funded: its hold is taken at admission whether it runs or waits. A queued
attempt has no lease (time in the queue is not a lost worker) but its job's wall time runs.
"""

from __future__ import annotations

from aiprod.domain.jobs import AttemptState, Job, replace_attempt


def with_slot(job: Job, slot_key: str | None, now: float) -> Job:
    """The current (new) attempt runs with ``slot_key``, or waits for one (QUEUED)."""
    attempt = job.current
    if slot_key is not None:
        return replace_attempt(job, attempt.model_copy(update={"slot_key": slot_key}), now)
    queued = attempt.model_copy(
        update={"state": AttemptState.QUEUED, "queued_at": now, "lease_expires_at": None}
    )
    return replace_attempt(job, queued, now)


def is_queued(job: Job) -> bool:
    attempt = job.current
    return not job.is_terminal and attempt is not None and attempt.state is AttemptState.QUEUED


def start_queued(job: Job, slot_key: str, now: float, lease_s: float) -> Job | None:
    """A slot freed: the queued attempt is dispatched with it. None when the job's current
    attempt is not waiting any more (another drainer started it, or it was closed)."""
    if not is_queued(job):
        return None
    attempt = job.current
    update = {
        "state": AttemptState.DISPATCHED,
        "slot_key": slot_key,
        "lease_expires_at": max(now, attempt.not_before) + lease_s,
    }
    return replace_attempt(job, attempt.model_copy(update=update), now)
