"""The embedded pipeline, several instances per function, writing through the real
``MetricServiceClient`` to a local gRPC server that records CreateTimeSeries requests.

What must hold: every request is one the service accepts (at most 200 series, one point
per series, labels within limits, points of a series at least 5 s apart), each instance
writes under its own task_id, and the series add up to what the store recorded. With the
service down, erroring or stalled, every job still completes and no invocation spends
longer than the flush bound on metrics.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest

from aiprod.adapters.cloud_monitoring import CloudMonitoringSink, TaskResource
from aiprod.config import Settings
from aiprod.domain import metric_set as m
from aiprod_tools.stack.processes import free_port
from fakes.monitoring import RecordingMetricServer, client_for, latest_values
from support.instances import Instances

BOUND_S = 0.3
SETTINGS = Settings(
    project="metrics-e2e",
    poll_interval_s=1.0,
    simulation={
        "runway": {"outage_after": 2, "outage_count": 4, "latency_s": 4},
        "veo": {"latency_s": 3, "cost_ratio": 0.9},
        "replicate": {"latency_s": 2},
    },
)


def requests(count: int) -> list[dict]:
    # untenanted (the shared topic cannot name a tenant; tenants: test_tenant_topics.py)
    return [{"job_id": f"m-{i}", "prompt": "a lighthouse at dusk"} for i in range(count)]


class TimedSink(CloudMonitoringSink):
    """The writer, noting how long each flush took on the wall clock."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.flush_times: list[float] = []

    def flush(self) -> None:
        started = time.monotonic()
        super().flush()
        self.flush_times.append(time.monotonic() - started)


def run(address: str, clock, jobs: int = 9) -> Instances:
    """Publish ``jobs`` in three waves (time passing between them), drain, then shut every
    instance down (the clock past the 5 s window, a last flush each)."""

    def sink(function: str, index: int) -> TimedSink:
        resource = TaskResource(
            "metrics-e2e", "us-central1", "aiprod", function, f"{function}-{index}"
        )
        return TimedSink(resource, client=client_for(address), clock=clock, bound_s=BOUND_S)

    system = Instances(SETTINGS, clock, sink, per_function=3)
    wave = max(1, jobs // 3)
    for start in range(0, jobs, wave):
        for body in requests(jobs)[start : start + wave]:
            system.bus.publish("jobs", json.dumps(body).encode())
        assert system.bus.drain(30), "the embedded bus did not go idle"
        clock.advance(7)
    clock.advance(5)
    for sink in system.sinks():
        sink.flush()
    system.bus.close()
    return system


def totals(server: RecordingMetricServer, metric: m.Metric, **labels: str) -> float:
    """A counter summed over every instance's latest point (what a REDUCE_SUM shows)."""
    return sum(
        value
        for (kind, series_labels, _), value in latest_values(server).items()
        if kind == metric.type and labels.items() <= dict(series_labels).items()
    )


@pytest.fixture
def recording():
    servers: list[RecordingMetricServer] = []

    def start(mode: str = "ok") -> RecordingMetricServer:
        servers.append(RecordingMetricServer(mode).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_instances_write_valid_requests_that_add_up_to_the_store(recording, clock):
    # GIVEN three instances of each function writing to the recording server
    server = recording()

    # WHEN a batch runs through them, runway failing part-way (fallbacks)
    system = run(f"127.0.0.1:{server.port}", clock)

    # THEN every request is one Cloud Monitoring accepts
    assert server.requests, "nothing was written"
    assert server.violations == []
    assert max(len(r.time_series) for r in server.requests) <= 200
    # AND each instance wrote under its own task_id, as its own function
    task_ids = defaultdict(set)
    for ts in server.series():
        task_ids[ts.resource.labels["task_id"]].add(ts.resource.labels["job"])
    assert all(len(jobs) == 1 for jobs in task_ids.values())
    assert len(task_ids) >= 6  # route_job and handle_outcome: 3 instances each, at least
    assert {job for jobs in task_ids.values() for job in jobs} >= {"route_job", "handle_outcome"}
    # AND the series summed across instances are what the store recorded
    jobs = system.store.list("jobs")
    succeeded = sum(j["status"] == "SUCCEEDED" for j in jobs)
    failed = sum(j["status"] == "FAILED" for j in jobs)
    assert succeeded + failed == len(jobs) == 9
    assert totals(server, m.JOBS_ACCEPTED) == len(jobs)
    assert totals(server, m.JOBS_FINISHED, status="completed") == succeeded
    assert totals(server, m.JOBS_FINISHED) == succeeded + failed
    attempts = [a for j in jobs for a in j["attempts"]]
    assert totals(server, m.BACKEND_REQUESTS) == len(attempts)
    assert totals(server, m.FALLBACKS) == sum(len(j["attempts"]) - 1 for j in jobs)
    spent = sum(a["cost_micros"] for a in attempts) / 1e6
    assert totals(server, m.BACKEND_COST) == pytest.approx(spent)
    assert totals(server, m.PIPELINE_DURATION) == succeeded + failed  # distribution counts
    # AND no sink saw a point used the wrong way
    assert all(sink.misused == [] for sink in system.sinks())


@pytest.mark.parametrize("mode", ["error", "hang", "down"])
def test_a_failing_monitoring_service_never_fails_or_slows_a_job(recording, clock, mode):
    # GIVEN Cloud Monitoring answering errors, stalled, or not there at all
    address = f"127.0.0.1:{free_port()}" if mode == "down" else f"127.0.0.1:{recording(mode).port}"

    # WHEN the batch runs
    system = run(address, clock, jobs=6)

    # THEN every job reached its end
    jobs = system.store.list("jobs")
    assert len(jobs) == 6
    assert all(j["status"] in ("SUCCEEDED", "FAILED") for j in jobs)
    assert any(j["status"] == "SUCCEEDED" for j in jobs)
    # AND no invocation waited on a stalled or missing service: each flush gave up near its
    # bound (the margin absorbs a loaded 2-core CI machine; a hang would take the server's
    # whole stall, seconds; the bound's own precision is bench material, not a test's)
    flushes = [t for sink in system.sinks() for t in sink.flush_times]
    assert flushes and max(flushes) < BOUND_S + 1.0, f"slowest flush {max(flushes):.3f} s"
