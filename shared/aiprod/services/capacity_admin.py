"""``aiprod capacity show`` / ``aiprod capacity set``: each backend's capacity, its catalog
default, the operator's run-time setting, and the ceiling the deployed render function is
sized for (``topology``: max instances x concurrency).

Setting a capacity writes one document (``repositories.capacity``) and takes effect without
a deploy. Above the catalog's ``max_concurrent`` it is refused: the deployed platform would
become the bottleneck (Cloud Run answering 429 to Pub/Sub pushes), so raise the catalog's
ceiling and deploy instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiprod import topology
from aiprod.domain.catalog import Capacity, Catalog
from aiprod.exceptions import OperatorInputError
from aiprod.ports import DocumentStore
from aiprod.repositories import capacity as records


@dataclass(frozen=True)
class CapacityRow:
    backend: str
    concurrent: int  # in effect
    creates_per_minute: int | None
    default: Capacity
    source: str  # "catalog" or "set <when>"
    platform: int  # deployed max instances x concurrency of the backend's render function


def show(store: DocumentStore, catalog: Catalog) -> list[CapacityRow]:
    return [_row(store, catalog, backend) for backend in catalog.fallback_order]


def set_capacity(
    store: DocumentStore,
    catalog: Catalog,
    backend: str,
    concurrent: int,
    creates_per_minute: int | None = None,
) -> CapacityRow:
    if backend not in catalog.backends:
        known = ", ".join(catalog.fallback_order)
        raise OperatorInputError(f"unknown backend {backend!r} (one of: {known})")
    default = catalog.backends[backend].capacity
    if concurrent < 1:
        raise OperatorInputError("capacity must be at least 1 render at a time")
    if concurrent > default.max_concurrent:
        raise OperatorInputError(
            f"{backend}: {concurrent} is above the {default.max_concurrent} the deployed render "
            "function is sized for; raise max_concurrent in the catalog and deploy"
        )
    if creates_per_minute is not None and creates_per_minute < 1:
        raise OperatorInputError("creates per minute must be at least 1")
    per_minute = default.creates_per_minute if creates_per_minute is None else creates_per_minute
    now = datetime.now(UTC).isoformat(timespec="seconds")
    override = records.CapacityOverride(backend, concurrent, per_minute, now)
    store.run_transaction(lambda tx: records.save(tx, override))
    return _row(store, catalog, backend)


def _row(store: DocumentStore, catalog: Catalog, backend: str) -> CapacityRow:
    default = catalog.backends[backend].capacity
    override = records.load(store, backend)
    spec = topology.function(f"render_{backend}")
    platform = spec.max_instances * spec.concurrency
    if override is None:
        return CapacityRow(
            backend, default.concurrent, default.creates_per_minute, default, "catalog", platform
        )
    return CapacityRow(
        backend,
        override.concurrent,
        override.creates_per_minute,
        default,
        f"set {override.updated_at}",
        platform,
    )
