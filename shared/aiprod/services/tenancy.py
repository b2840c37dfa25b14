"""Which tenant a job message is charged to, or a control message speaks for: read from the
push subscription it came through (``topology.tenant_subscription``,
``topology.tenant_control_subscription``), checked against the message and the registry.

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


def channel_of(subscription: str | None, prefix: str, shared: str = topology.JOBS) -> Channel:
    """The channel a push came through: ``shared`` (the jobs topic, or the job-control topic
    for control_job) or one of its tenant topics. No subscription (an in-process call, or a
    direct HTTP request) is the shared topic: the channel that trusts the message least for
    jobs, and, for control messages, the operators' (a push always names its subscription)."""
    if not subscription:
        return SHARED
    name = subscription.rsplit("/", 1)[-1]
    suffix = f"--{topology.function_for_topic(shared).name}"
    topic = name.removeprefix(prefix).removesuffix(suffix)
    if not name.startswith(prefix) or not name.endswith(suffix):
        return Channel(known=False, name=name)
    if topology.base_topic(topic) == shared:  # the shared topic, or one of its lanes
        return SHARED
    tenant = topology.tenant_of_topic(topic, shared)
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

    def vetted(self, channel: Channel) -> Channel:
        """The channel, or an unknown one when it names a tenant that is not configured."""
        if channel.tenant is None or self.configured(channel) is not None:
            return channel
        return Channel(known=False, name=channel.name)

    def tenant_for(self, channel: Channel, named: str | None) -> str | None:
        """The job's tenant, or ``TenantRefused`` saying why the message cannot have one."""
        tenant = tenant_of(channel, named)
        if tenant is not None and self.configured(channel) is None:
            raise TenantRefused(unknown_tenant(tenant))
        return tenant
