"""What the metrics say, for a person: per-backend stats, exact percentiles, the table.

Built from the raw points a local sink kept (``aiprod report``, ``views/report.py``), so the
percentiles are exact rather than read off buckets, and they are the same metrics Cloud
Monitoring gets in deployment.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiprod.domain import metric_set as m
from aiprod_tools.views.tables import render_table


@dataclass
class BackendStats:
    backend: str
    renders: int = 0
    failed: int = 0
    completed: int = 0  # jobs this backend delivered
    fallbacks: int = 0  # jobs moved away from it after a failure
    cost_usd: float = 0.0
    durations: list[float] = field(default_factory=list)
    queue_waits: list[float] = field(default_factory=list)  # jobs that waited for a slot

    @property
    def success_rate(self) -> float | None:
        return None if not self.renders else (self.renders - self.failed) / self.renders


@dataclass
class Summary:
    backends: dict[str, BackendStats] = field(default_factory=dict)
    finished: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rejected: int = 0
    pipeline: list[float] = field(default_factory=list)

    def backend(self, name: str) -> BackendStats:
        return self.backends.setdefault(name, BackendStats(name))


def summarize(points: Iterable[dict]) -> Summary:
    summary = Summary()
    for point in points:
        name, labels, value = point["metric"], point["labels"], point["value"]
        if name == m.PIPELINE_DURATION.name:
            summary.pipeline.append(value)
        elif name == m.JOBS_FINISHED.name:
            summary.finished[labels["status"]] += int(value)
            if labels["status"] == "completed":
                summary.backend(labels["backend"]).completed += int(value)
        elif name == m.JOBS_REJECTED.name:
            summary.rejected += int(value)
        elif name == m.FALLBACKS.name:
            summary.backend(labels["from_backend"]).fallbacks += int(value)
        elif name in _PER_BACKEND:
            _PER_BACKEND[name](summary.backend(labels["backend"]), value)
    return summary


def _add(attribute: str, cast=int):
    def add(stats: BackendStats, value: float) -> None:
        setattr(stats, attribute, getattr(stats, attribute) + cast(value))

    return add


_PER_BACKEND = {
    m.BACKEND_REQUESTS.name: _add("renders"),
    m.BACKEND_ERRORS.name: _add("failed"),
    m.BACKEND_COST.name: _add("cost_usd", float),
    m.RENDER_DURATION.name: lambda stats, value: stats.durations.append(value),
    m.QUEUE_WAIT.name: lambda stats, value: stats.queue_waits.append(value),
}


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile (exact on the raw points; None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


HEADERS = (
    "backend", "renders", "success", "delivered", "p50", "p95", "queued", "wait p95", "cost",
    "fallbacks",
)  # fmt: skip


def backend_rows(summary: Summary) -> list[list[object]]:
    """One row per backend (None where there is nothing to show)."""
    rows = []
    for stats in sorted(summary.backends.values(), key=lambda s: s.backend):
        rate = stats.success_rate
        rows.append(
            [
                stats.backend,
                stats.renders,
                None if rate is None else f"{100 * rate:.0f}%",
                stats.completed,
                _seconds(percentile(stats.durations, 0.50)),
                _seconds(percentile(stats.durations, 0.95)),
                len(stats.queue_waits),
                _seconds(percentile(stats.queue_waits, 0.95)),
                f"${stats.cost_usd:,.2f}",
                stats.fallbacks,
            ]
        )
    return rows


def backend_table(summary: Summary) -> str:
    return render_table(HEADERS, backend_rows(summary))


def overview(summary: Summary) -> str:
    done, failed = summary.finished.get("completed", 0), summary.finished.get("failed", 0)
    total = sum(s.cost_usd for s in summary.backends.values())
    p50, p95 = percentile(summary.pipeline, 0.5), percentile(summary.pipeline, 0.95)
    return (
        f"jobs: {done} completed, {failed} failed, {summary.rejected} rejected; "
        f"pipeline p50 {_seconds(p50) or '-'}, p95 {_seconds(p95) or '-'}; "
        f"provider cost ${total:,.2f}"
    )


def _seconds(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}s"
