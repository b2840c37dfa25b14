"""Configured tenants on an emulator stack, and publishing as their clients do."""

from __future__ import annotations

import json

from aiprod.domain.tenants import Tenant
from aiprod.repositories import tenants
from aiprod_tools.client import publish_job


def configure(stack, *names: str) -> None:
    """Each tenant in the registry (no run-time limit: the stack's settings apply) with its
    topic and push subscription to route_job, as ``aiprod tenant add`` and Terraform make."""
    for name in names:
        stack.store.run_transaction(lambda tx, name=name: tenants.save(tx, Tenant(name)))
    stack.provision_tenants(*names)


def publish(stack, request: dict) -> str:
    """Publish a request on the topic its client would: its tenant's, or the shared one."""
    return publish_job(stack.bus, json.dumps(request))[1]
