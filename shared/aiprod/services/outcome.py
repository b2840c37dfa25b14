"""handle_outcome: settle the attempt's hold, then finish the job or dispatch the next attempt."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError

from aiprod import topology
from aiprod.domain import effects
from aiprod.domain.budget import budget_day
from aiprod.domain.cancellation import end_cancelled, ends_cancelled
from aiprod.domain.effects import Effect
from aiprod.domain.health import OUTPUT_STORE, Circuit
from aiprod.domain.invalid_requests import log_summary
from aiprod.domain.jobs import Job
from aiprod.domain.messages import RenderOutcome
from aiprod.domain.policy import Next, plan_after_failure
from aiprod.domain.provenance import outcome_mismatch
from aiprod.domain.queueing import frees_slot, slot_given_back
from aiprod.domain.transitions import (
    close_attempt,
    fail,
    is_outcome_pending,
    stored_outcome,
    succeed,
)
from aiprod.faults import checkpoint
from aiprod.ports import Transaction
from aiprod.repositories import jobs
from aiprod.services import dispatch
from aiprod.services.books import Books
from aiprod.services.quality_notes import note_quality

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settlement:
    job: Job | None
    decision: Next | None = None  # None: a duplicate or stale outcome, nothing changed
    applied: bool = False
    owed: tuple[Effect, ...] = ()  # what the committed job implies (``effects.after_outcome``)
    freed: bool = False  # the attempt gave its render slot back: its backend's queue drains
    outcome: RenderOutcome | None = None  # the outcome applied (the stored one: ``stored_outcome``)
    refused: str | None = None  # not an outcome we sent (``domain.provenance``): why


def _settled(
    job: Job | None, outcome: RenderOutcome, decision=None, applied=False, freed=False
) -> Settlement:
    owed = () if job is None else tuple(effects.after_outcome(job, outcome))
    return Settlement(job, decision, applied, owed, freed, outcome)


class OutcomeHandler:
    def __init__(self, books: Books):
        self._store, self._outbox, self._settings = books.store, books.outbox, books.settings
        self._health, self._ledger, self._clock = books.health, books.ledger, books.clock
        self._telemetry, self._slots, self._queue = books.telemetry, books.slots, books.queue

    def handle(self, data: bytes, attributes: dict[str, str] | None = None) -> None:
        try:
            outcome = RenderOutcome.model_validate_json(data)
        except ValidationError as exc:
            log.error("malformed render outcome sent to dead-letter: %s", log_summary(exc))
            self._outbox.send([effects.DeadLetter(data, topology.RENDER_OUTCOMES, "invalid")])
            return
        checkpoint("outcome.before_settle", f"{outcome.job_id}#{outcome.attempt}")  # crash tests
        # one batched read; a model's observed quality only when this output was checked
        circuits, observed = (
            self._health.readings() if outcome.qa else (self._health.snapshot(), {})
        )
        now = self._clock()
        result = self._store.run_transaction(lambda tx: self._apply(tx, outcome, circuits, now))
        if result.applied and result.outcome is not None:
            outcome = result.outcome  # what was settled is what is counted and recorded
        context = {"job_id": outcome.job_id, "attempt": outcome.attempt, "backend": outcome.backend}
        if result.refused:
            # acknowledged, kept on the dead-letter topic for an operator: never retried
            log.error("render outcome refused: %s", result.refused, extra=_refusal(context))
            self._outbox.send([effects.DeadLetter(data, topology.RENDER_OUTCOMES, "mismatch")])
            return
        if result.decision is Next.WAIT:
            log.warning(
                "outcome unknown (%s): hold kept, the stored provider task will be polled again",
                outcome.message,
                extra={**context, "error_class": "UNKNOWN"},
            )
            return
        if not result.applied or result.job is None:
            log.info("duplicate or stale outcome acknowledged", extra=context)
            if result.owed:
                log.info("what its first handling owed is published again", extra=context)
            self._outbox.send(result.owed)
            return
        _note_overrun(result.job, outcome, context)
        settled = result.job.attempt(outcome.attempt)
        self._telemetry.attempt_settled(outcome, settled.hold_micros if settled else 0)
        moved = self._health.record(outcome, now, circuits.get(outcome.backend))
        _note_circuit(outcome.backend, moved, context)
        kept = self._health.record_output_store(outcome, now, circuits.get(OUTPUT_STORE))
        _note_circuit(OUTPUT_STORE, kept, context)
        note_quality(self._telemetry, self._health, outcome, now, observed, context)
        self._follow_up(result, outcome, context)
        if result.freed and self._queue is not None:
            self._drain(outcome.backend, context)

    def _drain(self, backend: str, context: dict) -> None:
        """A slot was given back: start the backend's oldest queued jobs (after the commit;
        if this fails, the reconciler's next sweep drains instead)."""
        try:
            self._queue.drain(backend, most=1)
        except Exception:
            log.exception("queue not drained; the reconciler will", extra=context)

    def _apply(
        self, tx: Transaction, outcome: RenderOutcome, circuits: dict[str, Circuit], now: float
    ) -> Settlement:
        job = jobs.load(tx, outcome.job_id)
        refused = None if job is None else outcome_mismatch(job, outcome)
        if refused and (is_outcome_pending(job, outcome) or outcome.attempt > len(job.attempts)):
            return Settlement(job, refused=refused)
        if job is None or not is_outcome_pending(job, outcome):
            return _settled(job, outcome)
        outcome = stored_outcome(job, outcome)
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
        closed = job.require(outcome.attempt)
        freed = frees_slot(closed) and self._slots is not None
        if freed:
            self._slots.give_back(tx, closed.slot_key, job.tenant)
            job = slot_given_back(job, closed.number, now)
        if plan is None:
            job, decision = succeed(job, outcome.output_uri, now), None
        elif ends_cancelled(job, outcome):  # a cancelled job neither retries nor falls back
            job, decision = end_cancelled(job, now), Next.CANCEL
        else:
            job, decision = self._continue(tx, job, outcome, plan, circuits, now)
        jobs.save(tx, job)
        return _settled(job, outcome, decision, applied=True, freed=freed)

    def _continue(self, tx, job: Job, outcome: RenderOutcome, plan, circuits, now: float):
        """Dispatch the first option whose hold fits, or fail the job with the reason."""
        day = budget_day(now, self._settings.timezone)
        options = [(o.step, o.not_before) for o in plan.options]
        lease_s = self._settings.lease_s
        reserved = dispatch.reserve_attempt(
            tx, self._ledger, job, options, day, now, lease_s, self._slots
        )
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
        """Log and count the decision (once: a redelivery finds it applied), then publish what
        the settlement owes (a failed publish is owed again on redelivery)."""
        job = result.job
        if outcome.succeeded:
            log.info("job completed on %s", outcome.backend, extra=context)
            self._telemetry.job_finished(job)
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
            if result.decision is Next.FALLBACK:
                self._telemetry.fallback(outcome.backend, nxt.backend)
        elif result.decision is Next.CANCEL:
            log.info("job cancelled: %s", job.message, extra={**context, "event": "job_cancelled"})
            self._telemetry.job_finished(job)
        elif result.decision is Next.FAIL:
            log.warning("job failed: %s", job.message, extra={**context, "reason": str(job.reason)})
            self._telemetry.job_finished(job)
        self._outbox.send(result.owed)


def _note_circuit(name: str, moved, context: dict) -> None:
    if moved and moved[0].state != moved[1].state:
        log.warning(
            "circuit %s: %s -> %s (%s)",
            name,
            moved[0].state.value,
            moved[1].state.value,
            moved[1].last_error,
            extra={**context, "event": "circuit_change", "reason": moved[1].last_error},
        )


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


def _refusal(context: dict) -> dict:
    """The log fields of a refused outcome: its ids (bounded by the contract), never its
    message."""
    return {**context, "event": "outcome_refused", "reason": "mismatch"}
