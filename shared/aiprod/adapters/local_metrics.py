"""Metric sinks that stay on this machine: nothing, memory, or a JSON-lines file.

The embedded run and the tests keep points in memory; the emulator stack's function
processes (and the demo) append them to one JSON-lines file that ``aiprod report`` reads.
Points are kept raw (each increment, each observation), so the report computes exact
percentiles instead of reading them off buckets.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from aiprod.domain.metric_set import Metric
from aiprod.ports import MetricSink, NullSink

__all__ = ["JsonLinesSink", "MemorySink", "NullSink", "read_points"]


class _LocalSink(MetricSink):
    def __init__(self, clock: Callable[[], float], job: str, task_id: str | None) -> None:
        super().__init__()
        self._clock, self.job = clock, job
        self.task_id = task_id or uuid.uuid4().hex[:12]
        self._lock = threading.Lock()

    def _point(self, metric: Metric, labels: dict[str, str], value: float) -> dict:
        return {
            "t": round(self._clock(), 3),
            "metric": metric.name,
            "instrument": metric.instrument,
            "value": value,
            "labels": labels,
            "job": self.job,
            "task_id": self.task_id,
        }


class MemorySink(_LocalSink):
    """Every point, in order, in ``points`` (read by tests and the embedded demo)."""

    def __init__(self, clock=time.time, job: str = "embedded", task_id: str | None = None):
        super().__init__(clock, job, task_id)
        self.points: list[dict] = []

    def _record(self, metric: Metric, labels: dict[str, str], value: float) -> None:
        point = self._point(metric, labels, value)
        with self._lock:
            self.points.append(point)

    def _flush(self) -> None:
        pass

    def values(self, metric: Metric, **labels: str) -> list[float]:
        """The recorded values of ``metric`` whose labels include ``labels``."""
        with self._lock:
            points = list(self.points)
        return [
            p["value"]
            for p in points
            if p["metric"] == metric.name and labels.items() <= p["labels"].items()
        ]


class JsonLinesSink(_LocalSink):
    """Points buffered per invocation and appended to ``path`` at each flush.

    One ``os.write`` per flush on an O_APPEND descriptor, so the lines of several function
    processes sharing the file never interleave mid-line.
    """

    def __init__(self, path: Path, clock=time.time, job: str = "local", task_id: str | None = None):
        super().__init__(clock, job, task_id)
        self.path = Path(path)
        self._pending: list[dict] = []

    def _record(self, metric: Metric, labels: dict[str, str], value: float) -> None:
        point = self._point(metric, labels, value)
        with self._lock:
            self._pending.append(point)

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        if not pending:
            return
        data = "".join(json.dumps(p, separators=(",", ":")) + "\n" for p in pending).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def read_points(path: Path) -> list[dict]:
    """The points a JSON-lines sink wrote (a torn last line is skipped)."""
    points = []
    for line in Path(path).read_text().splitlines():
        try:
            points.append(json.loads(line))
        except ValueError:
            continue
    return points
