"""render_<backend>: claim an attempt, run it on the provider, report the outcome.

The provider task id is stored before waiting on it, so a crash or a redelivery polls the
same task again instead of paying for a second render.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from pydantic import ValidationError

from aiprod import topology
from aiprod.config import Settings
from aiprod.domain import effects
from aiprod.domain.effects import Effect
from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.jobs import Job
from aiprod.domain.messages import ErrorClass, RenderOutcome, RenderTask
from aiprod.domain.transitions import Claim, claim, record_report, record_submission
from aiprod.exceptions import ProviderError, TransientError
from aiprod.faults import checkpoint
from aiprod.ports import DocumentStore, ProviderResult, VideoBackend
from aiprod.repositories import jobs
from aiprod.services.outbox import Outbox
from aiprod.services.provider_calls import look, outcome_for, result_of
from aiprod.services.telemetry import Telemetry, null_telemetry

log = logging.getLogger(__name__)
STORE_TASK_ID_TRIES = 3  # then the invocation fails; the id is in the ERROR log line


class Renderer:
    def __init__(
        self,
        backend: VideoBackend,
        store: DocumentStore,
        outbox: Outbox,
        settings: Settings,
        clock: Callable[[], float],
        sleep: Callable[[float], None] = time.sleep,
        telemetry: Telemetry | None = None,
    ):
        self._backend, self._store, self._outbox = backend, store, outbox
        self._settings, self._clock, self._sleep = settings, clock, sleep
        self._telemetry = telemetry or null_telemetry()

    def handle(self, data: bytes, attributes: dict[str, str] | None = None) -> None:
        try:
            task = RenderTask.model_validate_json(data)
        except ValidationError as exc:
            log.error("malformed render task sent to dead-letter: %s", exc.errors()[:1])
            self._outbox.send([self._dead_letter(data, "invalid")])
            return
        context = {"job_id": task.job_id, "attempt": task.attempt, "backend": task.backend}
        if task.backend != self._backend.name:
            log.error("render task for another backend sent to dead-letter", extra=context)
            self._outbox.send([self._dead_letter(data, "wrong_backend")])
            return
        self._wait_for_backoff(task)
        job, decision = self._claim(task)
        if decision is Claim.REPUBLISH and job is not None:
            self._publish(effects.reported(job))
            return
        if decision not in (Claim.START, Claim.RESUME) or job is None:
            log.info("render task not run: %s", decision.value, extra=context)
            return
        attempt = job.attempt(task.attempt)
        key = f"{task.job_id}#{task.attempt}"
        checkpoint("render.after_claim", key)  # crash tests: claimed, provider not called
        outcome = self._render(task, attempt.provider_task_id, attempt.claimed_at)
        checkpoint("render.after_provider", key)  # crash tests: rendered, outcome not sent
        owed = self._store.run_transaction(lambda tx: self._report(tx, outcome))
        if not owed:  # another delivery polling the same task reported it first
            log.info("render already reported by another delivery", extra=context)
            return
        self._telemetry.render_finished(outcome)
        self._publish(owed)

    def _claim(self, task: RenderTask) -> tuple[Job | None, Claim]:
        now = self._clock()

        def body(tx):
            job = jobs.load(tx, task.job_id)
            if job is None:
                return None, Claim.STALE
            claimed, decision = claim(job, task.attempt, now, self._settings.lease_s)
            if claimed is not job:
                jobs.save(tx, claimed)
            return claimed, decision

        return self._store.run_transaction(body)

    def _render(
        self, task: RenderTask, task_id: str | None, started: float | None
    ) -> RenderOutcome:
        """Submit (unless a task is stored) and wait. ``started``: the attempt's first claim,
        so a resumed render reports its whole duration."""
        started = self._clock() if started is None else started
        try:
            if task_id is None:
                task_id = self._backend.submit(task)
                # crash tests: created at the provider, its task id not yet stored
                checkpoint("render.after_create", f"{task.job_id}#{task.attempt}")
                self._store_task_id(task, task_id)
                # crash tests: rendering at the provider, its task id stored, worker lost
                checkpoint("render.after_submit", f"{task.job_id}#{task.attempt}")
            result = self._wait(task, task_id)
        except ProviderError as exc:
            result = result_of(exc)
        return outcome_for(task, task_id, result, started, self._clock())

    def _wait(self, task: RenderTask, task_id: str) -> ProviderResult:
        """Poll until the task is done or the render deadline. A poll that failed (UNKNOWN
        ``poll_failed``) is looked at again like one still running: one glitch must not park
        the attempt until its lease runs out. At the deadline the last failure is reported."""
        deadline = self._clock() + self._settings.render_deadline_s
        while True:
            result = look(self._backend, task_id, task)
            failed_poll = result.error_code == ErrorCode.POLL_FAILED
            if result.done and not failed_poll:
                return result
            if self._clock() >= deadline:
                if failed_poll:
                    return result
                return ProviderResult(
                    done=True,
                    error_class=ErrorClass.UNKNOWN,
                    error_code=ErrorCode.CALLER_TIMEOUT,
                    message=f"still running after {self._settings.render_deadline_s:.0f}s",
                )
            self._sleep(self._settings.poll_interval_s)

    def _store_task_id(self, task: RenderTask, task_id: str) -> None:
        """A submitted task's id is the only way back to a paid render: try a few times, and
        if the store stays down, log the id (for an operator) before giving up."""
        for attempt in range(1, STORE_TASK_ID_TRIES + 1):
            try:
                self._store.run_transaction(lambda tx: self._remember(tx, task, task_id))
                return
            except TransientError:
                if attempt == STORE_TASK_ID_TRIES:
                    log.error(
                        "provider task %s was submitted but its id could not be stored",
                        task_id,
                        extra={
                            "job_id": task.job_id,
                            "attempt": task.attempt,
                            "backend": task.backend,
                            "event": "task_id_unstored",
                        },
                    )
                    raise
                self._sleep(0.2 * attempt)

    def _remember(self, tx, task: RenderTask, task_id: str) -> None:
        job = jobs.load(tx, task.job_id)
        if job is not None:
            now = self._clock()
            jobs.save(
                tx, record_submission(job, task.attempt, task_id, now, self._settings.lease_s)
            )

    def _report(self, tx, outcome: RenderOutcome) -> list[Effect]:
        """Store the outcome on its attempt while it still runs, then owe its publication.
        An UNKNOWN outcome leaves the attempt RUNNING (its stored task is polled again) and is
        still sent, so handle_outcome logs the wait. An attempt no longer running was reported
        by another poller of the same task (or closed): this one owes nothing."""
        job = jobs.load(tx, outcome.job_id)
        if job is None:
            return []
        reported = record_report(job, outcome, self._clock(), self._settings.lease_s)
        if reported is job:
            return []
        jobs.save(tx, reported)
        return [effects.PublishOutcome(outcome)]

    def _publish(self, owed: list[Effect]) -> None:
        self._outbox.send(owed)
        for effect in owed:
            outcome = effect.outcome
            log.info(
                "render %s",
                "succeeded" if outcome.succeeded else f"failed ({outcome.error_class})",
                extra={
                    "job_id": outcome.job_id,
                    "attempt": outcome.attempt,
                    "backend": outcome.backend,
                },
            )

    def _dead_letter(self, data: bytes, reason: str) -> Effect:
        return effects.DeadLetter(data, topology.render_topic(self._backend.name), reason)

    def _wait_for_backoff(self, task: RenderTask) -> None:
        delay = task.not_before - self._clock()
        if delay > 0:
            self._sleep(min(delay, self._settings.max_backoff_wait_s))
