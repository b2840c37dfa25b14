"""Calling a provider and reading its answer as an outcome: the render function's and the
reconciler's shared way. Every poll is classified here (``look``), and a provider's answer
becomes the attempt's ``RenderOutcome`` (``outcome_for``)."""

from __future__ import annotations

import logging

from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.messages import ErrorClass, RenderOutcome, RenderTask
from aiprod.exceptions import ProviderError
from aiprod.ports import ProviderResult, VideoBackend

log = logging.getLogger(__name__)


def look(
    backend: VideoBackend, task_id: str, task: RenderTask, cost_only: bool = False
) -> ProviderResult:
    """One poll of a stored provider task, classified whatever happens (the render function's
    and the reconciler's way). A ``ProviderError`` is the attempt's outcome; anything else
    raised while asking or reading the answer is UNKNOWN ``poll_failed``: the attempt keeps
    its hold and its task, which is looked at again later. Nothing escapes, so one broken
    answer can neither crash-loop a render function nor stop a sweep. ``cost_only``: a late
    task's look, whose output nobody will use (not kept, checked or rated: its render is
    charged, nothing more)."""
    try:
        return backend.poll_cost(task_id, task) if cost_only else backend.poll(task_id, task)
    except ProviderError as exc:
        return result_of(exc)
    except Exception as exc:
        context = {"job_id": task.job_id, "attempt": task.attempt, "backend": task.backend}
        log.warning(
            "poll of provider task %s raised %s", task_id, type(exc).__name__, extra=context
        )
        return ProviderResult(
            done=True,
            error_class=ErrorClass.UNKNOWN,
            error_code=ErrorCode.POLL_FAILED,
            message=f"the poll raised {type(exc).__name__}",
        )


def find(backend: VideoBackend, task: RenderTask, sent_at: float) -> str | None:
    """The task a lost create answer hid, if the provider can say; a lookup that fails
    finds nothing (the attempt is then charged its worst case), and never stops a sweep."""
    try:
        return backend.find(task, sent_at)
    except Exception as exc:
        context = {"job_id": task.job_id, "attempt": task.attempt, "backend": task.backend}
        log.warning("lookup of a lost create raised %s", type(exc).__name__, extra=context)
        return None


def result_of(exc: ProviderError) -> ProviderResult:
    """A provider's refusal is the attempt's outcome, classified, not an exception to retry."""
    return ProviderResult(
        done=True,
        error_class=exc.error_class,
        error_code=exc.code,
        message=str(exc),
        cost_micros=exc.cost_micros,
        retry_after_s=exc.retry_after_s,
    )


def outcome_for(
    task: RenderTask, task_id: str | None, result: ProviderResult, started: float, finished: float
) -> RenderOutcome:
    succeeded = result.error_class is None
    return RenderOutcome(
        job_id=task.job_id,
        attempt=task.attempt,
        backend=task.backend,
        model=task.model,
        succeeded=succeeded,
        error_class=None if succeeded else ErrorClass(result.error_class),
        error_code=result.error_code,
        message=result.message,
        cost_micros=result.cost_micros,
        output_uri=result.output_uri,
        provider_task_id=task_id,
        started_at=started,
        finished_at=finished,
        retry_after_s=result.retry_after_s,
        qa=result.qa,
    )
