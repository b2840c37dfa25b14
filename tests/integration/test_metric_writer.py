"""The Cloud Monitoring writer against the real client library and a local gRPC server.

Time for points comes from a controllable clock; the flush bound is measured on the real
monotonic clock, since "never slows a job past the bound" is about wall time.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from google.api import metric_pb2

from aiprod.adapters.cloud_monitoring import CloudMonitoringSink, TaskResource
from aiprod.domain import metric_set as m
from aiprod_tools.stack.processes import free_port
from fakes.monitoring import RecordingMetricServer, client_for, latest_values

BOUND_S = 0.5


@pytest.fixture
def server():
    servers: list[RecordingMetricServer] = []

    def start(mode: str = "ok") -> RecordingMetricServer:
        servers.append(RecordingMetricServer(mode).start())
        return servers[-1]

    yield start
    for running in servers:
        running.stop()


def sink_for(client, clock, task_id: str = "task-1") -> CloudMonitoringSink:
    resource = TaskResource("proj", "us-central1", "aiprod", "route_job", task_id)
    return CloudMonitoringSink(resource, client=client, clock=clock, bound_s=BOUND_S)


def values(srv: RecordingMetricServer, metric: m.Metric) -> dict[tuple, object]:
    return {k[1]: v for k, v in latest_values(srv).items() if k[0] == metric.type}


def test_each_kind_is_written_as_the_service_expects(server, clock):
    # GIVEN an instance that counted, set a gauge and observed durations
    srv = server()
    sink = sink_for(srv.client(), clock)
    sink.count(m.JOBS_ACCEPTED, {"backend": "veo"})
    sink.count(m.JOBS_ACCEPTED, {"backend": "veo"})
    sink.gauge(m.BUDGET_UTILIZATION, 0.25, {"scope": "global"})
    sink.gauge(m.BUDGET_UTILIZATION, 0.5, {"scope": "global"})
    for seconds in (1.0, 2.0, 30.0):
        sink.observe(m.PIPELINE_DURATION, seconds, {"status": "completed"})

    # WHEN the invocation ends
    clock.advance(1)
    sink.flush()

    # THEN one request holds one point per series, under this instance's generic_task
    assert srv.violations == [] and len(srv.requests) == 1
    series = {ts.metric.type: ts for ts in srv.requests[0].time_series}
    assert set(series) == {
        m.JOBS_ACCEPTED.type,
        m.BUDGET_UTILIZATION.type,
        m.PIPELINE_DURATION.type,
    }
    counter = series[m.JOBS_ACCEPTED.type]
    assert counter.resource.labels["task_id"] == "task-1"
    assert counter.resource.labels["job"] == "route_job"
    assert counter.metric_kind == metric_pb2.MetricDescriptor.CUMULATIVE
    point = counter.points[0]
    assert point.value.int64_value == 2
    assert point.interval.start_time.timestamp() == pytest.approx(clock.start)
    assert series[m.BUDGET_UTILIZATION.type].points[0].value.double_value == 0.5  # last wins
    dist = series[m.PIPELINE_DURATION.type].points[0].value.distribution_value
    assert (dist.count, dist.mean) == (3, pytest.approx(11.0))
    assert sum(dist.bucket_counts) == 3
    assert len(dist.bucket_counts) == m.SECONDS.count + 2


def test_points_of_a_series_are_coalesced_within_five_seconds(server, clock):
    # GIVEN a series written once
    srv = server()
    sink = sink_for(srv.client(), clock)
    sink.count(m.JOBS_ACCEPTED, {"backend": "veo"})
    sink.flush()

    # WHEN invocations keep counting and flushing inside the 5 s window
    for _ in range(4):
        clock.advance(1)
        sink.count(m.JOBS_ACCEPTED, {"backend": "veo"})
        sink.flush()

    # THEN nothing more was written yet; once the window passed, one point carries the total
    assert len(srv.requests) == 1
    clock.advance(1)
    sink.flush()
    assert len(srv.requests) == 2 and srv.violations == []
    assert values(srv, m.JOBS_ACCEPTED) == {(("backend", "veo"),): 5}
    # AND a flush with nothing new writes nothing
    clock.advance(10)
    sink.flush()
    assert len(srv.requests) == 2


def test_more_than_200_series_go_in_several_requests(server, clock):
    srv = server()
    sink = sink_for(srv.client(), clock)
    for i in range(450):
        sink.gauge(m.BUDGET_SPENT, float(i), {"scope": f"tenant:t{i}"})

    sink.flush()

    assert [len(r.time_series) for r in srv.requests] == [200, 200, 50]
    assert srv.violations == []


@pytest.mark.parametrize("mode", ["error", "hang", "down"])
def test_a_failing_service_costs_at_most_the_bound_and_loses_no_counts(server, clock, mode):
    # GIVEN Cloud Monitoring failing (answering errors, stalled, or not listening at all)
    client = client_for(f"127.0.0.1:{free_port()}") if mode == "down" else server(mode).client()
    sink = sink_for(client, clock)
    sink.count(m.JOBS_ACCEPTED, {"backend": "veo"}, by=3)

    # WHEN the invocation flushes
    started = time.monotonic()
    sink.flush()
    took = time.monotonic() - started

    # THEN it returned without raising, within the bound
    assert took < BOUND_S, f"flush took {took:.3f} s"
    assert sink.last_flush_s < BOUND_S
    # AND the count is kept: once the service is back, the next point carries the total
    healthy = server()
    sink._client = healthy.client()
    sink.count(m.JOBS_ACCEPTED, {"backend": "veo"})
    clock.advance(5)
    sink.flush()
    assert values(healthy, m.JOBS_ACCEPTED) == {(("backend", "veo"),): 4}


def test_points_used_the_wrong_way_are_dropped_and_noted(server, clock):
    srv = server()
    sink = sink_for(srv.client(), clock)

    sink.count(m.JOBS_ACCEPTED, {"backend": "veo", "tenant": "x"})  # undeclared label
    sink.gauge(m.JOBS_ACCEPTED, 3, {"backend": "veo"})  # a counter set like a gauge
    sink.observe(m.PIPELINE_DURATION, float("nan"), {"status": "failed"})
    sink.flush()

    assert len(sink.misused) == 3
    assert srv.requests == []


def test_the_monitoring_library_is_not_imported_until_a_flush_has_something_to_write():
    # The deployed functions pay for google-cloud-monitoring on their first write, not at start.
    code = (
        "import sys\n"
        "from aiprod.bootstrap import App\n"
        "from aiprod.config import Settings\n"
        "app = App(Settings(metrics='cloud'))\n"
        "app.metrics.flush()\n"
        "assert 'google.cloud.monitoring_v3' not in sys.modules, 'imported early'\n"
        "print(type(app.metrics).__name__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "CloudMonitoringSink"
