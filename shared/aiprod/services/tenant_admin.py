"""Operator commands on the tenant registry (``aiprod tenant add|list|show|set-budget``).

A tenant's daily budget is the ledger's run-time limit for ``tenant:<name>``: ``add`` writes
the registry entry and that limit in one transaction, and ``set-budget`` changes the limit as
``aiprod budget set`` does (today's allotments resized at once). The topic, its push
subscription and the publisher IAM are made by Terraform in a project, and by the local stacks
(``aiprod_tools``) on the emulators or in process.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiprod import topology
from aiprod.config import Settings
from aiprod.domain.tenants import Tenant, member_problem, name_problem
from aiprod.exceptions import OperatorInputError
from aiprod.ports import DocumentStore, Transaction
from aiprod.repositories import ledger as books
from aiprod.repositories import tenants
from aiprod.services.budget_admin import change_limit
from aiprod.services.ledger import set_limit

MAX_TENANTS = 10_000


@dataclass(frozen=True)
class TenantView:
    """A tenant as an operator sees it: the registry entry and its daily budget."""

    tenant: Tenant
    budget_micros: int
    budget_source: str  # runtime (set by tenant add / set-budget) or config (environment)
    topic: str
    subscription: str

    def to_json(self) -> dict:
        return {
            "name": self.tenant.name,
            "publishers": list(self.tenant.publishers),
            "daily_budget_micros": self.budget_micros,
            "budget_source": self.budget_source,
            "topic": self.topic,
            "subscription": self.subscription,
        }


def check(name: str, publishers: list[str]) -> None:
    problems = [name_problem(name), *(member_problem(m) for m in publishers)]
    for problem in problems:
        if problem is not None:
            raise OperatorInputError(problem)


def add(
    store: DocumentStore,
    settings: Settings,
    tenant: Tenant,
    limit_micros: int,
    day: str,
) -> None:
    """Configure a new tenant with its daily budget; refuses a name already configured."""
    check(tenant.name, list(tenant.publishers))

    def register(tx: Transaction) -> None:
        if tenants.load(tx, tenant.name) is not None:
            raise OperatorInputError(f"tenant {tenant.name!r} is configured already")
        tenants.save(tx, tenant)

    set_limit(store, settings, tenant.scope, day, limit_micros, also=register)


def set_budget(store: DocumentStore, settings: Settings, name: str, limit: int, day: str):
    """A configured tenant's new daily budget, effective now (``budget_admin.change_limit``)."""
    found = tenants.load(store, name)
    if found is None:
        raise OperatorInputError(f"no tenant {name!r} (aiprod tenant add)")
    return change_limit(store, settings, found.scope, day, limit)


def view(store: DocumentStore, settings: Settings, tenant: Tenant) -> TenantView:
    limit = books.runtime_limit(store, tenant.scope)
    return _view(settings, tenant, limit)


def list_views(store: DocumentStore, settings: Settings) -> list[TenantView]:
    limits = books.runtime_limits(store, MAX_TENANTS)
    return [_view(settings, t, limits.get(t.scope)) for t in tenants.list_all(store, MAX_TENANTS)]


def show(store: DocumentStore, settings: Settings, name: str) -> TenantView:
    found = tenants.load(store, name)
    if found is None:
        raise OperatorInputError(f"no tenant {name!r} (aiprod tenant list)")
    return view(store, settings, found)


def _view(settings: Settings, tenant: Tenant, runtime: int | None) -> TenantView:
    budget = settings.limit_for(tenant.scope) if runtime is None else runtime
    return TenantView(
        tenant,
        budget,
        "config" if runtime is None else "runtime",
        topology.qualified(settings.prefix, topology.tenant_topic(tenant.name)),
        topology.qualified(settings.prefix, topology.tenant_subscription(tenant.name)),
    )
