"""handle_outcome: settle the attempt's hold, then finish the job or dispatch the next attempt."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from aiprod import topology
from aiprod.config import Settings
from aiprod.domain.budget import budget_day
from aiprod.domain.health import Circuit
from aiprod.domain.jobs import (
    FollowUp,
    Job,
    JobStatus,
    announce,
    close_attempt,
    fail,
    follow_up_owed,
    is_outcome_pending,
    succeed,
)
from aiprod.domain.messages import EventType, RenderOutcome
from aiprod.domain.policy import Next, plan_after_failure
from aiprod.exceptions import TransientError
from aiprod.faults import checkpoint
from aiprod.ports import Bus, DocumentStore, Transaction
from aiprod.services import dispatch, events, records
from aiprod.services.health import HealthBook
from aiprod.services.ledger import Ledger
from aiprod.services.telemetry import Telemetry, null_telemetry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settlement:
    job: Job | None
    decision: Next | None = None  # None: a duplicate or stale outcome, nothing changed
    applied: bool = False


class OutcomeHandler:
    def __init__(
        self,
        store: DocumentStore,
        bus: Bus,
        settings: Settings,
        health: HealthBook,
        ledger: Ledger,
        clock: Callable[[], float],
        telemetry: Telemetry | None = None,
    ):
        self._store, self._bus, self._settings = store, bus, settings
        self._health, self._ledger, self._clock = health, ledger, clock
        self._telemetry = telemetry or null_telemetry()

    def handle(self, data: bytes, attributes: dict[str, str] | None = None) -> None:
        try:
            outcome = RenderOutcome.model_validate_json(data)
        except ValidationError as exc:
            log.error("malformed render outcome sent to dead-letter: %s", exc.errors()[:1])
            attrs = {"reason": "invalid", "source": topology.RENDER_OUTCOMES}
            self._bus.publish(topology.DEAD_LETTER, data, attrs)
            return
        checkpoint("outcome.before_settle", f"{outcome.job_id}#{outcome.attempt}")  # crash tests
        circuits = self._health.snapshot()
        now = self._clock()
        result = self._store.run_transaction(lambda tx: self._apply(tx, outcome, circuits, now))
        context = {"job_id": outcome.job_id, "attempt": outcome.attempt, "backend": outcome.backend}
        if result.decision is Next.WAIT:
            log.warning(
                "outcome unknown (%s): hold kept, the stored provider task will be polled again",
                outcome.message,
                extra={**context, "error_class": "UNKNOWN"},
            )
            return
        if not result.applied or result.job is None:
            log.info("duplicate or stale outcome acknowledged", extra=context)
            if result.job is not None:
                self._publish_again(result.job, outcome, context)
            return
        _note_overrun(result.job, outcome, context)
        settled = result.job.attempt(outcome.attempt)
        self._telemetry.attempt_settled(outcome, settled.hold_micros if settled else 0)
        moved = self._health.record(outcome, now, circuits.get(outcome.backend))
        if moved and moved[0].state != moved[1].state:
            log.warning(
                "circuit %s: %s -> %s (%s)",
                outcome.backend,
                moved[0].state.value,
                moved[1].state.value,
                moved[1].last_error,
                extra={**context, "event": "circuit_change", "reason": moved[1].last_error},
            )
        self._follow_up(result, outcome, context)

    def _apply(
        self, tx: Transaction, outcome: RenderOutcome, circuits: dict[str, Circuit], now: float
    ) -> Settlement:
        job = records.load_job(tx, outcome.job_id)
        if job is None or not is_outcome_pending(job, outcome):
            return Settlement(job)
        circuits = dict(circuits)
        self._health.refresh_for_probe(tx, circuits, now)
        plan = None
        if not outcome.succeeded:
            plan = plan_after_failure(job, outcome, self._settings.retry, circuits, now)
            if plan.wait:
                return Settlement(job, Next.WAIT)  # keep the hold; the task is polled again
        attempt = job.current
        self._ledger.settle(tx, attempt.ledger_keys, attempt.hold_micros, outcome.cost_micros)
        job = close_attempt(job, outcome, now)
        if plan is None:
            job, decision = succeed(job, outcome.output_uri, now), None
        else:
            job, decision = self._continue(tx, job, outcome, plan, circuits, now)
        records.save_job(tx, job)
        return Settlement(job, decision, applied=True)

    def _continue(self, tx, job: Job, outcome: RenderOutcome, plan, circuits, now: float):
        """Dispatch the first option whose hold fits, or fail the job with the reason."""
        day = budget_day(now, self._settings.timezone)
        options = [(o.step, o.not_before) for o in plan.options]
        lease_s = self._settings.lease_s
        reserved = dispatch.reserve_attempt(tx, self._ledger, job, options, day, now, lease_s)
        if reserved is None:
            message = f"{outcome.backend}: {outcome.message or outcome.error_code}"
            if plan.options:
                message += "; no remaining backend's hold fits the budget"
            return fail(job, plan.reason, message, now), Next.FAIL
        job, index = reserved
        decision = plan.options[index].decision
        if decision is Next.FALLBACK:
            self._health.claim_probe(tx, circuits.get(job.current.backend), now)
        return job, decision

    def _follow_up(self, result: Settlement, outcome: RenderOutcome, context: dict) -> None:
        job = result.job
        if outcome.succeeded:
            log.info("job completed on %s", outcome.backend, extra=context)
            self._telemetry.job_finished(job)
            self._announce(job, EventType.COMPLETED, context)
        elif result.decision in (Next.RETRY_SAME, Next.FALLBACK):
            nxt = job.current
            log.warning(
                "%s after %s: attempt %d on %s",
                result.decision.value,
                outcome.error_class,
                nxt.number,
                nxt.backend,
                extra={**context, "reason": outcome.error_code, "event": result.decision.value},
            )
            dispatch.publish_task(self._bus, dispatch.task_for(job, nxt))
            if result.decision is Next.FALLBACK:
                self._telemetry.fallback(outcome.backend, nxt.backend)
        elif result.decision is Next.FAIL:
            log.warning("job failed: %s", job.message, extra={**context, "reason": str(job.reason)})
            self._telemetry.job_finished(job)
            self._announce(job, EventType.FAILED, context)

    def _publish_again(self, job: Job, outcome: RenderOutcome, context: dict) -> None:
        """A redelivered outcome whose first handling committed but may not have published:
        publish again what the commit implies (events are at least once; the render claim
        turns a repeated task into a no-op)."""
        owed = follow_up_owed(job, outcome)
        if owed is FollowUp.FINAL_EVENT:
            kind = EventType.COMPLETED if job.status is JobStatus.SUCCEEDED else EventType.FAILED
            log.info("%s published again", kind.value, extra=context)
            self._announce(job, kind, context)
        elif owed is FollowUp.NEXT_TASK:
            log.info("task for attempt %d published again", job.current.number, extra=context)
            dispatch.publish_task(self._bus, dispatch.task_for(job, job.current))

    def _announce(self, job: Job, kind: EventType, context: dict) -> None:
        """Publish the final event, then note on the job that it is out. Without the note a
        redelivered outcome publishes it again (at least once, never lost); a failed note
        only risks that repeat, so it is logged and the invocation still succeeds."""
        events.publish_event(self._bus, events.event_for(job, kind))

        def note(tx: Transaction) -> None:
            stored = records.load_job(tx, job.job_id)
            if stored is not None and not stored.announced:
                records.save_job(tx, announce(stored))

        try:
            self._store.run_transaction(note)
        except TransientError as exc:
            log.warning("could not note %s as published: %s", kind.value, exc, extra=context)


def _note_overrun(job: Job, outcome: RenderOutcome, context: dict) -> None:
    """A provider charged more than we held: charged in full (the ledger records it too),
    and said once per attempt, with ``event="cost_overrun"`` as the hook for a metric."""
    attempt = job.attempt(outcome.attempt)
    if attempt is None or attempt.overrun_micros <= 0:
        return
    log.warning(
        "cost overrun on %s: held %d, charged %d, overrun %d micro-USD",
        attempt.backend,
        attempt.hold_micros,
        attempt.cost_micros,
        attempt.overrun_micros,
        extra={
            **context,
            "event": "cost_overrun",
            "hold_micros": attempt.hold_micros,
            "cost_micros": attempt.cost_micros,
            "overrun_micros": attempt.overrun_micros,
        },
    )
