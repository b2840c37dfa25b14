"""Which tenant a job message is charged to: read from the push subscription it came
through (``topology.tenant_subscription``), checked against the message and the registry.

The subscription is named by Pub/Sub in the push body (functions-framework drops it from the
CloudEvent; ``entrypoints.subscription`` reads it back), so only our own configuration, never a
publisher, decides it. A tenant that is not configured is refused before any budget is read:
no ``tenant:<x>`` ledger scope, budget gauge or job event label is ever made for it.
"""

from __future__ import annotations

from aiprod import topology
from aiprod.domain.tenants import SHARED, Channel, TenantRefused, tenant_of, unknown_tenant
from aiprod.ports import DocumentStore
from aiprod.repositories import tenants

SUFFIX = f"--{topology.ROUTER}"


def channel_of(subscription: str | None, prefix: str) -> Channel:
    """The channel a push came through. No subscription (an in-process call, or a direct HTTP
    request) is the shared topic: the channel that trusts the message least."""
    if not subscription:
        return SHARED
    name = subscription.rsplit("/", 1)[-1]
    topic = name.removeprefix(prefix).removesuffix(SUFFIX)
    if not name.startswith(prefix) or not name.endswith(SUFFIX):
        return Channel(known=False, name=name)
    if topology.base_topic(topic) == topology.JOBS:  # the shared topic, or one of its lanes
        return SHARED
    tenant = topology.tenant_of_topic(topic)
    return Channel(known=False, name=name) if tenant is None else Channel(tenant, name=name)


class Tenancy:
    """The registry as the router asks it. Store errors propagate (the push is retried, and
    then dead-lettered): a tenant's jobs are never admitted, nor refused, on a failed read."""

    def __init__(self, store: DocumentStore):
        self._store = store

    def configured(self, channel: Channel) -> str | None:
        """The channel's tenant when it is configured; None otherwise (an unknown tenant is
        never named on a stored job, an event or a metric)."""
        if channel.tenant is None or tenants.load(self._store, channel.tenant) is None:
            return None
        return channel.tenant

    def tenant_for(self, channel: Channel, named: str | None) -> str | None:
        """The job's tenant, or ``TenantRefused`` saying why the message cannot have one."""
        tenant = tenant_of(channel, named)
        if tenant is not None and self.configured(channel) is None:
            raise TenantRefused(unknown_tenant(tenant))
        return tenant
