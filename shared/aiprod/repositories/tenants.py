"""The tenant registry: ``tenants/{name}``, one configured tenant (``domain.tenants``).

Written by ``aiprod tenant add`` (or Terraform's ``google_firestore_document``), read by the
router for every message on a tenant's topic. A document that cannot be decoded counts as no
tenant: the router then refuses the message, so a broken entry never opens a budget scope.
"""

from __future__ import annotations

from aiprod.domain.tenants import Tenant, name_problem
from aiprod.ports import DocumentStore, Transaction

COLLECTION = "tenants"
Reader = Transaction | DocumentStore


def load(reader: Reader, name: str) -> Tenant | None:
    return _decode(reader.get(COLLECTION, name))


def list_all(store: DocumentStore, limit: int = 1000) -> list[Tenant]:
    found = (_decode(doc) for doc in store.list(COLLECTION, limit=limit))
    return sorted((t for t in found if t is not None), key=lambda t: t.name)


def save(tx: Transaction, tenant: Tenant) -> None:
    tx.set(
        COLLECTION,
        tenant.name,
        {
            "name": tenant.name,
            "publishers": list(tenant.publishers),
            "created_at": tenant.created_at,
        },
    )


def _decode(doc: dict | None) -> Tenant | None:
    if not isinstance(doc, dict):
        return None
    name, publishers = doc.get("name"), doc.get("publishers") or []
    if not isinstance(name, str) or name_problem(name) is not None:
        return None
    if not isinstance(publishers, list):
        return None
    created = doc.get("created_at", 0.0)
    return Tenant(
        name,
        tuple(str(p) for p in publishers),
        float(created) if isinstance(created, int | float) else 0.0,
    )
