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
MAX_RESTARTS = 2  # a claim lost before anything was sent starts again this often, then times out
LATE_TASK_GIVE_UP_S = 86_400.0  # a late task still unanswered after a day is left to the audit


class Due(StrEnum):
    """What an attempt needs from the reconciler now."""

    NOTHING = "nothing"  # its lease is live (or the job is over)
    REDISPATCH = "redispatch"  # never claimed: the task was probably lost, publish it again
    RESTART = "restart"  # claimed, then lost before anything was sent: start it again
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
    waiting = attempt.state in (AttemptState.DISPATCHED, AttemptState.QUEUED)
    if waiting and overdue(job, now):
        return Due.OVERDUE
    if attempt.state is AttemptState.QUEUED:
        return Due.NOTHING  # no lease: it waits for a slot (the queue drains it)
    if not expired or attempt.state not in _OPEN:
        return Due.NOTHING
    if attempt.state is AttemptState.REPORTED:
        return Due.REPUBLISH if attempt.outcome is not None else Due.NOTHING
    if attempt.state is AttemptState.DISPATCHED:
        return Due.REDISPATCH if attempt.redispatched < MAX_REDISPATCHES else Due.TIME_OUT
    if attempt.provider_task_id is not None:
        return Due.POLL
    if overdue(job, now):
        return Due.OVERDUE
    if nothing_sent(attempt):
        return Due.RESTART if attempt.restarts < MAX_RESTARTS else Due.TIME_OUT
    return Due.TIME_OUT


def restart(job: Job, now: float, lease_s: float) -> Job:
    """Our worker was lost before it sent anything: the same attempt is dispatched again
    (same hold, no new attempt), so our crash is neither a provider failure nor a retry."""
    attempt = job.current
    changed = attempt.model_copy(
        update={
            "state": AttemptState.DISPATCHED,
            "claim_id": None,
            "restarts": attempt.restarts + 1,
            "lease_expires_at": now + lease_s,
        }
    )
    return replace_attempt(job, changed, now)


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
    """A FALLBACK failure. It does not count against the provider when our process was lost
    (``lease_expired``); it does when the provider's own answer left the create unconfirmed
    (a 5xx or a timeout: ``submit_unconfirmed``), so an outage opens the circuit instead of
    charging a hold on every job."""
    attempt = job.current
    what = "was never claimed" if attempt.state is AttemptState.DISPATCHED else "stopped"
    message = f"attempt {attempt.number} {what}: its lease expired with no provider task to poll"
    code = ErrorCode.LEASE_EXPIRED
    if attempt.error_code in UNCONFIRMED_SUBMIT_CODES and attempt.provider_task_id is None:
        code = ErrorCode.SUBMIT_UNCONFIRMED
        message = f"attempt {attempt.number}: the provider never confirmed its create"
    return closing_outcome(job, attempt, ErrorClass.FALLBACK, code, message, now)


def possible_charge(attempt: Attempt) -> int:
    """What closing this attempt without a provider's final answer must charge.

    - A cost the provider already reported (its output could not be kept): that cost.
    - A create that may have reached the provider with no task id stored (the intent was
      written, or the answer was lost or garbled): a paid render nobody can look up may
      exist, so its worst case, the hold, is charged (and marked an estimate: a task id
      that turns up later replaces it with the real cost).
    - Anything else closed by a lease: nothing was sent, or a stored task is still polled
      as a late task and charged when it finishes.
    """
    if attempt.known_cost_micros:
        return attempt.known_cost_micros
    return attempt.hold_micros if unconfirmed_create(attempt) else 0


def nothing_sent(attempt: Attempt) -> bool:
    """A claimed attempt whose worker never wrote the submit intent: no create went out.
    (A claim without a ``claim_id`` predates the intent and proves nothing.)"""
    return (
        attempt.claim_id is not None
        and attempt.submitting_at is None
        and attempt.provider_task_id is None
        and attempt.error_code is None
    )


def unconfirmed_create(attempt: Attempt) -> bool:
    """A create may have reached the provider, and no task id says what became of it."""
    sent = attempt.submitting_at is not None or attempt.error_code in UNCONFIRMED_SUBMIT_CODES
    running = attempt.state is AttemptState.RUNNING
    return running and attempt.provider_task_id is None and sent


def overdue_outcome(job: Job, now: float) -> RenderOutcome:
    message = f"the job ran past its wall-time limit of {job.max_wall_s:.0f} s"
    return closing_outcome(
        job, job.current, ErrorClass.TERMINAL, ErrorCode.WALL_TIME_EXCEEDED, message, now
    )


def closing_outcome(
    job: Job, attempt: Attempt, cls: ErrorClass, code: ErrorCode, message: str, now: float
) -> RenderOutcome:
    """The outcome we store when we close an attempt ourselves, with no final answer from its
    provider: it charges ``possible_charge`` (a stored task goes on as a late task)."""
    charge = possible_charge(attempt)
    estimated = bool(charge) and not attempt.known_cost_micros
    if estimated:
        why = attempt.error_code or "no task id was stored"
        message += f"; its create was never confirmed ({why}), so the hold is charged"
    elif charge:
        message += "; charged what the provider reported"
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
        cost_estimated=estimated,
        provider_task_id=attempt.provider_task_id,
        started_at=attempt.claimed_at or attempt.dispatched_at,
        finished_at=now,
    )


_OPEN = frozenset({AttemptState.DISPATCHED, AttemptState.RUNNING, AttemptState.REPORTED})
# The states the reconciler may close with a timeout or an overdue outcome (as REPORTED).
CLOSABLE = frozenset({AttemptState.QUEUED, AttemptState.DISPATCHED, AttemptState.RUNNING})
