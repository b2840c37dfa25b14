"""Cloud Monitoring writer: the only module that imports google-cloud-monitoring.

Points are buffered per instance in a ``SeriesBook`` (metric_series.py: one generic_task per
instance, CUMULATIVE running totals, one point per series per 5 s, batches of 200), and
``flush()`` — at the end of each invocation — writes what is due, bounded by ``bound_s``:
every call gets the remaining time as its deadline and no retry. A failed write is logged
and dropped; its series wait for a later flush, which writes a new point with the current
totals (nothing is re-sent past the bound, and no count is lost).

The library is imported, and the client created (it needs credentials), on the first flush
that has something to write, so neither costs a cold start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from aiprod.adapters.metric_series import SeriesBook, TaskResource
from aiprod.domain.metric_set import Metric
from aiprod.ports import MetricSink

__all__ = ["CloudMonitoringSink", "TaskResource"]
log = logging.getLogger(__name__)
CLIENT_RETRY_AFTER_S = 300.0
CALL_SHARE = 0.9  # of the bound, for the calls; the rest covers building and bookkeeping


class CloudMonitoringSink(MetricSink):
    def __init__(
        self,
        resource: TaskResource,
        client=None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        bound_s: float = 2.0,
        min_interval_s: float = 5.0,
    ):
        super().__init__()
        self.resource, self._client = resource, client
        self._clock, self._monotonic, self.bound_s = clock, monotonic, bound_s
        # Counters count from here; a millisecond back so no CUMULATIVE interval is empty.
        self.book = SeriesBook(resource, clock() - 0.001, min_interval_s)
        self._sending = threading.Lock()  # one flush at a time keeps each series in order
        self._client_retry_at = 0.0
        self.last_flush_s = 0.0

    def _record(self, metric: Metric, labels: dict[str, str], value: float) -> None:
        self.book.record(metric, labels, value)

    def _flush(self) -> None:
        if not self._sending.acquire(blocking=False):
            return  # another invocation is flushing; what is due now goes with the next one
        started = self._monotonic()
        try:
            batches = self.book.take_due(self._clock())
            if batches:
                self._send(batches, started + self.bound_s * CALL_SHARE)
        finally:
            self._sending.release()
            self.last_flush_s = self._monotonic() - started

    def close(self) -> None:
        """At instance shutdown: wait (at most one window) for coalesced series, then flush."""
        wait = self.book.seconds_until_due(self._clock())
        if 0 < wait <= self.book.min_interval_s:
            time.sleep(wait)
        super().close()

    def _send(self, batches: list[list], deadline: float) -> None:
        client = self._client_or_none()
        for batch in batches:
            remaining = deadline - self._monotonic()
            error = "no client" if client is None else None
            if remaining <= 0:
                error = "flush bound reached"
            if error is None:
                try:
                    client.create_time_series(
                        request={
                            "name": f"projects/{self.resource.project}",
                            "time_series": [point for _, point in batch],
                        },
                        timeout=remaining,
                        retry=None,
                    )
                    continue
                except Exception as exc:
                    error = f"{type(exc).__name__}: {str(exc)[:200]}"
            self.book.requeue([series for series, _ in batch])
            log.warning("metric write of %d series dropped (%s)", len(batch), error)

    def _client_or_none(self):
        if self._client is None and self._monotonic() >= self._client_retry_at:
            try:
                from google.cloud import monitoring_v3

                self._client = monitoring_v3.MetricServiceClient()
            except Exception as exc:
                self._client_retry_at = self._monotonic() + CLIENT_RETRY_AFTER_S
                log.warning("no Cloud Monitoring client, metrics dropped: %s", exc)
        return self._client
