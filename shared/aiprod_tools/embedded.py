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


def serve_tenant(app: App, tenant: str) -> None:
    """A tenant's jobs and control topics on the embedded bus, pushed to route_job and
    control_job with the subscription names Pub/Sub would give
    (``topology.tenant_subscription``, ``topology.tenant_control_subscription``), as the
    emulator stack and Terraform wire them. The tenant must also be in the registry to be
    charged, or to cancel its jobs."""

    def path(subscription: str) -> str:
        name = topology.qualified(app.settings.prefix, subscription)
        return f"projects/{app.settings.project}/subscriptions/{name}"

    jobs = path(topology.tenant_subscription(tenant))
    control = path(topology.tenant_control_subscription(tenant))

    def route(data: bytes, attributes: dict[str, str]) -> None:
        app.router.handle(data, attributes, jobs)

    def steer(data: bytes, attributes: dict[str, str]) -> None:
        app.job_control.handle(data, attributes, control)

    app.bus.subscribe(topology.tenant_topic(tenant), flushing(app, route))
    app.bus.subscribe(topology.tenant_control_topic(tenant), flushing(app, steer))


def add_tenant(app: App, tenant: str, limit_micros: int) -> None:
    """Configure a tenant in process: registry entry, daily budget and its served topic
    (what ``aiprod tenant add`` and Terraform do for a project)."""
    from aiprod.domain.budget import budget_day
    from aiprod.domain.tenants import Tenant
    from aiprod.services import tenant_admin

    day = budget_day(app.clock(), app.settings.timezone)
    entry = Tenant(tenant, (), app.clock())
    tenant_admin.add(app.store, app.settings, entry, limit_micros, day)
    serve_tenant(app, tenant)


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
