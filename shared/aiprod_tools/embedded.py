"""The embedded runtime: real handlers on the in-process bus and store."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiprod import topology
from aiprod.adapters.embedded_bus import EmbeddedBus
from aiprod.adapters.embedded_store import EmbeddedStore
from aiprod.bootstrap import App
from aiprod.config import Settings
from aiprod.entrypoints import invocation
from aiprod.handlers import HANDLERS, SCHEDULED
from aiprod.ports import MetricSink


def embedded_app(
    settings: Settings,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    workers: int = 8,
    metrics: MetricSink | None = None,
) -> App:
    """An App whose bus delivers each topic to its function's handler, in this process."""
    bus = EmbeddedBus(workers=workers)
    store = EmbeddedStore()
    app = App(settings, store=store, bus=bus, clock=clock, sleep=sleep, metrics=metrics)
    for spec in topology.pubsub_functions():
        bus.subscribe(spec.topic, flushing(app, HANDLERS[spec.name](app)))
    return app


def run_schedules(app: App) -> dict[str, object]:
    """What Cloud Scheduler does each tick: call every scheduled function once (the
    reconciler's sweep), returning each one's result by function name."""
    return {spec.name: SCHEDULED[spec.name](app)() for spec in topology.scheduled_functions()}


def flushing(app: App, handler: Callable[[bytes, dict[str, str]], None]):
    """A handler framed like a deployed invocation: its metrics flushed when it ends."""

    def invoke(data: bytes, attributes: dict[str, str]) -> None:
        with invocation(app):
            handler(data, attributes)

    return invoke
