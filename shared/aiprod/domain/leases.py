"""Leases: what the reconciler does with an attempt nobody finished in time. Pure.

Every open attempt carries a lease (``lease_expires_at``): DISPATCHED until a render function
claims it, RUNNING while one works on it (extended when the provider task id is stored),
REPORTED until handle_outcome applies the outcome. A live lease means someone is on it; an
expired one means the message or the process was lost, and the reconciler decides here what
to do, never submitting to a provider again. Each decision is applied by the reconciler in a
transaction conditioned on the attempt being exactly as it read it, so a render function
that claims the attempt meanwhile wins and the reconciler does nothing.
"""

from __future__ import annotations

from enum import StrEnum

from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.jobs import Attempt, AttemptState, Job, replace_attempt
from aiprod.domain.messages import ErrorClass, RenderOutcome

# UNKNOWN codes a submit leaves when the provider may have a task we have no id for.
UNCONFIRMED_SUBMIT_CODES = frozenset({ErrorCode.SUBMIT_UNCONFIRMED, ErrorCode.MALFORMED_RESPONSE})
MAX_REDISPATCHES = 1  # a DISPATCHED task is published again once, then the attempt times out


class Due(StrEnum):
    """What an attempt needs from the reconciler now."""

    NOTHING = "nothing"  # its lease is live (or the job is over)
    REDISPATCH = "redispatch"  # never claimed: the task was probably lost, publish it again
    POLL = "poll"  # a provider task is stored: look at it once (never submit again)
    TIME_OUT = "time_out"  # nothing to poll and nobody on it: fail it, so the job falls back
    OVERDUE = "overdue"  # past the job's wall time: fail it for good
    REPUBLISH = "republish"  # outcome stored but never applied: publish it again


def lease_expired(attempt: Attempt, now: float) -> bool:
    """Expired once ``now`` reaches it (the render claim's rule); no lease counts as expired."""
    return attempt.lease_expires_at is None or now >= attempt.lease_expires_at


def overdue(job: Job, now: float) -> bool:
    return job.wall_deadline_at is not None and now >= job.wall_deadline_at


def due(job: Job, now: float) -> Due:
    """A live render is never cut off, even past the wall time: it is judged when its lease
    expires (its provider may be about to charge us, and the outcome says how much)."""
    attempt = job.current
    if job.is_terminal or attempt is None:
        return Due.NOTHING
    expired = lease_expired(attempt, now)
    if attempt.state is AttemptState.DISPATCHED and overdue(job, now):
        return Due.OVERDUE
    if not expired or attempt.state not in _OPEN:
        return Due.NOTHING
    if attempt.state is AttemptState.REPORTED:
        return Due.REPUBLISH if attempt.outcome is not None else Due.NOTHING
    if attempt.state is AttemptState.DISPATCHED:
        return Due.REDISPATCH if attempt.redispatched < MAX_REDISPATCHES else Due.TIME_OUT
    if attempt.provider_task_id is not None:
        return Due.POLL
    return Due.OVERDUE if overdue(job, now) else Due.TIME_OUT


def redispatch(job: Job, now: float, lease_s: float) -> Job:
    """Count one more publish of the current attempt's task and give it a fresh lease."""
    attempt = job.current
    changed = attempt.model_copy(
        update={"redispatched": attempt.redispatched + 1, "lease_expires_at": now + lease_s}
    )
    return replace_attempt(job, changed, now)


def extend(job: Job, now: float, lease_s: float) -> Job:
    """A fresh lease for the current attempt: it is being looked after (or looked at again)."""
    changed = job.current.model_copy(update={"lease_expires_at": now + lease_s})
    return replace_attempt(job, changed, now)


def timeout_outcome(job: Job, now: float) -> RenderOutcome:
    """A FALLBACK failure that does not count against the provider (our process was lost)."""
    attempt = job.current
    what = "was never claimed" if attempt.state is AttemptState.DISPATCHED else "stopped"
    message = f"attempt {attempt.number} {what}: its lease expired with no provider task to poll"
    return _failure(job, attempt, ErrorClass.FALLBACK, ErrorCode.LEASE_EXPIRED, message, now)


def possible_charge(attempt: Attempt) -> int:
    """What closing this attempt without an answer must charge.

    A create whose answer was lost (a timeout or a garbled reply, so no task id was stored)
    may have started a paid render that nobody can look up. Releasing its hold would let the
    budget be spent twice over; its worst case, the hold, is charged instead (and said so on
    the attempt). Every other attempt closed by a lease charges nothing.
    """
    unconfirmed = attempt.error_code in UNCONFIRMED_SUBMIT_CODES
    if attempt.state is AttemptState.RUNNING and attempt.provider_task_id is None and unconfirmed:
        return attempt.hold_micros
    return 0


def overdue_outcome(job: Job, now: float) -> RenderOutcome:
    message = f"the job ran past its wall-time limit of {job.max_wall_s:.0f} s"
    return _failure(
        job, job.current, ErrorClass.TERMINAL, ErrorCode.WALL_TIME_EXCEEDED, message, now
    )


def _failure(
    job: Job, attempt: Attempt, cls: ErrorClass, code: ErrorCode, message: str, now: float
) -> RenderOutcome:
    charge = possible_charge(attempt)
    if charge:
        message += (
            f"; its create was never confirmed ({attempt.error_code}), so the hold is charged"
        )
    return RenderOutcome(
        job_id=job.job_id,
        attempt=attempt.number,
        backend=attempt.backend,
        model=attempt.model,
        succeeded=False,
        error_class=cls,
        error_code=code,
        message=message,
        cost_micros=charge,
        provider_task_id=attempt.provider_task_id,
        started_at=attempt.claimed_at or attempt.dispatched_at,
        finished_at=now,
    )


_OPEN = frozenset({AttemptState.DISPATCHED, AttemptState.RUNNING, AttemptState.REPORTED})
# The states the reconciler may close with a timeout or an overdue outcome (as REPORTED).
CLOSABLE = frozenset({AttemptState.DISPATCHED, AttemptState.RUNNING})
