"""What the services report as metrics, in the services' own terms.

A handler says what happened (a job finished, a render came back, a circuit was read) and
this module alone decides which declared metrics and labels that is, so the metric set can
change without touching a handler. Nothing here raises: the sink drops what it cannot take.
"""

from __future__ import annotations

from aiprod.domain import metric_set as m
from aiprod.domain.budget import BudgetTotals
from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.health import Circuit, CircuitState
from aiprod.domain.jobs import Job, JobStatus
from aiprod.domain.messages import RenderOutcome
from aiprod.domain.money import as_usd
from aiprod.ports import MetricSink, NullSink

FINISHED_STATUS = {JobStatus.SUCCEEDED: "completed", JobStatus.CANCELLED: "cancelled"}


class Telemetry:
    def __init__(self, sink: MetricSink):
        self.sink = sink

    def job_accepted(self, job: Job) -> None:
        backend = job.current.backend if job.current else "none"
        self.sink.count(m.JOBS_ACCEPTED, {"backend": backend})

    def job_rejected(self, reason: object) -> None:
        self.sink.count(m.JOBS_REJECTED, {"reason": reason or "unknown"})

    def job_finished(self, job: Job) -> None:
        """A job reached SUCCEEDED, FAILED or CANCELLED: the SLO counters, duration, cost.
        A cancelled job is counted apart (``status="cancelled"``): the latency SLO counts
        completed and failed jobs only, so a user's cancel is not our slowness.
        ``quality_met`` is the delivered output's measured score against the floor (the
        quality SLO), n/a when it was not checked."""
        completed = job.status is JobStatus.SUCCEEDED
        backend = job.current.backend if job.current else "none"
        duration = max(0.0, (job.finished_at or job.updated_at) - job.created_at)
        quality = _measured(job) if completed else None
        status = FINISHED_STATUS.get(job.status, "failed")
        self.sink.count(
            m.JOBS_FINISHED,
            {
                "status": status,
                "backend": backend,
                "reason": "none" if completed else (job.reason or "unknown"),
                "within_latency_target": _flag(duration <= m.LATENCY_TARGET_S),
                "quality_met": "n/a" if quality is None else _flag(quality >= m.QUALITY_FLOOR),
            },
        )
        self.sink.observe(m.PIPELINE_DURATION, duration, {"status": status})
        if not completed:
            return
        cost = as_usd(job.cost_micros)
        self.sink.observe(m.JOB_COST, cost, {"backend": backend})
        minutes = float(job.request.get("duration_s") or 0) / 60
        if minutes > 0:
            self.sink.observe(m.COST_PER_MINUTE, cost / minutes, {"backend": backend})

    def output_checked(self, outcome: RenderOutcome) -> None:
        """An applied outcome carried a QA report (once per outcome): its measured score by
        backend and model, and a rejection counted by its first failed check, apart from
        ``backend/errors`` (provider failures by class)."""
        qa = outcome.qa
        if qa is None:
            return
        labels = {"backend": outcome.backend, "model": outcome.model}
        self.sink.observe(m.QUALITY, qa.score, labels)
        if outcome.error_code == ErrorCode.QA_FAILED:
            self.sink.count(m.QUALITY_REJECTED, {**labels, "check": rejected_check(outcome)})

    def render_finished(self, outcome: RenderOutcome) -> None:
        backend = {"backend": outcome.backend}
        status = "succeeded" if outcome.succeeded else "failed"
        self.sink.count(m.BACKEND_REQUESTS, backend)
        seconds = max(0.0, outcome.finished_at - outcome.started_at - outcome.provider_queue_s)
        self.sink.observe(m.RENDER_DURATION, seconds, {**backend, "status": status})
        if outcome.provider_queue_s:
            self.sink.observe(m.PROVIDER_QUEUE, outcome.provider_queue_s, backend)
        if not outcome.succeeded:
            error_class = outcome.error_class or "UNKNOWN"
            self.sink.count(m.BACKEND_ERRORS, {**backend, "error_class": error_class})

    def attempt_settled(self, outcome: RenderOutcome, hold_micros: int) -> None:
        """An attempt's hold was settled to its reported cost (which may overrun the hold)."""
        backend = {"backend": outcome.backend}
        if outcome.cost_micros:
            self.sink.count(m.BACKEND_COST, backend, by=as_usd(outcome.cost_micros))
        if outcome.cost_micros > hold_micros:
            self.sink.count(m.OVERRUNS, backend)

    def fallback(self, from_backend: str, to_backend: str) -> None:
        self.sink.count(m.FALLBACKS, {"from_backend": from_backend, "to_backend": to_backend})

    def circuit(self, circuit: Circuit, now: float) -> None:
        self.sink.gauge(m.CIRCUIT_STATE, circuit_level(circuit, now), {"backend": circuit.backend})

    def budget(self, entry: BudgetTotals) -> None:
        scope = {"scope": entry.scope}
        self.sink.gauge(m.BUDGET_SPENT, as_usd(entry.spent_micros), scope)
        self.sink.gauge(m.BUDGET_HELD, as_usd(entry.held_micros), scope)
        self.sink.gauge(m.BUDGET_UTILIZATION, round(entry.utilization(), 6), scope)

    def reconciler_action(self, action: str) -> None:
        self.sink.count(m.RECONCILER_ACTIONS, {"action": action})

    def spend_unrecorded(self, backend: str, micros: int) -> None:
        """The spend audit found provider spend the books lacked, and charged it."""
        self.sink.count(m.SPEND_UNRECORDED, {"backend": backend}, by=as_usd(micros))

    def stuck_attempts(self, count: int) -> None:
        self.sink.gauge(m.STUCK_JOBS, count)

    def queue_sampled(
        self, backend: str, depth: int, oldest_age_s: float, in_use: int, capacity: int
    ) -> None:
        """A backend's render queue and slots as a sweep found them."""
        labels = {"backend": backend}
        self.sink.gauge(m.QUEUE_DEPTH, depth, labels)
        self.sink.gauge(m.QUEUE_OLDEST_AGE, round(max(0.0, oldest_age_s), 3), labels)
        self.sink.gauge(m.SLOTS_IN_USE, in_use, labels)
        self.sink.gauge(m.SLOTS_CAPACITY, capacity, labels)

    def queue_waited(self, job: Job, now: float) -> None:
        """A queued job started (its current attempt waited since ``queued_at``)."""
        attempt = job.current
        if attempt is not None and attempt.queued_at is not None:
            waited = max(0.0, now - attempt.queued_at)
            self.sink.observe(m.QUEUE_WAIT, waited, {"backend": attempt.backend})


def circuit_level(circuit: Circuit, now: float) -> int:
    """0 closed; 1 half-open, or open with its cooldown over (the next job probes it);
    2 open and cooling down, which is what the 'open for 15 minutes' alert watches."""
    if circuit.state is CircuitState.CLOSED:
        return 0
    if circuit.state is CircuitState.OPEN and now < circuit.open_until:
        return 2
    return 1


def rejected_check(outcome: RenderOutcome) -> str:
    """The first check a rejected output failed; a rating below the threshold is named by
    the report's reason (``semantic_below_threshold``); "unknown" when there is neither."""
    failed = outcome.qa.failed_checks if outcome.qa else []
    if failed:
        return failed[0]
    return (outcome.qa.reason if outcome.qa else "") or "unknown"


def _measured(job: Job) -> float | None:
    """The measured quality of the output the job delivered (its current attempt's)."""
    last = job.current
    outcome = last.outcome if last else None
    return outcome.qa.score if outcome and outcome.qa else None


def _flag(value: bool) -> str:
    return "true" if value else "false"


def null_telemetry() -> Telemetry:
    """For services built without metrics (tests, tools): every point checked, then dropped."""
    return Telemetry(NullSink())
