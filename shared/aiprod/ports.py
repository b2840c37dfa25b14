"""The ports: small abstract classes the services depend on; adapters implement them.

Only adapter modules import vendor libraries. Each port has a fake or embedded twin that
passes the same contract suite (tests/contract).
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.messages import ErrorClass, RenderTask
from aiprod.domain.metric_set import Metric
from aiprod.domain.qa_report import QaReport
from aiprod.domain.spend_audit import ProviderDay

T = TypeVar("T")
Document = dict[str, Any]
# A top-level field, in epoch seconds, after which the store may delete the document
# (domain.retention). Firestore keeps it as a Timestamp, which its TTL policies require;
# every store reads it back as epoch seconds (to the microsecond). Never queried on.
EXPIRE_AT = "expire_at"


class Transaction(ABC):
    """A consistent unit of reads and writes. Reads see the transaction's own writes; the
    writes commit together only if no document the body wrote changed since the body read
    it (or was created meanwhile). The body may run more than once, so it must not publish
    or call a provider. Decide only on documents the body also writes: other reads are
    advisory (they may be a moment old, and are not guarded at commit)."""

    @abstractmethod
    def get(self, collection: str, doc_id: str) -> Document | None: ...

    @abstractmethod
    def set(self, collection: str, doc_id: str, data: Document) -> None: ...

    def get_many(self, collection: str, doc_ids: list[str]) -> dict[str, Document]:
        """Several documents of one collection (one round trip where the store allows);
        absent ones are left out. Reads see the transaction's own writes, as ``get``."""
        found = {doc_id: self.get(collection, doc_id) for doc_id in doc_ids}
        return {doc_id: doc for doc_id, doc in found.items() if doc is not None}


QueryOp = Literal["<", "<=", "==", ">", ">=", "array_contains"]


class DocumentStore(ABC):
    """Documents by collection and id, with optimistic transactions (see ``Transaction``)."""

    @abstractmethod
    def run_transaction(self, body: Callable[[Transaction], T]) -> T: ...

    @abstractmethod
    def get(self, collection: str, doc_id: str) -> Document | None: ...

    @abstractmethod
    def set(self, collection: str, doc_id: str, data: Document) -> None: ...

    @abstractmethod
    def list(self, collection: str, limit: int = 1000) -> list[Document]: ...

    @abstractmethod
    def get_many(self, collection: str, doc_ids: list[str]) -> dict[str, Document]:
        """The documents that exist among ``doc_ids``, by id (one round trip, no locks)."""

    @abstractmethod
    def query(
        self, collection: str, field: str, op: QueryOp, value: object, limit: int = 500
    ) -> list[Document]:
        """Documents whose top-level ``field`` compares to ``value`` (None never matches)."""


@dataclass(frozen=True)
class ReceivedMessage:
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str = ""
    delivery_attempt: int | None = None


class Bus(ABC):
    """Topics by their unprefixed name (``jobs``); the adapter applies the prefix."""

    @abstractmethod
    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        """Publish and wait for the server's message id (bounded); raise on failure."""

    @abstractmethod
    def pull(self, subscription: str, max_messages: int = 100) -> list[ReceivedMessage]:
        """Take and acknowledge what a pull subscription holds now."""


@dataclass(frozen=True)
class ProviderResult:
    """One look at a provider task: still running, or finished with its output or error."""

    done: bool
    output_uri: str | None = None
    cost_micros: int = 0
    error_class: ErrorClass | None = None
    error_code: ErrorCode | None = None
    message: str = ""
    retry_after_s: float | None = None  # the provider asked us to wait this long (429)
    queued: bool = False  # not done: waiting in the provider's own queue, not rendering yet
    qa: QaReport | None = None  # the kept output's checks (domain/output_qa)

    @property
    def settles_cost(self) -> bool:
        """The answer says what the task cost for good: finished (not UNKNOWN), or rendered
        with its output not kept yet. A late task is charged on the first such answer."""
        return (self.done and self.error_class is not ErrorClass.UNKNOWN) or self.unkept

    @property
    def unkept(self) -> bool:
        """Rendered, its cost known, but the output could not be kept this time: not done,
        yet the cost must be written on the attempt (``error_code`` says what failed)."""
        return not self.done and self.error_class is not None


class VideoBackend(ABC):
    """One provider. Errors are raised as ``ProviderError`` with their taxonomy class and an
    ``ErrorCode`` (live adapters: ``adapters/provider_base.LiveBackend``)."""

    name: str

    @abstractmethod
    def submit(self, task: RenderTask, before_send: Callable[[], None] | None = None) -> str:
        """Start a render and return the provider's task id (never retried blindly).

        ``before_send`` runs once the request is ready, just before anything can reach the
        provider: the render function writes its submit intent there, and if it raises,
        nothing is sent."""

    @abstractmethod
    def poll(self, provider_task_id: str, task: RenderTask) -> ProviderResult:
        """Look at a submitted task once."""

    can_find: bool = False  # the provider lets us look up a task a lost create made

    def find(self, task: RenderTask, sent_at: float) -> str | None:
        """The id of a task this attempt's create (sent at ``sent_at``) made although its
        answer was lost, where the provider lets us look (None: not found, or no way to
        look; the attempt is then charged its worst case)."""
        return None

    can_cancel: bool = False  # the provider has a call that stops a running task

    def cancel(self, provider_task_id: str, task: RenderTask) -> bool:
        """Ask the provider to stop a task, so a job cancelled by its owner stops costing.
        True: the provider took the request, and later polls say how the task ended and
        what it cost (stopped: done, FALLBACK ``cancelled``, with the cost reported; finished
        first: its real result). False: it cannot cancel; the task runs to its end and is
        charged as it finishes, so keep polling it. Safe to repeat, harmless on a task that
        ended. A failed call raises ``ProviderError``, classified like a poll's answers."""
        return False

    def poll_cost(self, provider_task_id: str, task: RenderTask) -> ProviderResult:
        """A look for what a task cost, its output unused (a late task): nothing is kept."""
        return self.poll(provider_task_id, task)


class SpendSource(ABC):
    """What one provider says ran (the spend audit): its renders of a day, and the day's
    total where it reports one. Read-only; raises on a failed look (the audit reports it)."""

    provider: str

    @abstractmethod
    def day(self, day: str, start: float, end: float, stored: list[str]) -> ProviderDay:
        """The provider's view of ``[start, end)`` (the budget day ``day``), and of the task
        ids in ``stored`` (ours, whose attempts recorded nothing) where it can look them up."""


MAX_LABEL_VALUE = 128  # Cloud Monitoring allows 1024; ours are enums, backends and scopes
_metric_log = logging.getLogger("aiprod.metrics")


class MetricSink(ABC):
    """Where metric points go: counters add, gauges set, distributions observe; ``flush()``
    sends what is buffered. Metrics must never fail or slow a job, so no method raises: a
    point for a metric used the wrong way (undeclared labels, a counter set like a gauge)
    is logged, noted in ``misused`` and dropped; a failed flush is logged and dropped."""

    def __init__(self) -> None:
        self.misused: list[str] = []

    def count(self, metric: Metric, labels: Mapping[str, object] | None = None, by=1) -> None:
        self._checked("counter", metric, labels, by)

    def gauge(self, metric: Metric, value: float, labels: Mapping[str, object] | None = None):
        self._checked("gauge", metric, labels, value)

    def observe(self, metric: Metric, value: float, labels: Mapping[str, object] | None = None):
        self._checked("distribution", metric, labels, value)

    def flush(self) -> None:
        try:
            self._flush()
        except Exception as exc:
            _metric_log.warning("metric flush failed, points dropped: %s", type(exc).__name__)

    def close(self) -> None:
        """At shutdown: write what is still buffered (adapters may wait, within bound)."""
        self.flush()

    def _checked(self, instrument: str, metric: Metric, labels, value) -> None:
        labels = {k: str(v)[:MAX_LABEL_VALUE] for k, v in (labels or {}).items()}
        problem = None
        if metric.instrument != instrument:
            problem = f"{metric.name} is a {metric.instrument}, not a {instrument}"
        elif set(labels) != set(metric.label_keys):
            problem = f"{metric.name} takes labels {metric.label_keys}, got {tuple(labels)}"
        elif not _is_number(value):
            problem = f"{metric.name} got a non-number {value!r}"
        if problem is not None:
            self.misused.append(problem)
            _metric_log.error("metric point dropped: %s", problem)
            return
        try:
            self._record(metric, labels, value)
        except Exception as exc:
            _metric_log.warning("metric point dropped: %s", type(exc).__name__)

    @abstractmethod
    def _record(self, metric: Metric, labels: dict[str, str], value: float) -> None:
        """Buffer one checked point (thread-safe: handlers run concurrently)."""

    @abstractmethod
    def _flush(self) -> None:
        """Send what is buffered, within the adapter's bound."""


class NullSink(MetricSink):
    """Checks points (misuse still shows in ``misused``) and keeps none."""

    def _record(self, metric: Metric, labels: dict[str, str], value: float) -> None:
        pass

    def _flush(self) -> None:
        pass


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
