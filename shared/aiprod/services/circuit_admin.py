"""``aiprod circuits``: every circuit breaker (each backend's and the output store's), and
an operator's override, made in one transaction with its audit record and logged.

Opening holds the circuit open for ``hold_s`` (a render already running that succeeds does
not close it; then one probe decides, as after a trip); closing forgets the failures, trips
and the hold, as a successful probe would.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict

from aiprod.domain.catalog import Catalog
from aiprod.domain.health import OUTPUT_STORE, Circuit
from aiprod.domain.observed_quality import ObservedBook
from aiprod.exceptions import OperatorInputError
from aiprod.ports import DocumentStore, Transaction
from aiprod.repositories import circuits as circuit_records
from aiprod.repositories import operator_audit

log = logging.getLogger(__name__)
ACTIONS = ("open", "close")


def names(catalog: Catalog) -> list[str]:
    """The circuits there are: one per backend, and the output store's."""
    return [*catalog.fallback_order, OUTPUT_STORE]


def show(store: DocumentStore, catalog: Catalog) -> list[Circuit]:
    found = circuit_records.load_many(store, names(catalog))
    return [found[name] for name in names(catalog)]


def observed(store: DocumentStore, catalog: Catalog) -> ObservedBook:
    """What each backend's models' checked outputs measured (selection blends it)."""
    return circuit_records.load_with_quality(store, [], catalog.fallback_order)[1]


def override(
    store: DocumentStore,
    catalog: Catalog,
    name: str,
    action: str,
    who: dict[str, str],
    now: float,
    hold_s: float,
) -> dict:
    """Open or close ``name``'s circuit; returns the audit record (also stored and logged)."""
    if name not in names(catalog):
        raise OperatorInputError(f"no circuit {name!r}: one of {', '.join(names(catalog))}")
    if action not in ACTIONS or hold_s <= 0:
        raise OperatorInputError(f"cannot {action} a circuit for {hold_s} s")
    audit_id = f"circuit-{int(now)}-{uuid.uuid4().hex[:8]}"  # fixed before a re-run body

    def body(tx: Transaction) -> dict:
        before = circuit_records.load(tx, name)
        after = before.forced_open(now, hold_s) if action == "open" else before.forced_closed()
        circuit_records.save(tx, after)
        record = {
            "at": now,
            "action": f"circuit.{action}",
            "target": name,
            **who,
            "before": _plain(before),
            "after": _plain(after),
        }
        operator_audit.save(tx, audit_id, record)
        return {**record, "audit_id": audit_id}

    record = store.run_transaction(body)
    log.warning(
        "operator override: circuit %s %s by %s (%s -> %s, audit %s)",
        name,
        action,
        who.get("operator"),
        record["before"]["state"],
        record["after"]["state"],
        audit_id,
        extra={"backend": name, "event": f"circuit.{action}", "operator": who.get("operator")},
    )
    return record


def _plain(circuit: Circuit) -> dict:
    return {**asdict(circuit), "state": circuit.state.value}
