"""Every state change of a job and its attempts, as a pure transition.

Services load a Job inside a transaction, call one of these, and write the result back, so
the rules (which attempt may run, what a duplicate is) live here and are unit-tested alone.
"""

from __future__ import annotations

from enum import StrEnum

from aiprod.domain.jobs import Attempt, AttemptState, Job, JobStatus, replace_attempt
from aiprod.domain.messages import ErrorClass, RenderOutcome


class Claim(StrEnum):
    """What a render function should do with a delivered task."""

    START = "start"  # first claim: submit to the provider
    RESUME = "resume"  # a provider task is stored: poll it (never resubmit), under a new lease
    REPUBLISH = "republish"  # outcome already known: publish it again (it may have been lost)
    BUSY = "busy"  # another delivery is submitting under a live lease: acknowledge only
    ORPHANED = "orphaned"  # lease expired before a task id was stored: the reconciler decides
    STALE = "stale"  # attempt finished, superseded or unknown: acknowledge, do nothing


def claim(job: Job, number: int, now: float, lease_s: float) -> tuple[Job, Claim]:
    """Decide what a delivered task may do, and take the lease when it may run.

    A redelivered task whose attempt has a stored provider task id resumes polling it at
    once, live lease or not: Pub/Sub redelivers a killed worker's task within seconds, and
    waiting out the lease would hold the job for minutes. Polls are read-only and the
    report is conditioned on the attempt still running, so a second poller beside a live
    one costs a few reads and nothing else. Without a task id the first delivery may be
    creating it right now: only the lease's expiry (ORPHANED, for the reconciler) tells."""
    attempt = job.attempt(number)
    if attempt is None or job.is_terminal or number != len(job.attempts):
        return job, Claim.STALE
    if attempt.state is AttemptState.REPORTED:
        return job, Claim.REPUBLISH
    if attempt.state is AttemptState.DISPATCHED:
        return _lease(job, attempt, now, lease_s, AttemptState.RUNNING), Claim.START
    if attempt.state is not AttemptState.RUNNING:
        return job, Claim.STALE
    if attempt.provider_task_id is not None:
        return _lease(job, attempt, now, lease_s, AttemptState.RUNNING), Claim.RESUME
    if attempt.lease_expires_at is not None and now < attempt.lease_expires_at:
        return job, Claim.BUSY
    return job, Claim.ORPHANED


def record_submission(job: Job, number: int, task_id: str, now: float, lease_s: float) -> Job:
    attempt = _require(job, number).model_copy(
        update={"provider_task_id": task_id, "lease_expires_at": now + lease_s}
    )
    return replace_attempt(job, attempt, now)


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
    and its lease as it was, so the stored task is polled once the lease expires.
    ``from_states``: the reconciler also reports a DISPATCHED attempt (a timeout).
    """
    attempt = _require(job, outcome.attempt)
    if attempt.state not in from_states:
        return job
    if outcome.error_class is ErrorClass.UNKNOWN:
        update = {"reason": outcome.message, "error_code": outcome.error_code}
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
    attempt and the job, so an overrun is visible where the money was spent."""
    held = _require(job, outcome.attempt)
    attempt = held.model_copy(
        update={
            "state": AttemptState.SUCCEEDED if outcome.succeeded else AttemptState.FAILED,
            "outcome": outcome,
            "error_class": outcome.error_class,
            "error_code": outcome.error_code,
            "reason": None if outcome.succeeded else outcome.message,
            "cost_micros": outcome.cost_micros,
            "overrun_micros": max(0, outcome.cost_micros - held.hold_micros),
            "provider_task_id": outcome.provider_task_id or None,
            "finished_at": now,
            "lease_expires_at": None,
        }
    )
    closed = replace_attempt(job, attempt, now)
    totals = {
        "cost_micros": sum(a.cost_micros for a in closed.attempts),
        "overrun_micros": sum(a.overrun_micros for a in closed.attempts),
    }
    return closed.model_copy(update=totals)


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


def announce(job: Job) -> Job:
    """The final event is out: a redelivered outcome need not publish it again."""
    return job.model_copy(update={"announced": True})


def _lease(job: Job, attempt: Attempt, now: float, lease_s: float, state: AttemptState) -> Job:
    """A fresh lease. The first claim's time is kept (a resumed render started then: its
    duration counts from it)."""
    claimed_at = attempt.claimed_at if attempt.claimed_at is not None else now
    leased = attempt.model_copy(
        update={"state": state, "lease_expires_at": now + lease_s, "claimed_at": claimed_at}
    )
    return replace_attempt(job, leased, now)


def _require(job: Job, number: int) -> Attempt:
    attempt = job.attempt(number)
    if attempt is None:
        raise ValueError(f"job {job.job_id} has no attempt {number}")
    return attempt
