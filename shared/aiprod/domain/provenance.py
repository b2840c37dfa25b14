"""Is an internal message one we sent? Checked against the stored attempt. Pure.

Render tasks and outcomes travel on topics other principals might publish to. A task or an
outcome that disagrees with the attempt it names was not sent by this service: a task must
carry its attempt's backend, model, hold and the job's own request (a forged task could
otherwise render another prompt or image on the job's budget); an outcome must carry its
attempt's backend and model, the task id stored for it, and — to settle anything — must be
the one the render function stored before publishing (every settling outcome is written
on its attempt first, ``transitions.record_report``), so a forged success costing 0 cannot
settle a job that is still rendering. What each returns is a reason for the log, or None.
"""

from __future__ import annotations

from aiprod.domain.jobs import AttemptState, Job
from aiprod.domain.messages import ErrorClass, RenderOutcome, RenderTask


def task_mismatch(job: Job, task: RenderTask) -> str | None:
    """Why this task is not one dispatched for its attempt (None: it is, or the attempt is
    an earlier one, which the claim finds stale)."""
    if task.attempt > len(job.attempts):
        return "no such attempt"
    attempt = job.require(task.attempt)
    if (task.backend, task.model) != (attempt.backend, attempt.model):
        return "backend or model differs from its attempt"
    if task.hold_micros != attempt.hold_micros:
        return "hold differs from its attempt"
    if task.not_before != attempt.not_before:  # an earlier one would skip a backoff
        return "not_before differs from its attempt"
    if not task.request.same_payload(job.payload_hash):
        return "request differs from the job's"
    return None


def outcome_mismatch(job: Job, outcome: RenderOutcome) -> str | None:
    """Why this outcome is not one reported for its attempt (None: it is, or it names an
    earlier attempt, which is a duplicate the handler acknowledges)."""
    if outcome.attempt > len(job.attempts):
        return "no such attempt"
    attempt = job.require(outcome.attempt)
    if (outcome.backend, outcome.model) != (attempt.backend, attempt.model):
        return "backend or model differs from its attempt"
    stored = attempt.outcome
    expected = stored.provider_task_id if stored is not None else attempt.provider_task_id
    unknown = outcome.error_class is ErrorClass.UNKNOWN and not outcome.succeeded
    if outcome.provider_task_id != expected and not (unknown and outcome.provider_task_id is None):
        return "provider task id differs from its attempt's"
    if attempt.state is AttemptState.RUNNING and not unknown:
        return "a settling outcome that was never stored on its attempt"
    return None
