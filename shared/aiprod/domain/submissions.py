"""Submitting a render and keeping what it cost, as pure transitions: the intent written
before a create, where a provider task id is kept when it arrives (on its running attempt,
or as a late task of an attempt already closed), a cost seen before the output could be
kept, and a late task's charge. Each one is applied in a transaction by a service.

The rule they serve: a cost the provider reported, or may have incurred, is never dropped,
and nothing is created twice unless the first create provably does not exist.
"""

from __future__ import annotations

from enum import StrEnum

from aiprod.domain.jobs import AttemptState, Job, recount, replace_attempt
from aiprod.domain.messages import ErrorClass, RenderOutcome

# Tries to keep a finished output (one per poll) before the attempt closes charged its cost.
MAX_KEEP_TRIES = 5


def begin_submit(
    job: Job, number: int, claim_id: str | None, now: float, window_s: float
) -> Job | None:
    """The intent written before a create is sent: from here on the provider may bill, so a
    lost worker's attempt is charged its worst case unless the task is found. None when this
    delivery no longer holds the claim (it must not send anything)."""
    attempt = job.attempt(number)
    mine = (
        attempt is not None
        and not job.is_terminal
        and attempt.state is AttemptState.RUNNING
        and attempt.claim_id == claim_id
        and attempt.provider_task_id is None
        and attempt.submitting_at is None
    )
    if not mine:
        return None
    update = {"submitting_at": now, "lease_expires_at": now + window_s}
    return replace_attempt(job, attempt.model_copy(update=update), now)


class Stored(StrEnum):
    """Where a provider task id was kept."""

    STORED = "stored"  # on its running attempt: the render goes on
    KNOWN = "known"  # it was there already (another delivery found it first)
    LATE = "late"  # the attempt closed before the id came: a late task, polled and charged
    LOST = "lost"  # nowhere to keep it (logged for an operator)


def record_submission(
    job: Job, number: int, task_id: str, now: float, lease_s: float
) -> tuple[Job, Stored]:
    attempt = job.require(number)
    if attempt.provider_task_id == task_id:
        return job, Stored.KNOWN
    if attempt.provider_task_id is not None:
        return job, Stored.LOST
    if attempt.state is AttemptState.RUNNING:
        update = {"provider_task_id": task_id, "lease_expires_at": now + lease_s}
        return replace_attempt(job, attempt.model_copy(update=update), now), Stored.STORED
    late = attempt.model_copy(
        update={"provider_task_id": task_id, "late_task_lease": now + lease_s}
    )
    return replace_attempt(job, late, now), Stored.LATE


def adopt_task(job: Job, task_id: str, now: float, lease_s: float) -> Job:
    """A task found at the provider (a lost create's) becomes the current attempt's task."""
    return record_submission(job, job.current.number, task_id, now, lease_s)[0]


def record_known_cost(job: Job, number: int, cost_micros: int, now: float) -> Job:
    """A finished render whose output could not be kept yet: what the provider reported is
    written on the attempt now (so no closing path can drop it), and the failed try counted."""
    attempt = job.require(number)
    if attempt.state is not AttemptState.RUNNING:
        return job
    update = {
        "known_cost_micros": max(attempt.known_cost_micros, cost_micros),
        "keep_failures": attempt.keep_failures + 1,
    }
    return replace_attempt(job, attempt.model_copy(update=update), now)


def charge_late_task(job: Job, number: int, cost_micros: int, now: float) -> tuple[Job, int]:
    """What a late task cost replaces its closed attempt's estimate (the hold it was charged
    as the worst case of an unconfirmed create), or adds to what it was charged. Returns the
    job and the change the ledger must record (negative: part of the estimate comes back)."""
    attempt = job.require(number)
    if attempt.late_task_lease is None or attempt.holds_budget:
        return job, 0
    before = attempt.cost_micros
    after = cost_micros if attempt.cost_estimated else before + cost_micros
    update = {
        "cost_micros": after,
        "overrun_micros": max(0, after - attempt.hold_micros),
        "cost_estimated": False,
        "late_task_lease": None,
    }
    return recount(replace_attempt(job, attempt.model_copy(update=update), now)), after - before


def extend_late_task(job: Job, number: int, until: float | None, now: float) -> Job:
    """Look at a late task again at ``until`` (None: stop looking, it is given up)."""
    attempt = job.require(number)
    changed = attempt.model_copy(update={"late_task_lease": until})
    return replace_attempt(job, changed, now)


def made_nothing(outcome: RenderOutcome) -> bool:
    """A create the provider answered with a refusal (or that never left us): a failed
    outcome with no task id and a definite class. A create whose answer was lost is UNKNOWN
    (``submit_unconfirmed``), and a task that exists always comes with its id."""
    failed = not outcome.succeeded and outcome.error_class not in (None, ErrorClass.UNKNOWN)
    return failed and outcome.provider_task_id is None


def void_estimate(job: Job, number: int, now: float) -> tuple[Job, int]:
    """A create the provider refused, on an attempt closed meanwhile (a cancel, a lease)
    charging its hold as the estimate of a create that may have made a task: nothing was
    made, so nothing is charged. Its stored outcome loses the estimate while it is not yet
    applied (handle_outcome settles the stored one); once closed, the estimate is given
    back. Returns the job and the ledger change (negative, or 0)."""
    attempt = job.require(number)
    if attempt.provider_task_id is not None or attempt.late_task_lease is not None:
        return job, 0
    stored = attempt.outcome
    if attempt.state is AttemptState.REPORTED and stored is not None and stored.cost_estimated:
        message = f"{stored.message}; its create was refused: nothing to charge"
        voided = stored.model_copy(
            update={"cost_micros": 0, "cost_estimated": False, "message": message}
        )
        return replace_attempt(job, attempt.model_copy(update={"outcome": voided}), now), 0
    if attempt.holds_budget or not attempt.cost_estimated:
        return job, 0
    update = {"cost_micros": 0, "cost_estimated": False, "overrun_micros": 0}
    voided_job = recount(replace_attempt(job, attempt.model_copy(update=update), now))
    return voided_job, -attempt.cost_micros
