"""Side effects as data: what a committed change owes the bus. Pure.

A transaction body decides, from the state it is about to commit, which messages that state
implies (the next attempt's task, a job event, a stored outcome, a dead letter) and returns
them as values; the outbox (``services.outbox``) publishes them after the commit. The same
functions answer a redelivered message whose first handling committed but may not have
published: what the committed state still owes is published again. So a lost publish is
repeated from the stored state, never reconstructed by hand in a handler.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiprod.domain.cancellation import CancelRefusal, CancelStep, cancel_came_too_late
from aiprod.domain.job_events import cancel_refusal, event_for
from aiprod.domain.jobs import Attempt, AttemptState, Job, JobStatus
from aiprod.domain.messages import (
    EventType,
    JobEvent,
    JobRequest,
    RenderOutcome,
    RenderTask,
)

CONFLICT_MESSAGE = "job_id was already used for a different request"
# The final event of a job an outcome ended, by the job's status.
FINAL_EVENT = {
    JobStatus.SUCCEEDED: EventType.COMPLETED,
    JobStatus.FAILED: EventType.FAILED,
    JobStatus.CANCELLED: EventType.CANCELLED,
}
TOO_LATE = (
    CancelRefusal.FINISHED_FIRST.value,
    "the render finished before the cancel reached it: the job succeeded and is charged",
)


@dataclass(frozen=True)
class PublishTask:
    """An attempt's task, to its backend's render topic."""

    task: RenderTask


@dataclass(frozen=True)
class PublishOutcome:
    """A render's outcome, to handle_outcome."""

    outcome: RenderOutcome


@dataclass(frozen=True)
class PublishEvent:
    """A job event, to the public events topic. ``final``: it ends the job
    (``job.completed`` / ``job.failed`` / ``job.rejected``), and the job notes once it is out
    (``Job.announced``). ``admission``: the last of the job's admission events
    (``job.accepted``, then ``job.queued`` when it waits for a slot), and the job notes once
    it is out (``Job.accepted_announced``). A noted event is not owed again."""

    event: JobEvent
    final: bool = False
    admission: bool = False


@dataclass(frozen=True)
class DeadLetter:
    """A message no handler can use, to the dead-letter topic, saying where it came from."""

    data: bytes
    source: str
    reason: str


Effect = PublishTask | PublishOutcome | PublishEvent | DeadLetter


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


def dispatched(job: Job) -> list[Effect]:
    """The current attempt's task while nobody has claimed it."""
    attempt = job.current
    if job.is_terminal or attempt is None or attempt.state is not AttemptState.DISPATCHED:
        return []
    return [PublishTask(task_for(job, attempt))]


def resumed(job: Job) -> list[Effect]:
    """The current attempt's task again, for a render function to resume polling the
    provider task just stored on it (a lost create's task, found by a lookup)."""
    attempt = job.current
    if job.is_terminal or attempt is None or attempt.provider_task_id is None:
        return []
    return [PublishTask(task_for(job, attempt))]


def reported(job: Job) -> list[Effect]:
    """The current attempt's stored outcome while handle_outcome has not applied it."""
    attempt = job.current
    if attempt is None or attempt.state is not AttemptState.REPORTED or attempt.outcome is None:
        return []
    return [PublishOutcome(attempt.outcome)]


def after_admission(job: Job, refused: JobEvent | None = None) -> list[Effect]:
    """What route_job owes for a job message, the first time and on every redelivery.

    ``refused``: the message reused the job's job_id for another payload; its
    ``job.duplicate_rejected`` is all it gets (the job owes nothing for it). A rejected job:
    ``job.rejected`` until the job notes it out. While attempt 1 is unclaimed:
    ``job.accepted`` (and ``job.queued``) until the job notes them out, then its task (in
    that order: once the task is out it may be claimed, and nothing is owed after). So a
    duplicate of a message whose events are out publishes none again (at most the unclaimed
    task, which only one delivery can claim), and a redelivery after a crash before the
    publish or the note publishes what is still owed.
    """
    if refused is not None:
        return [PublishEvent(refused)]
    if job.status is JobStatus.REJECTED:
        rejected = PublishEvent(event_for(job, EventType.REJECTED), final=True)
        return [] if job.announced else [rejected]
    attempt = job.current
    if attempt is None or attempt.number != 1:
        return []
    if attempt.state is AttemptState.QUEUED:
        if job.accepted_announced:
            return []
        queued = PublishEvent(event_for(job, EventType.QUEUED), admission=True)
        return [PublishEvent(event_for(job, EventType.ACCEPTED)), queued]
    owed = dispatched(job)
    if not owed or job.accepted_announced:
        return owed
    return [PublishEvent(event_for(job, EventType.ACCEPTED), admission=True), *owed]


def after_outcome(job: Job, outcome: RenderOutcome) -> list[Effect]:
    """What applying ``outcome`` owes, the first time and on every redelivery: the final event
    when this outcome ended the job (until the job notes it out), or the next attempt's task
    when this outcome dispatched it and nobody has claimed it yet."""
    last = len(job.attempts)
    if job.is_terminal and job.status in FINAL_EVENT and outcome.attempt == last:
        if job.announced:
            return []
        final = PublishEvent(event_for(job, FINAL_EVENT[job.status]), final=True)
        if cancel_came_too_late(job):  # said before the final event: that one is noted
            return [PublishEvent(cancel_refusal(job, job.job_id, *TOO_LATE)), final]
        return [final]
    if job.status is JobStatus.RUNNING and outcome.attempt == last - 1:
        return dispatched(job)
    return []


def after_cancel(
    job: Job | None, step: CancelStep, job_id: str, asker: str | None = None
) -> list[Effect]:
    """What a cancel request owes, the first time and on every redelivery: a refusal for
    whoever asked (no such job, or over already), or the outcome stored on the attempt while
    handle_outcome has not applied it (it ends the job CANCELLED, charging what it cost).
    A refusal for no job carries the asking tenant (``asker``), never a job's."""
    if job is None or step is CancelStep.NOT_FOUND:
        no_job = CancelRefusal.NOT_FOUND.value
        refusal = cancel_refusal(None, job_id, no_job, "no such job", asker)
        return [PublishEvent(refusal)]
    if step is CancelStep.FINISHED:
        message = f"the job was over ({job.status.value}) when the cancel arrived"
        refused = cancel_refusal(job, job_id, CancelRefusal.ALREADY_FINISHED.value, message)
        return [PublishEvent(refused)]
    if job.status is JobStatus.CANCELLED and not job.attempts and not job.announced:
        return [PublishEvent(event_for(job, EventType.CANCELLED), final=True)]
    if step in (CancelStep.CLOSE, CancelStep.AWAIT_OUTCOME):
        return reported(job)
    return []
