"""One instance's metric series and when each may be written: the rules of Cloud Monitoring
custom metrics, kept as plain data (no client library here, so they are cheap to test).

- The instance writes as its own ``generic_task`` (task_id unique per instance), so two
  instances never write the same series.
- Counters and distributions are CUMULATIVE from the instance's start time: each point
  carries the running total, so a dropped write loses resolution, never counts.
- A series written less than ``min_interval_s`` (5 s) ago is not due: its new values are
  coalesced into its next point. A batch holds one point per series, at most 200 series.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from aiprod.domain.metric_set import Buckets, Kind, Metric, ValueType

MAX_SERIES_PER_REQUEST = 200


@dataclass(frozen=True)
class TaskResource:
    """The ``generic_task`` an instance writes as."""

    project: str
    location: str
    namespace: str
    job: str
    task_id: str

    def as_resource(self) -> dict:
        labels = {"project_id": self.project, "location": self.location}
        labels |= {"namespace": self.namespace, "job": self.job, "task_id": self.task_id}
        return {"type": "generic_task", "labels": labels}


class Distribution:
    """Count, mean, sum of squared deviations (Welford) and bucket counts since start."""

    def __init__(self, buckets: Buckets):
        self.buckets, self.count, self.mean, self.m2 = buckets, 0, 0.0, 0.0
        self.counts = [0] * (buckets.count + 2)

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        self.counts[self.buckets.index(value)] += 1

    def as_value(self) -> dict:
        b = self.buckets
        options = {"num_finite_buckets": b.count, "growth_factor": b.growth, "scale": b.scale}
        return {
            "distribution_value": {
                "count": self.count,
                "mean": self.mean,
                "sum_of_squared_deviation": self.m2,
                "bucket_options": {"exponential_buckets": options},
                "bucket_counts": list(self.counts),
            }
        }


@dataclass
class Series:
    metric: Metric
    labels: dict[str, str]
    value: float | Distribution = 0
    pending: bool = False  # changed since its last point
    sent_at: float | None = None


class SeriesBook:
    """The series of one instance; thread-safe (concurrent invocations record into it)."""

    def __init__(self, resource: TaskResource, started_at: float, min_interval_s: float = 5.0):
        self.resource, self.started_at, self.min_interval_s = resource, started_at, min_interval_s
        self._series: dict[tuple, Series] = {}
        self._lock = threading.Lock()

    def record(self, metric: Metric, labels: dict[str, str], value: float) -> None:
        key = (metric.name, tuple(sorted(labels.items())))
        with self._lock:
            series = self._series.get(key)
            if series is None:
                start = Distribution(metric.buckets) if metric.buckets else 0
                series = self._series[key] = Series(metric, labels, start)
            if isinstance(series.value, Distribution):
                series.value.add(value)
            elif metric.kind is Kind.CUMULATIVE:
                series.value += value
            else:
                series.value = value
            series.pending = True

    def take_due(self, now: float) -> list[list[tuple[Series, dict]]]:
        """Batches of (series, TimeSeries) for every due series, each marked sent at ``now``
        (so a concurrent flush cannot write it again within the window)."""
        with self._lock:
            due = [s for s in self._series.values() if s.pending and self._due(s, now)]
            pairs = [(s, self._time_series(s, now)) for s in due]
            for series in due:
                series.pending, series.sent_at = False, now
        step = MAX_SERIES_PER_REQUEST
        return [pairs[i : i + step] for i in range(0, len(pairs), step)]

    def requeue(self, failed: list[Series]) -> None:
        """Their write failed: the next due flush writes their (running) values again."""
        with self._lock:
            for series in failed:
                series.pending = True

    def seconds_until_due(self, now: float) -> float:
        """How long until every pending series may be written (0 when all are due)."""
        with self._lock:
            sent = [s.sent_at for s in self._series.values() if s.pending and s.sent_at]
        return max((t + self.min_interval_s - now for t in sent), default=0.0)

    def _due(self, series: Series, now: float) -> bool:
        return series.sent_at is None or now - series.sent_at >= self.min_interval_s

    def _time_series(self, series: Series, now: float) -> dict:
        metric = series.metric
        interval = {"end_time": _ts(now)}
        if metric.kind is Kind.CUMULATIVE:
            interval["start_time"] = _ts(self.started_at)
        if isinstance(series.value, Distribution):
            value = series.value.as_value()
        elif metric.value_type is ValueType.INT64:
            value = {"int64_value": int(series.value)}
        else:
            value = {"double_value": float(series.value)}
        return {
            "metric": {"type": metric.type, "labels": dict(series.labels)},
            "resource": self.resource.as_resource(),
            "metric_kind": metric.kind.value,
            "value_type": metric.value_type.value,
            "unit": metric.unit,
            "points": [{"interval": interval, "value": value}],
        }


def _ts(seconds: float) -> dict[str, int]:
    whole, nanos = divmod(round(seconds * 1e9), 1_000_000_000)
    return {"seconds": whole, "nanos": nanos}
