"""Wire once: the only place that builds the services and their adapters. Nothing connects
at import time.

``App`` takes any adapters you pass (tests, the embedded run) and builds the rest on first
use, chosen from the tables in ``adapter_tables``; ``cloud_app()`` is the process-wide
instance the deployed functions use. Which service method serves each function of the
topology is the table in ``handlers``.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Callable, Mapping
from functools import cache

from aiprod import logs, topology
from aiprod.adapter_tables import make_backend, make_metric_sink, make_spend_source
from aiprod.config import Settings
from aiprod.domain.catalog import Catalog, default_catalog
from aiprod.domain.health import OUTPUT_STORE
from aiprod.ports import Bus, DocumentStore, MetricSink, SpendSource, VideoBackend
from aiprod.services.books import Books
from aiprod.services.health import HealthBook
from aiprod.services.job_control import JobControl
from aiprod.services.ledger import Ledger
from aiprod.services.outbox import Outbox
from aiprod.services.outcome import OutcomeHandler
from aiprod.services.queue import RenderQueue
from aiprod.services.reconcile import Reconciler
from aiprod.services.render import Renderer
from aiprod.services.router import Router
from aiprod.services.slots import SlotBook
from aiprod.services.spend_audit import SpendAudit
from aiprod.services.telemetry import Telemetry


class built_once:  # lower case: used as a decorator, like functools.cached_property
    """``cached_property`` that builds once even when threads race for it.

    functions-framework serves each push on its own thread, and Python 3.12's
    ``cached_property`` no longer locks, so a process's first concurrent messages would
    otherwise each build their own clients (and their own metric series).
    """

    def __init__(self, factory):
        self._factory = factory
        self._name = factory.__name__
        self.__doc__ = factory.__doc__

    def __set_name__(self, owner, name: str) -> None:
        self._name = name

    def __get__(self, app, owner=None):
        if app is None:
            return self
        if self._name not in app.__dict__:
            with app._building:
                if self._name not in app.__dict__:
                    app.__dict__[self._name] = self._factory(app)
        return app.__dict__[self._name]


class App:
    """The services of one process, built lazily so each function pays only for its own."""

    def __init__(
        self,
        settings: Settings,
        store: DocumentStore | None = None,
        bus: Bus | None = None,
        catalog: Catalog | None = None,
        backends: Mapping[str, VideoBackend] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        metrics: MetricSink | None = None,
    ):
        self.settings = settings
        self._metrics = metrics
        self.catalog = catalog or default_catalog()
        self.clock, self.sleep = clock, sleep
        self._store, self._bus = store, bus
        self._backends: dict[str, VideoBackend] = dict(backends or {})
        self._renderers: dict[str, Renderer] = {}
        self._building = threading.RLock()

    @built_once
    def store(self) -> DocumentStore:
        if self._store is None:
            from aiprod.adapters.firestore_store import FirestoreStore

            self._store = FirestoreStore(project=self.settings.project)
        return self._store

    @built_once
    def bus(self) -> Bus:
        if self._bus is None:
            from aiprod.adapters.pubsub_bus import PubSubBus

            settings = self.settings
            self._bus = PubSubBus(settings.project, settings.prefix, lanes=settings.push_lanes)
        return self._bus

    @built_once
    def metrics(self) -> MetricSink:
        if self._metrics is None:
            self._metrics = make_metric_sink(self.settings, self.clock)
        return self._metrics

    @built_once
    def outbox(self) -> Outbox:
        return Outbox(self.bus, self.store)

    @built_once
    def telemetry(self) -> Telemetry:
        return Telemetry(self.metrics)

    @built_once
    def health(self) -> HealthBook:
        backends = [*self.catalog.fallback_order, OUTPUT_STORE]
        return HealthBook(self.store, backends, self.telemetry, self.clock)

    @built_once
    def ledger(self) -> Ledger:
        return Ledger(self.settings, telemetry=self.telemetry)

    @built_once
    def books(self) -> Books:
        return Books(
            self.store, self.outbox, self.settings, self.health, self.ledger, self.clock,
            self.telemetry, self.slots, self.queue,
        )  # fmt: skip

    @built_once
    def slots(self) -> SlotBook:
        return SlotBook(self.catalog)

    @built_once
    def queue(self) -> RenderQueue:
        return RenderQueue(
            self.store, self.outbox, self.slots, self.settings, self.clock,
            self.ledger, self.catalog.fallback_order,
            telemetry=self.telemetry, health=self.health,
        )  # fmt: skip

    @built_once
    def router(self) -> Router:
        return Router(self.books, self.catalog)

    @built_once
    def outcomes(self) -> OutcomeHandler:
        return OutcomeHandler(self.books)

    @built_once
    def job_control(self) -> JobControl:
        return JobControl(self.store, self.outbox, self.settings, self.clock, self.backend)

    @built_once
    def reconciler(self) -> Reconciler:
        return Reconciler(
            self.store,
            self.outbox,
            self.settings,
            self.backend,
            self.clock,
            telemetry=self.telemetry,
            health=self.health,
            ledger=self.ledger,
            queue=self.queue,
            backends=list(self.catalog.fallback_order),
            slots=self.slots,
            hourly=lambda now: self.spend_audit.hourly(now),
        )

    @built_once
    def spend_sources(self) -> dict[str, SpendSource]:
        """Each provider's view for the spend audit (built on the audit's first run)."""
        return {b: make_spend_source(b, self.settings, self.catalog) for b in topology.BACKENDS}

    @built_once
    def spend_audit(self) -> SpendAudit:
        sources = lambda: self.spend_sources  # noqa: E731 (built only when an audit reads them)
        return SpendAudit(
            self.store, self.settings, sources, self.catalog, self.ledger, self.clock,
            self.telemetry,
        )  # fmt: skip

    def renderer(self, backend: str) -> Renderer:
        if backend not in self._renderers:
            with self._building:
                if backend not in self._renderers:
                    self._renderers[backend] = self._build_renderer(backend)
        return self._renderers[backend]

    def backend(self, name: str) -> VideoBackend:
        if name not in self._backends:
            with self._building:
                if name not in self._backends:
                    made = make_backend(name, self.settings, self.catalog, self.clock)
                    self._backends[name] = made
        return self._backends[name]

    def _build_renderer(self, backend: str) -> Renderer:
        if backend not in topology.BACKENDS:
            raise KeyError(f"unknown backend {backend!r}")
        return Renderer(
            self.backend(backend),
            self.store,
            self.outbox,
            self.settings,
            self.clock,
            self.sleep,
            self.telemetry,
            self.ledger,
            self.slots,
        )


_cloud_app_lock = threading.Lock()


@cache
def _cloud_app_unlocked() -> App:
    """The process-wide app for deployed functions (built on first message, not on import).

    At exit (an instance being shut down) metrics still buffered are written, within bound.
    """
    settings = Settings.from_env()
    logs.configure(settings.project)
    app = App(settings)
    atexit.register(lambda: app.metrics.close())
    return app


def cloud_app() -> App:
    """The process-wide app for deployed functions (built on first message, not on import);
    concurrent first messages wait for the one being built."""
    with _cloud_app_lock:
        return _cloud_app_unlocked()


cloud_app.cache_clear = _cloud_app_unlocked.cache_clear  # type: ignore[attr-defined]
