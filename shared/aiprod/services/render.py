"""render_<backend>: claim an attempt, run it on the provider, report the outcome.

The provider task id is stored before waiting on it, so a crash or a redelivery polls the
same task again instead of paying for a second render.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable

from pydantic import ValidationError

from aiprod import topology
from aiprod.config import Settings
from aiprod.domain import effects
from aiprod.domain.effects import Effect
from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.invalid_requests import log_summary
from aiprod.domain.jobs import Job
from aiprod.domain.messages import IMAGE_BUCKETS, ErrorClass, RenderOutcome, RenderTask
from aiprod.domain.provenance import task_mismatch
from aiprod.domain.submissions import MAX_KEEP_TRIES, Stored, made_nothing
from aiprod.domain.transitions import Claim, claim, record_report
from aiprod.exceptions import ClaimLostError, ProviderError
from aiprod.faults import checkpoint
from aiprod.ports import DocumentStore, ProviderResult, VideoBackend
from aiprod.repositories import jobs
from aiprod.services.attempt_costs import AttemptCosts, stop_late_task
from aiprod.services.ledger import Ledger
from aiprod.services.outbox import Outbox
from aiprod.services.provider_calls import look, outcome_for, result_of
from aiprod.services.slots import SlotBook
from aiprod.services.submission import Submitter
from aiprod.services.telemetry import Telemetry, null_telemetry

log = logging.getLogger(__name__)


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
        ledger: Ledger | None = None,
        slots: SlotBook | None = None,
    ):
        self._backend, self._store, self._outbox = backend, store, outbox
        self._settings, self._clock, self._sleep = settings, clock, sleep
        self._telemetry = telemetry or null_telemetry()
        self._submitter = Submitter(backend, store, settings, clock, sleep)
        self._costs = AttemptCosts(store, ledger or Ledger(settings), clock, slots)

    def handle(self, data: bytes, attributes: dict[str, str] | None = None) -> None:
        try:
            context = {IMAGE_BUCKETS: self._settings.image_buckets}
            task = RenderTask.model_validate_json(data, context=context)
        except ValidationError as exc:
            log.error("malformed render task sent to dead-letter: %s", log_summary(exc))
            self._outbox.send([self._dead_letter(data, "invalid")])
            return
        context = {"job_id": task.job_id, "attempt": task.attempt, "backend": task.backend}
        if task.backend != self._backend.name:
            log.error("render task for another backend sent to dead-letter", extra=context)
            self._outbox.send([self._dead_letter(data, "wrong_backend")])
            return
        self._wait_for_backoff(task)
        claim_id = uuid.uuid4().hex  # this delivery's claim: a stale one cannot submit
        job, decision = self._claim(task, claim_id)
        if isinstance(decision, Refused):  # not a task we dispatched: never retried, never run
            log.error("render task refused: %s", decision.why, extra=context)
            self._outbox.send([self._dead_letter(data, "mismatch")])
            return
        if decision is Claim.REPUBLISH and job is not None:
            self._publish(effects.reported(job))
            return
        if decision not in (Claim.START, Claim.RESUME) or job is None:
            log.info("render task not run: %s", decision.value, extra=context)
            return
        attempt = job.attempt(task.attempt)
        key = f"{task.job_id}#{task.attempt}"
        checkpoint("render.after_claim", key)  # crash tests: claimed, provider not called
        outcome = self._render(task, claim_id, attempt.provider_task_id, attempt.claimed_at)
        if outcome is None:
            return
        checkpoint("render.after_provider", key)  # crash tests: rendered, outcome not sent
        owed = self._store.run_transaction(lambda tx: self._report(tx, outcome))
        if not owed and made_nothing(outcome):  # refused after the attempt was closed?
            self._costs.void_estimate(task.job_id, task.attempt)
        if not owed:  # closed, or another delivery polling the same task reported it first
            log.info("render already reported by another delivery", extra=context)
            return
        self._telemetry.render_finished(outcome)
        self._publish(owed)

    def _claim(self, task: RenderTask, claim_id: str) -> tuple[Job | None, Claim | Refused]:
        now = self._clock()
        lease_s, window_s = self._settings.lease_s, self._settings.submit_lease_s

        def body(tx):
            job = jobs.load(tx, task.job_id)
            if job is None:
                return None, Claim.STALE
            why = task_mismatch(job, task)
            if why is not None:
                return job, Refused(why)
            claimed, decision = claim(job, task.attempt, now, lease_s, claim_id, window_s)
            if claimed is not job:
                jobs.save(tx, claimed)
            return claimed, decision

        return self._store.run_transaction(body)

    def _render(
        self, task: RenderTask, claim_id: str, task_id: str | None, started: float | None
    ) -> RenderOutcome | None:
        """Submit (unless a task is stored) and wait. ``started``: the attempt's first claim,
        so a resumed render reports its whole duration. None: nothing to report (the claim
        was lost before sending, or the task id came after the attempt closed)."""
        started = self._clock() if started is None else started
        try:
            if task_id is None:
                task_id, stored = self._submitter.submit(task, claim_id)
                if stored is not Stored.STORED and stored is not Stored.KNOWN:
                    self._after_close(task, task_id, stored)
                    return None
                # crash tests: rendering at the provider, its task id stored, worker lost
                checkpoint("render.after_submit", f"{task.job_id}#{task.attempt}")
            result, queued_s = self._wait(task, task_id)
        except ClaimLostError:
            log.info("render task not run: another delivery holds the attempt", extra=_ctx(task))
            return None
        except ProviderError as exc:
            result, queued_s = result_of(exc), 0.0
        outcome = outcome_for(task, task_id, result, started, self._clock())
        return outcome.model_copy(update={"provider_queue_s": round(queued_s, 3)})

    def _wait(self, task: RenderTask, task_id: str) -> tuple[ProviderResult, float]:
        """Poll until the task is done or the render deadline. A poll that failed (UNKNOWN
        ``poll_failed``) is looked at again like one still running: one glitch must not park
        the attempt until its lease runs out. A finished render whose output could not be
        kept has its cost written on the attempt at once; after ``MAX_KEEP_TRIES`` the
        attempt closes charged that cost. At the deadline the last failure is reported.
        Also returns how long the task waited in the provider's own queue (measured apart
        from render time: queueing at the provider is not slowness or failure)."""
        waiting_since = self._clock()
        deadline = waiting_since + self._settings.render_deadline_s
        queued_s = 0.0
        while True:
            result = look(self._backend, task_id, task)
            if result.queued:
                queued_s = self._clock() - waiting_since
            failed_poll = result.error_code == ErrorCode.POLL_FAILED
            if result.done and not failed_poll:
                return result, queued_s
            if result.unkept:
                tries = self._costs.note_unkept(task.job_id, task.attempt, result.cost_micros)
                if tries >= MAX_KEEP_TRIES:
                    return dataclasses.replace(result, done=True), queued_s
            if self._clock() >= deadline:
                if failed_poll:
                    return result, queued_s
                timeout = ProviderResult(
                    done=True,
                    error_class=ErrorClass.UNKNOWN,
                    error_code=ErrorCode.CALLER_TIMEOUT,
                    message=f"still running after {self._settings.render_deadline_s:.0f}s",
                )
                return timeout, queued_s
            self._sleep(self._settings.poll_interval_s)

    def _after_close(self, task: RenderTask, task_id: str, stored: Stored) -> None:
        """The create answered after its attempt was closed: the task is kept as a late task
        of that attempt. Nobody will use its render, so its provider is asked to stop it
        where it can; follow it until the render deadline and charge what it cost; if it
        is still running then, the reconciler polls it later."""
        context = {**_ctx(task), "provider_task_id": task_id}
        if stored is Stored.LOST:
            log.error("provider task %s has no attempt to go to", task_id, extra=context)
            return
        log.warning("create answered after its attempt closed: a late task", extra=context)
        stop_late_task(self._backend, task_id, task, context)
        deadline = self._clock() + self._settings.render_deadline_s
        while True:
            result = look(self._backend, task_id, task, cost_only=True)
            if result.settles_cost:
                self._costs.charge_late(task.job_id, task.attempt, result.cost_micros)
                return
            if self._clock() >= deadline:
                return
            self._sleep(self._settings.poll_interval_s)

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


@dataclasses.dataclass(frozen=True)
class Refused:
    """The claim refused a task that does not match its attempt (``domain.provenance``)."""

    why: str


def _ctx(task: RenderTask) -> dict:
    return {"job_id": task.job_id, "attempt": task.attempt, "backend": task.backend}
