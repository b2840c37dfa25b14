"""A local stand-in for Cloud Monitoring's MetricService: a gRPC server on 127.0.0.1 that
records every CreateTimeSeries request and checks it against the service's rules for custom
metrics, so tests read both what was sent and what the real service would have refused.

``mode`` says how it answers: ``ok``; ``error`` (UNAVAILABLE, as during an outage);
``hang`` (never answers until stopped, as a stalled network would). The real
``MetricServiceClient`` is pointed at it with an insecure channel passed as its transport.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
from google.cloud import monitoring_v3
from google.cloud.monitoring_v3.services.metric_service.transports import (
    MetricServiceGrpcTransport,
)

MAX_SERIES = 200
MIN_GAP_S = 5.0
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
RESOURCE_LABELS = {"project_id", "location", "namespace", "job", "task_id"}


class RecordingMetricServer:
    def __init__(self, mode: str = "ok"):
        self.mode = mode
        self.requests: list[monitoring_v3.CreateTimeSeriesRequest] = []
        self.violations: list[str] = []
        self._last_end: dict[tuple, float] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler = grpc.unary_unary_rpc_method_handler(
            self._create,
            request_deserializer=monitoring_v3.CreateTimeSeriesRequest.deserialize,
            response_serializer=lambda _: b"",
        )
        service = grpc.method_handlers_generic_handler(
            "google.monitoring.v3.MetricService", {"CreateTimeSeries": handler}
        )
        self._server.add_generic_rpc_handlers((service,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def start(self) -> RecordingMetricServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.stop(grace=None)

    def client(self) -> monitoring_v3.MetricServiceClient:
        return client_for(f"127.0.0.1:{self.port}")

    def series(self) -> list[monitoring_v3.TimeSeries]:
        with self._lock:
            return [ts for request in self.requests for ts in request.time_series]

    def _create(self, request, context):
        with self._lock:
            self.requests.append(request)
            self._check(request)
        if self.mode == "error":
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected outage")
        if self.mode == "hang":
            self._release.wait(30)
        return None

    def _check(self, request) -> None:
        if len(request.time_series) > MAX_SERIES:
            self.violations.append(f"{len(request.time_series)} series in one request")
        seen: set[tuple] = set()
        for ts in request.time_series:
            key = series_key(ts)
            if key in seen:
                self.violations.append(f"two points of {key} in one request")
            seen.add(key)
            if len(ts.points) != 1:
                self.violations.append(f"{len(ts.points)} points for {key}")
            if ts.resource.type != "generic_task" or set(ts.resource.labels) != RESOURCE_LABELS:
                self.violations.append(f"resource {ts.resource.type} {dict(ts.resource.labels)}")
            for name, value in ts.metric.labels.items():
                if not LABEL_KEY.match(name) or len(value) > 1024:
                    self.violations.append(f"label {name}={value[:40]}")
            end = ts.points[0].interval.end_time.timestamp() if ts.points else 0.0
            last = self._last_end.get(key)
            if last is not None and end - last < MIN_GAP_S:
                self.violations.append(f"{key} written {end - last:.2f} s after its last point")
            self._last_end[key] = end


@contextmanager
def recording_servers() -> Iterator[Callable[..., RecordingMetricServer]]:
    """``start(mode="ok")`` starts one more server; all of them stop on exit."""
    servers: list[RecordingMetricServer] = []

    def start(mode: str = "ok") -> RecordingMetricServer:
        servers.append(RecordingMetricServer(mode).start())
        return servers[-1]

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def client_for(address: str) -> monitoring_v3.MetricServiceClient:
    """The real client library, talking plain gRPC to ``address``."""
    channel = grpc.insecure_channel(address)
    return monitoring_v3.MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))


def series_key(ts) -> tuple:
    """One series: its metric type and labels, and its monitored resource's labels."""
    return (
        ts.metric.type,
        tuple(sorted(ts.metric.labels.items())),
        tuple(sorted(ts.resource.labels.items())),
    )


def latest_values(server: RecordingMetricServer) -> dict[tuple, object]:
    """Each series' last written value (int, float, or the distribution's count)."""
    latest: dict[tuple, tuple[float, object]] = {}
    for ts in server.series():
        point = ts.points[0]
        end = point.interval.end_time.timestamp()
        which = monitoring_v3.TypedValue.pb(point.value).WhichOneof("value")
        value = getattr(point.value, which)
        if which == "distribution_value":
            value = value.count
        key = series_key(ts)
        if key not in latest or end >= latest[key][0]:
            latest[key] = (end, value)
    return {key: value for key, (_, value) in latest.items()}
