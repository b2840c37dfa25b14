"""The metric set, declared once: every custom metric aiprod writes, with its schema.

Cloud Monitoring custom metrics are GAUGE or CUMULATIVE only, so counters are CUMULATIVE
(also what request-based SLOs accept) and durations, costs and quality are CUMULATIVE
DISTRIBUTIONs (percentiles and means can be charted across instances). The sinks refuse a
point for a metric or label set not declared here; infra creates the descriptors from
``descriptors()`` (``python -m aiprod.domain.metric_set``), and tests check that every
metric an alert, widget or SLO names is one of these and that each of these is shown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "custom.googleapis.com/aiprod/"
LATENCY_TARGET_S = 900.0  # the product's p95 alert, and the latency SLO's threshold
QUALITY_FLOOR = 0.6  # the product's quality alert, and the quality SLO's threshold


class Kind(StrEnum):
    GAUGE = "GAUGE"
    CUMULATIVE = "CUMULATIVE"


class ValueType(StrEnum):
    INT64 = "INT64"
    DOUBLE = "DOUBLE"
    DISTRIBUTION = "DISTRIBUTION"


@dataclass(frozen=True)
class Buckets:
    """Exponential buckets: bounds ``scale * growth**i`` for i in 0..count."""

    scale: float
    growth: float
    count: int

    def index(self, value: float) -> int:
        """The bucket of ``value``: 0 is underflow (< scale), ``count + 1`` overflow."""
        if value < self.scale:
            return 0
        return min(self.count + 1, 1 + int(math.log(value / self.scale, self.growth) + 1e-9))


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    value_type: ValueType
    unit: str
    description: str
    labels: tuple[tuple[str, str], ...] = ()
    buckets: Buckets | None = None

    @property
    def type(self) -> str:
        return PREFIX + self.name

    @property
    def label_keys(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.labels)

    @property
    def instrument(self) -> str:
        """How code records it: ``counter`` (adds), ``gauge`` (sets), ``distribution``."""
        if self.value_type is ValueType.DISTRIBUTION:
            return "distribution"
        return "counter" if self.kind is Kind.CUMULATIVE else "gauge"


BACKEND = ("backend", "Provider: runway, veo or replicate")
MODEL = ("model", "The backend's model, as the catalog names it")
SCOPE = ("scope", "Budget scope: global or tenant:<name>")
STATUS = ("status", "completed or failed (jobs); succeeded or failed (renders)")
SECONDS = Buckets(scale=0.1, growth=1.25, count=48)  # 0.1 s .. about 11 hours
USD = Buckets(scale=0.001, growth=1.4, count=32)  # $0.001 .. about $34,000
SCORE = Buckets(scale=0.1, growth=1.05, count=48)  # 0.1 .. about 1.04
INT, REAL = ValueType.INT64, ValueType.DOUBLE


def _counter(name: str, text: str, *labels, unit: str = "1", value: ValueType = INT) -> Metric:
    return Metric(name, Kind.CUMULATIVE, value, unit, text, labels)


def _gauge(name: str, text: str, *labels, unit: str = "1", value: ValueType = INT) -> Metric:
    return Metric(name, Kind.GAUGE, value, unit, text, labels)


def _distribution(name: str, text: str, unit: str, buckets: Buckets, *labels) -> Metric:
    return Metric(name, Kind.CUMULATIVE, ValueType.DISTRIBUTION, unit, text, labels, buckets)


JOBS_ACCEPTED = _counter("jobs/accepted", "Jobs admitted with a budget hold", BACKEND)
JOBS_REJECTED = _counter(
    "jobs/rejected", "Job requests refused", ("reason", "invalid, over_budget, conflict, ...")
)
JOBS_FINISHED = _counter(
    "jobs/finished",
    "Jobs completed or failed; also the good and total counts of the SLOs",
    STATUS,
    ("backend", "The last backend tried (none when no attempt ran)"),
    ("reason", "Why a job failed (none when it completed)"),
    ("within_latency_target", f"true when it finished within {LATENCY_TARGET_S:.0f} s"),
    (
        "quality_met",
        f"true when the delivered output measured quality >= {QUALITY_FLOOR}; "
        "n/a when failed, cancelled or not checked",
    ),
)
PIPELINE_DURATION = _distribution(
    "pipeline/duration", "From admission to completion or failure", "s", SECONDS, STATUS
)
RENDER_DURATION = _distribution(
    "render/duration", "One render attempt on a provider", "s", SECONDS, BACKEND, STATUS
)
PROVIDER_QUEUE = _distribution(
    "render/provider_queue",
    "Time a render waited in the provider's own queue (Runway PENDING/THROTTLED, Replicate "
    "starting), not counted in render/duration",
    "s",
    SECONDS,
    BACKEND,
)
JOB_COST = _distribution(
    "job/cost", "Cost of a completed job, by the backend that delivered it", "{USD}", USD, BACKEND
)
COST_PER_MINUTE = _distribution(
    "job/cost_per_video_minute", "Cost of a completed job per minute of video", "{USD}/min",
    USD, BACKEND,
)  # fmt: skip
BACKEND_COST = _counter(
    "backend/cost", "Settled provider cost of every attempt", BACKEND, unit="{USD}", value=REAL
)
BUDGET_SPENT = _gauge("budget/spent", "Spent today", SCOPE, unit="{USD}", value=REAL)
BUDGET_HELD = _gauge("budget/held", "Held today for open attempts", SCOPE, unit="{USD}", value=REAL)
BUDGET_UTILIZATION = _gauge(
    "budget/utilization", "(spent + held) / limit today, 0..1", SCOPE, value=REAL
)
BACKEND_REQUESTS = _counter("backend/requests", "Render attempts run on a provider", BACKEND)
BACKEND_ERRORS = _counter(
    "backend/errors",
    "Render attempts that failed, by error class",
    BACKEND,
    ("error_class", "RETRY_SAME, FALLBACK, TERMINAL or UNKNOWN"),
)
FALLBACKS = _counter(
    "backend/fallbacks",
    "Jobs moved to another backend after a failure",
    ("from_backend", "The backend that failed"),
    ("to_backend", "The backend tried next"),
)
CIRCUIT_STATE = _gauge(
    "backend/circuit_state", "Circuit breaker: 0 closed, 1 probing, 2 open (cooling down)", BACKEND
)
QUALITY = _distribution(
    "quality/score",
    "Measured quality of each checked output, 0..1 (0: rejected by a technical check)",
    "1",
    SCORE,
    BACKEND,
    MODEL,
)
QUALITY_REJECTED = _counter(
    "quality/rejected",
    "Rendered outputs rejected by QA (error qa_failed), by the first check they failed",
    BACKEND,
    MODEL,
    ("check", "The first failed check: decodes, duration, resolution, not_black, ..."),
)
OVERRUNS = _counter("budget/overruns", "Attempts whose reported cost exceeded their hold", BACKEND)
RECONCILER_ACTIONS = _counter(
    "reconciler/actions",
    "What the reconciler did with an expired attempt",
    ("action", "redispatched, reported, extended, timed_out, overdue, republished, ..."),
)
SPEND_UNRECORDED = _counter(
    "spend/unrecorded",
    "Provider spend the ledger had not recorded, charged unattributed by the spend audit",
    BACKEND,
    unit="{USD}",
    value=REAL,
)
STUCK_JOBS = _gauge("jobs/stuck", "Attempts past their lease when the reconciler last looked")
QUEUE_DEPTH = _gauge(
    "queue/depth",
    "Jobs waiting for a render slot, counted each reconciler sweep up to a bound (1000)",
    BACKEND,
)
QUEUE_OLDEST_AGE = _gauge(
    "queue/oldest_age",
    "How long the longest-waiting queued job has waited, each reconciler sweep (0: none waits)",
    BACKEND,
    unit="s",
    value=REAL,
)
QUEUE_WAIT = _distribution(
    "queue/wait", "Time a job waited for a render slot, recorded when it starts", "s", SECONDS,
    BACKEND,
)  # fmt: skip
SLOTS_IN_USE = _gauge("slots/in_use", "Render slots held, each reconciler sweep", BACKEND)
SLOTS_CAPACITY = _gauge(
    "slots/capacity", "Renders the backend may run at once (aiprod capacity), each sweep", BACKEND
)

ALL: tuple[Metric, ...] = (
    JOBS_ACCEPTED, JOBS_REJECTED, JOBS_FINISHED, PIPELINE_DURATION, RENDER_DURATION, JOB_COST,
    COST_PER_MINUTE, BACKEND_COST, BUDGET_SPENT, BUDGET_HELD, BUDGET_UTILIZATION,
    BACKEND_REQUESTS, BACKEND_ERRORS, FALLBACKS, CIRCUIT_STATE, QUALITY, OVERRUNS,
    RECONCILER_ACTIONS, STUCK_JOBS, SPEND_UNRECORDED, PROVIDER_QUEUE, QUEUE_DEPTH,
    QUEUE_OLDEST_AGE, QUEUE_WAIT, SLOTS_IN_USE, SLOTS_CAPACITY, QUALITY_REJECTED,
)  # fmt: skip
BY_TYPE: dict[str, Metric] = {m.type: m for m in ALL}


def descriptor(metric: Metric) -> dict:
    """The MetricDescriptor REST shape (projects.metricDescriptors.create)."""
    return {
        "type": metric.type,
        "metricKind": metric.kind.value,
        "valueType": metric.value_type.value,
        "unit": metric.unit,
        "description": metric.description,
        "displayName": metric.name.replace("/", " ").replace("_", " "),
        "labels": [
            {"key": key, "valueType": "STRING", "description": text} for key, text in metric.labels
        ],
    }


def descriptors() -> list[dict]:
    return [descriptor(m) for m in ALL]


if __name__ == "__main__":
    print(json.dumps(descriptors(), indent=2))
