"""Cancelling a job, as pure rules: what a cancel request does in each state of a job.

A cancel never forgets money. Whatever state the job is in, the attempt in flight is closed
through the same door as every other attempt: an outcome stored on it (REPORTED), which
handle_outcome applies, settling the hold with what the provider charged. The request is
kept on the job (``Job.cancel``) from the start, so whichever handler ends the job ends it
CANCELLED, never with a fallback:

- nothing reached a provider yet (queued, dispatched, claimed before its create): the
  attempt is closed at once and its hold released;
- a create may be in flight: the attempt is closed at once, charging what a closing by us
  charges (``leases.possible_charge``: the hold, as an estimate); the task that turns up is
  a late task, asked to stop where the provider allows, and charged what it really cost
  (a create the provider refused charges nothing);
- a create whose answer was lost, on a provider that lets us look tasks up: the task is
  looked for first, and if found, adopted and stopped like any stored task;
- a provider task is stored and its provider can stop it: the provider is asked to, and the
  task's own end (cancelled, or finished first) closes the attempt with the real cost;
- a stored task its provider cannot stop (or whose stop failed) is looked at once: finished,
  its own outcome ends the job; still running, the attempt is closed at once and the task
  charged when it ends (a late task);
- an outcome is stored already: applying it ends the job.

A render that finished before the cancel reached it is delivered and charged: the job ends
SUCCEEDED, and ``job.cancel_refused`` says the cancel came too late.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.jobs import Attempt, AttemptState, CancelRequest, Job, JobStatus
from aiprod.domain.leases import CLOSABLE, UNCONFIRMED_SUBMIT_CODES, closing_outcome
from aiprod.domain.messages import ErrorClass, RenderOutcome
from aiprod.domain.transitions import record_report

CANCELLED_REASON = "cancel_requested"  # the ``reason`` of a CANCELLED job


class CancelStep(StrEnum):
    """What a cancel request does now."""

    NOT_FOUND = "not_found"  # no such job: refused
    FINISHED = "finished"  # the job ended before the request (not cancelled): refused
    ALREADY = "already"  # cancelled, or being cancelled, already: nothing more to do
    CLOSE = "close"  # the current attempt is closed now: its outcome is stored, and owed
    STOP_TASK = "stop_task"  # its provider is asked to stop the task; the task's end closes it
    LOOK = "look"  # its task is looked at once: finished, its outcome; else closed now
    FIND = "find"  # its create's answer was lost: the task is looked up, then stopped
    AWAIT_OUTCOME = "await_outcome"  # an outcome is stored: applying it ends the job


@dataclass(frozen=True)
class Reach:
    """What a backend's provider lets a cancel do (``VideoBackend.can_cancel``/``can_find``)."""

    can_stop: bool = False
    can_find: bool = False


class CancelRefusal(StrEnum):
    """Why a cancel did not cancel (the ``reason`` of ``job.cancel_refused``)."""

    NOT_FOUND = "not_found"  # no job has this id
    ALREADY_FINISHED = "already_finished"  # the job was over when the cancel arrived
    FINISHED_FIRST = "finished_first"  # its render finished before the cancel reached it


def request_cancel(
    job: Job, request: CancelRequest, now: float, lease_s: float, reach: Callable[[str], Reach]
) -> tuple[Job, CancelStep]:
    """Note the request on the job and say what follows. ``reach(backend)``: what that
    backend's provider lets us do. A repeated request (a redelivery) asks the provider again
    while the task runs (the first ask may have been lost with its worker); one for a job
    that ended after a first request noted the cancel is not refused again."""
    if job.is_terminal:
        noted = job.status is JobStatus.CANCELLED or same_request(job.cancel, request)
        return job, CancelStep.ALREADY if noted else CancelStep.FINISHED
    attempt = job.current
    noted = job if job.cancel is not None else job.model_copy(update={"cancel": request})
    if attempt is None:  # not reachable for a running job; ends it with nothing to settle
        return end_cancelled(noted, now), CancelStep.CLOSE
    if attempt.state is AttemptState.REPORTED:
        return noted, CancelStep.AWAIT_OUTCOME
    if attempt.state is AttemptState.RUNNING and attempt.provider_task_id is not None:
        can_stop = reach(attempt.backend).can_stop
        return noted, CancelStep.STOP_TASK if can_stop else CancelStep.LOOK
    if answer_lost(attempt) and reach(attempt.backend).can_find:
        return noted, CancelStep.FIND
    if attempt.state in CLOSABLE:
        return close_now(noted, now, lease_s), CancelStep.CLOSE
    return noted, CancelStep.ALREADY


def same_request(noted: CancelRequest | None, request: CancelRequest) -> bool:
    """Is ``request`` the one noted on the job (a redelivery: same requester and reason), not
    a new request? The message carries no id of its own; a new one gets its own answer."""
    if noted is None:
        return False
    return (noted.requested_by, noted.reason) == (request.requested_by, request.reason)


def answer_lost(attempt: Attempt) -> bool:
    """A create that may have made a task whose id we never got (its answer was lost)."""
    return (
        attempt.state is AttemptState.RUNNING
        and attempt.provider_task_id is None
        and attempt.error_code in UNCONFIRMED_SUBMIT_CODES
    )


def close_now(job: Job, now: float, lease_s: float) -> Job:
    """Store the cancel's outcome on the current attempt (REPORTED, owed to handle_outcome);
    the job is unchanged when the attempt is no longer open (someone closed it first)."""
    attempt = job.current
    message = "cancelled" + (f": {job.cancel.reason}" if job.cancel and job.cancel.reason else "")
    outcome = closing_outcome(
        job, attempt, ErrorClass.TERMINAL, ErrorCode.CANCEL_REQUESTED, message, now
    )
    return record_report(job, outcome, now, lease_s, CLOSABLE)


def ends_cancelled(job: Job, outcome: RenderOutcome) -> bool:
    """Does applying this failed (or closing) outcome end the job CANCELLED? Yes once a
    cancel was asked for: a cancelled job never falls back nor retries."""
    return job.cancel is not None and not outcome.succeeded


def end_cancelled(job: Job, now: float) -> Job:
    request = job.cancel
    who = f" by {request.requested_by}" if request and request.requested_by else ""
    why = f": {request.reason}" if request and request.reason else ""
    update = {
        "status": JobStatus.CANCELLED,
        "reason": CANCELLED_REASON,
        "message": f"cancelled{who}{why}",
        "finished_at": now,
        "updated_at": now,
    }
    return job.model_copy(update=update)


def cancel_came_too_late(job: Job) -> bool:
    """A cancel was asked for, and the job succeeded anyway (its render finished first)."""
    return job.cancel is not None and job.status is JobStatus.SUCCEEDED
