"""Every state change of a job and its attempts, as a pure transition.

Services load a Job inside a transaction, call one of these, and write the result back, so
the rules (which attempt may run, what a duplicate is) live here and are unit-tested alone.
"""

from __future__ import annotations

from enum import StrEnum

from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.jobs import Attempt, AttemptState, Job, JobStatus, recount, replace_attempt
from aiprod.domain.leases import nothing_sent
from aiprod.domain.messages import ErrorClass, RenderOutcome

# Closing codes that are our decision, not the provider's answer: a stored task may still run.
CLOSED_BY_US = frozenset(
    {ErrorCode.WALL_TIME_EXCEEDED, ErrorCode.LEASE_EXPIRED, ErrorCode.CANCEL_REQUESTED}
)


class Claim(StrEnum):
    """What a render function should do with a delivered task."""

    START = "start"  # first claim: submit to the provider
    RESUME = "resume"  # a provider task is stored: poll it (never resubmit), under a new lease
    REPUBLISH = "republish"  # outcome already known: publish it again (it may have been lost)
    BUSY = "busy"  # another delivery is submitting under a live lease: acknowledge only
    ORPHANED = "orphaned"  # lease expired before a task id was stored: the reconciler decides
    STALE = "stale"  # attempt finished, superseded or unknown: acknowledge, do nothing


def claim(
    job: Job,
    number: int,
    now: float,
    lease_s: float,
    claim_id: str | None = None,
    window_s: float | None = None,
) -> tuple[Job, Claim]:
    """Decide what a delivered task may do, and take the lease when it may run.

    A first claim's lease is the submit window (``window_s``): the image fetch, the create
    and storing the task id must fit in it, so a worker lost before the id is stored is
    noticed in seconds, not after a whole render lease. A redelivered task whose attempt has
    a stored provider task id resumes polling it at once, live lease or not: polls are
    read-only and the report is conditioned on the attempt still running. Without a task
    id, a live lease means the first delivery may be creating it right now (BUSY); an
    expired one with no submit intent means nothing was sent, so the attempt simply starts
    again; with an intent, a create may have reached the provider, and only the reconciler
    decides (ORPHANED: look it up, or charge its worst case)."""
    attempt = job.attempt(number)
    window = lease_s if window_s is None else window_s
    if attempt is None or job.is_terminal or number != len(job.attempts):
        return job, Claim.STALE
    if attempt.state is AttemptState.REPORTED:
        return job, Claim.REPUBLISH
    if attempt.state is AttemptState.DISPATCHED:
        return _lease(job, attempt, now, window, claim_id), Claim.START
    if attempt.state is not AttemptState.RUNNING:
        return job, Claim.STALE
    if attempt.provider_task_id is not None:
        return _lease(job, attempt, now, lease_s, claim_id), Claim.RESUME
    if attempt.lease_expires_at is not None and now < attempt.lease_expires_at:
        return job, Claim.BUSY
    if nothing_sent(attempt):
        restarted = attempt.model_copy(update={"restarts": attempt.restarts + 1})
        return _lease(job, restarted, now, window, claim_id), Claim.START
    return job, Claim.ORPHANED


def record_report(
    job: Job,
    outcome: RenderOutcome,
    now: float,
    lease_s: float,
    from_states: frozenset[AttemptState] = frozenset({AttemptState.RUNNING}),
) -> Job:
    """Store the outcome on the attempt before publishing it, so a lost publish is repeated.

    A REPORTED attempt gets a fresh lease: if the outcome is never applied, the reconciler
    publishes it again when the lease runs out. An UNKNOWN outcome keeps the attempt RUNNING
    with its lease ended: the render function has stopped watching it, so the reconciler's
    next sweep polls the stored task (or decides about an unconfirmed create).
    ``from_states``: the reconciler also reports a DISPATCHED attempt (a timeout).
    """
    attempt = job.require(outcome.attempt)
    if attempt.state not in from_states:
        return job
    if outcome.error_class is ErrorClass.UNKNOWN:
        # its watcher left: the reconciler takes the attempt over at its next sweep
        update = {
            "reason": outcome.message,
            "error_code": outcome.error_code,
            "lease_expires_at": now,
        }
    else:
        update = {
            "state": AttemptState.REPORTED,
            "outcome": outcome,
            "lease_expires_at": now + lease_s,
        }
    return replace_attempt(job, attempt.model_copy(update=update), now)


def close_attempt(job: Job, outcome: RenderOutcome, now: float) -> Job:
    """Mark the attempt finished as the outcome says (the hold is settled alongside).

    A cost above the hold is charged in full; the excess is kept as ``overrun_micros`` on the
    attempt and the job, so an overrun is visible where the money was spent. An attempt we
    closed while its provider task may still be running (a job past its wall time) keeps
    that task as a late task: the reconciler polls it and charges what it costs."""
    held = job.require(outcome.attempt)
    task_id = outcome.provider_task_id or held.provider_task_id
    still_running = task_id is not None and outcome.error_code in CLOSED_BY_US
    late = held.late_task_lease
    if still_running and late is None and not outcome.cost_micros:
        late = now
    attempt = held.model_copy(
        update={
            "state": AttemptState.SUCCEEDED if outcome.succeeded else AttemptState.FAILED,
            "outcome": outcome,
            "error_class": outcome.error_class,
            "error_code": outcome.error_code,
            "reason": None if outcome.succeeded else outcome.message,
            "cost_micros": outcome.cost_micros,
            "cost_estimated": outcome.cost_estimated,
            "overrun_micros": max(0, outcome.cost_micros - held.hold_micros),
            "provider_task_id": task_id,
            "late_task_lease": late,
            "finished_at": now,
            "lease_expires_at": None,
        }
    )
    return recount(replace_attempt(job, attempt, now))


def succeed(job: Job, output_uri: str | None, now: float) -> Job:
    return _finish(job, JobStatus.SUCCEEDED, now, output_uri=output_uri)


def fail(job: Job, reason: str, message: str, now: float) -> Job:
    return _finish(job, JobStatus.FAILED, now, reason=reason, message=message)


def _finish(job: Job, status: JobStatus, now: float, **fields) -> Job:
    return job.model_copy(
        update={"status": status, "finished_at": now, "updated_at": now, **fields}
    )


def is_outcome_pending(job: Job, outcome: RenderOutcome) -> bool:
    """True when this outcome is for the attempt that is still open (not a duplicate)."""
    attempt = job.attempt(outcome.attempt)
    return (
        attempt is not None
        and not job.is_terminal
        and outcome.attempt == len(job.attempts)
        and attempt.state in (AttemptState.RUNNING, AttemptState.REPORTED)
    )


def stored_outcome(job: Job, delivered: RenderOutcome) -> RenderOutcome:
    """The outcome to apply: the one stored on its REPORTED attempt, which is what was
    published, unless a later fact corrected it before it was applied (a refused create's
    estimate voided: ``submissions.void_estimate``)."""
    attempt = job.attempt(delivered.attempt)
    stored = attempt.outcome if attempt is not None else None
    same = stored is not None and attempt.state is AttemptState.REPORTED
    return stored if same and stored.attempt == delivered.attempt else delivered


def announce(job: Job) -> Job:
    """The final event is out: a redelivered message need not publish it again."""
    return job.model_copy(update={"announced": True})


def announce_accepted(job: Job) -> Job:
    """job.accepted (and job.queued) is out: a duplicate job message need not publish it."""
    return job.model_copy(update={"accepted_announced": True})


def _lease(job: Job, attempt: Attempt, now: float, lease_s: float, claim_id: str | None) -> Job:
    """A fresh lease for this delivery. The first claim's time is kept (a resumed render
    started then: its duration counts from it)."""
    claimed_at = attempt.claimed_at if attempt.claimed_at is not None else now
    leased = attempt.model_copy(
        update={
            "state": AttemptState.RUNNING,
            "lease_expires_at": now + lease_s,
            "claimed_at": claimed_at,
            "claim_id": claim_id,
        }
    )
    return replace_attempt(job, leased, now)
