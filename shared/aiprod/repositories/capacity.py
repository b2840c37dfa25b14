"""Capacity set at run time: ``capacity_limits/{backend}``, one document per backend that an
operator changed (``aiprod capacity set``); a backend without one runs at the catalog's
default."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from aiprod.ports import DocumentStore, Transaction

COLLECTION = "capacity_limits"


@dataclass(frozen=True)
class CapacityOverride:
    backend: str
    concurrent: int
    creates_per_minute: int | None
    updated_at: str


def load(reader: Transaction | DocumentStore, backend: str) -> CapacityOverride | None:
    doc = reader.get(COLLECTION, backend)
    if doc is None:
        return None
    return CapacityOverride(
        backend=backend,
        concurrent=int(doc["concurrent"]),
        creates_per_minute=doc.get("creates_per_minute"),
        updated_at=str(doc.get("updated_at", "")),
    )


def save(tx: Transaction, override: CapacityOverride) -> None:
    tx.set(COLLECTION, override.backend, asdict(override))
