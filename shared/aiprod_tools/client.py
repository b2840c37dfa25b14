"""What a client does to publish a job: pick the topic its tenant publishes on.

A job for a tenant goes on that tenant's own topic (``jobs--<tenant>``, where only its
publishers may publish); an untenanted job goes on the shared topic. The router takes the
tenant from the topic, so a body's ``tenant`` only has to agree with it (or be left out).
"""

from __future__ import annotations

import json

from aiprod import topology
from aiprod.ports import Bus


def topic_for(body: bytes | str) -> str:
    """The jobs topic for a request body: its ``tenant``'s topic when it names a valid one,
    else the shared topic (where the router refuses a body that names a tenant)."""
    try:
        tenant = json.loads(body).get("tenant")
    except (ValueError, AttributeError, UnicodeDecodeError, RecursionError):
        return topology.JOBS
    topic = topology.tenant_topic(tenant) if isinstance(tenant, str) else topology.JOBS
    return topic if topology.is_topic(topic) else topology.JOBS


def publish_job(bus: Bus, body: bytes | str) -> tuple[str, str]:
    """Publish one request on its topic; returns (topic, message id)."""
    data = body.encode() if isinstance(body, str) else body
    topic = topic_for(data)
    return topic, bus.publish(topic, data)
