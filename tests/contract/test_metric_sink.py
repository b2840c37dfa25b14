"""The MetricSink contract: counters add, gauges set, misuse is noted and never raises, and a
flush never raises, whatever the destination does.

Parametrized over the local sinks as bootstrap builds them (``AIPROD_METRICS`` = memory,
jsonl:<path>, off) and the Cloud Monitoring sink on the real client library against the local
recording gRPC server. Each keeping sink is read back the way its reader would: the memory
sink's points, the JSON-lines file, the last CUMULATIVE or GAUGE point of each series.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from aiprod.adapter_tables import make_metric_sink
from aiprod.adapters.cloud_monitoring import CloudMonitoringSink, TaskResource
from aiprod.adapters.local_metrics import JsonLinesSink, MemorySink, NullSink, read_points
from aiprod.config import Settings
from aiprod.domain import metric_set as m
from aiprod.ports import MetricSink
from fakes.monitoring import RecordingMetricServer, latest_values, recording_servers

BOUND_S = 0.5
VEO = {"backend": "veo"}
GLOBAL = {"scope": "global"}


@dataclass
class Subject:
    sink: MetricSink
    # The value a reader sees for one series after a flush: counters summed, gauges the last.
    read: Callable[[m.Metric, Mapping[str, str]], float | None]


def local_value(points: list[dict], metric: m.Metric, labels: Mapping[str, str]) -> float | None:
    values = [p["value"] for p in points if (p["metric"], p["labels"]) == (metric.name, labels)]
    if not values:
        return None
    return sum(values) if metric.instrument == "counter" else values[-1]


def memory(tmp_path: Path, request) -> Subject:
    sink = make_metric_sink(Settings(metrics="memory"), request.getfixturevalue("clock"))
    assert type(sink) is MemorySink
    return Subject(sink, lambda metric, labels: local_value(sink.points, metric, labels))


def jsonl(tmp_path: Path, request) -> Subject:
    path = tmp_path / "metrics" / "points.jsonl"
    sink = make_metric_sink(Settings(metrics=f"jsonl:{path}"), request.getfixturevalue("clock"))
    assert type(sink) is JsonLinesSink and sink.path == path

    def read(metric: m.Metric, labels: Mapping[str, str]) -> float | None:
        return local_value(read_points(path) if path.exists() else [], metric, labels)

    return Subject(sink, read)


def null(tmp_path: Path, request) -> Subject:
    sink = make_metric_sink(Settings(metrics="off"), request.getfixturevalue("clock"))
    assert type(sink) is NullSink
    return Subject(sink, lambda metric, labels: None)  # keeps nothing, by design


def cloud(tmp_path: Path, request) -> Subject:
    server, clock = request.getfixturevalue("monitoring")(), request.getfixturevalue("clock")
    resource = TaskResource("proj", "us-central1", "aiprod", "contract", "task-1")
    sink = CloudMonitoringSink(resource, client=server.client(), clock=clock, bound_s=BOUND_S)

    def read(metric: m.Metric, labels: Mapping[str, str]) -> float | None:
        assert server.violations == []
        found = {k[1]: v for k, v in latest_values(server).items() if k[0] == metric.type}
        return found.get(tuple(sorted(labels.items())))

    return Subject(sink, read)


SINKS = {"memory": memory, "jsonl": jsonl, "null": null, "cloud": cloud}
KEEPING = ("memory", "jsonl", "cloud")


@pytest.fixture
def monitoring() -> Iterator[Callable[..., RecordingMetricServer]]:
    with recording_servers() as start:
        yield start


@pytest.fixture(params=list(SINKS))
def subject(request, tmp_path) -> Subject:
    return SINKS[request.param](tmp_path, request)


@pytest.fixture(params=KEEPING)
def keeping(request, tmp_path) -> Subject:
    return SINKS[request.param](tmp_path, request)


def test_counters_add_within_and_across_flushes(keeping, clock):
    # GIVEN an invocation that counts 1 and 2
    keeping.sink.count(m.JOBS_ACCEPTED, VEO)
    keeping.sink.count(m.JOBS_ACCEPTED, VEO, by=2)
    keeping.sink.count(m.JOBS_ACCEPTED, {"backend": "runway"})
    keeping.sink.flush()
    assert keeping.read(m.JOBS_ACCEPTED, VEO) == 3

    # WHEN a later invocation counts 4 more
    clock.advance(6)
    keeping.sink.count(m.JOBS_ACCEPTED, VEO, by=4)
    keeping.sink.flush()

    # THEN the series reads 7, and the other series kept its own count
    assert keeping.read(m.JOBS_ACCEPTED, VEO) == 7
    assert keeping.read(m.JOBS_ACCEPTED, {"backend": "runway"}) == 1
    assert keeping.sink.misused == []


def test_gauges_set_the_last_value(keeping, clock):
    keeping.sink.gauge(m.BUDGET_UTILIZATION, 0.25, GLOBAL)
    keeping.sink.gauge(m.BUDGET_UTILIZATION, 0.5, GLOBAL)
    keeping.sink.flush()
    assert keeping.read(m.BUDGET_UTILIZATION, GLOBAL) == 0.5

    clock.advance(6)
    keeping.sink.gauge(m.BUDGET_UTILIZATION, 0.125, GLOBAL)
    keeping.sink.flush()

    assert keeping.read(m.BUDGET_UTILIZATION, GLOBAL) == 0.125


MISUSES = (
    lambda sink: sink.gauge(m.JOBS_ACCEPTED, 3.0, VEO),  # a counter set like a gauge
    lambda sink: sink.count(m.JOBS_ACCEPTED, {**VEO, "tenant": "acme"}),  # undeclared label
    lambda sink: sink.count(m.JOBS_ACCEPTED, {}),  # a declared label missing
    lambda sink: sink.gauge(m.BUDGET_UTILIZATION, float("nan"), GLOBAL),  # not a number
    lambda sink: sink.count(m.JOBS_ACCEPTED, VEO, by=True),  # a bool is not a count
    lambda sink: sink.observe(m.BUDGET_UTILIZATION, 1.0, GLOBAL),  # a gauge observed
)


def test_misuse_is_noted_and_never_raises(subject):
    for misuse in MISUSES:
        misuse(subject.sink)  # WHEN each wrong use happens: no exception
    subject.sink.flush()

    # THEN each is noted once, naming the metric
    assert len(subject.sink.misused) == len(MISUSES)
    names = (m.JOBS_ACCEPTED.name, m.BUDGET_UTILIZATION.name)
    assert all(note.startswith(names) for note in subject.sink.misused), subject.sink.misused


def test_misused_points_are_dropped_and_good_ones_kept(keeping):
    for misuse in MISUSES:
        misuse(keeping.sink)
    keeping.sink.count(m.JOBS_ACCEPTED, VEO)
    keeping.sink.flush()

    assert keeping.read(m.JOBS_ACCEPTED, VEO) == 1  # neither the gauge nor the bool counted
    assert keeping.read(m.BUDGET_UTILIZATION, GLOBAL) is None


@dataclass
class Broken:
    sink: MetricSink
    logger: str


def broken_jsonl(tmp_path: Path, request) -> Broken:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the sink wants a folder")
    sink = JsonLinesSink(blocker / "points.jsonl", request.getfixturevalue("clock"))
    return Broken(sink, "aiprod.metrics")


def broken_cloud(mode: str):
    def build(tmp_path: Path, request) -> Broken:
        server = request.getfixturevalue("monitoring")(mode)
        resource = TaskResource("proj", "us-central1", "aiprod", "contract", "task-1")
        sink = CloudMonitoringSink(resource, client=server.client(), bound_s=BOUND_S)
        return Broken(sink, "aiprod.adapters.cloud_monitoring")

    return build


BROKEN = {
    "jsonl-unwritable": broken_jsonl,
    "cloud-unavailable": broken_cloud("error"),
    "cloud-stalled": broken_cloud("hang"),
}


@pytest.mark.parametrize("destination", list(BROKEN))
def test_a_failing_flush_never_raises_is_bounded_and_logged(destination, tmp_path, request, caplog):
    # GIVEN a sink whose destination fails (memory and off have none that can)
    broken = BROKEN[destination](tmp_path, request)
    broken.sink.count(m.JOBS_ACCEPTED, VEO)

    # WHEN the invocation flushes
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=broken.logger):
        broken.sink.flush()
    took = time.monotonic() - started

    # THEN it returned within the bound and said what it dropped
    assert took < BOUND_S + 0.25, f"flush took {took:.2f} s"
    dropped = [r for r in caplog.records if r.name == broken.logger and "dropped" in r.message]
    assert dropped and all(r.levelno == logging.WARNING for r in dropped)
