"""Several simulated instances per function, in one process, the way Cloud Run scales them.

Each function of the topology is served by ``per_function`` Apps (one App = one instance:
its own services, provider adapters and metric sink), sharing one embedded store and bus.
Deliveries go round-robin to a function's instances, each framed as a deployed invocation
(metrics flushed at its end), so metric writers see what they would in production: many
instances of one function writing the same metrics at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from aiprod import topology
from aiprod.adapters.embedded_bus import EmbeddedBus
from aiprod.adapters.embedded_store import EmbeddedStore
from aiprod.bootstrap import App
from aiprod.config import Settings
from aiprod.entrypoints import invocation
from aiprod.handlers import HANDLERS
from aiprod.ports import MetricSink


class Instances:
    def __init__(
        self,
        settings: Settings,
        clock,
        make_sink: Callable[[str, int], MetricSink],
        per_function: int = 3,
    ):
        self.bus, self.store = EmbeddedBus(workers=8), EmbeddedStore()
        self.apps: dict[str, list[App]] = {}
        for spec in topology.pubsub_functions():
            self.apps[spec.name] = [
                App(
                    settings,
                    store=self.store,
                    bus=self.bus,
                    clock=clock,
                    sleep=clock.sleep,
                    metrics=make_sink(spec.name, i),
                )
                for i in range(per_function)
            ]
            self.bus.subscribe(spec.topic, self._round_robin(spec.name))

    def sinks(self) -> list[MetricSink]:
        return [app.metrics for apps in self.apps.values() for app in apps]

    def _round_robin(self, function: str):
        turn = itertools.count()
        apps = self.apps[function]

        def deliver(data: bytes, attributes: dict[str, str]) -> None:
            app = apps[next(turn) % len(apps)]
            with invocation(app):
                HANDLERS[function](app)(data, attributes)

        return deliver
