"""Circuits: ``backends/{name}``, one backend's circuit breaker. A backend with no document
is closed with no failures (the state every backend starts in)."""

from __future__ import annotations

from dataclasses import asdict

from aiprod.domain.health import Circuit, CircuitState
from aiprod.ports import DocumentStore, Transaction

COLLECTION = "backends"


def load(reader: Transaction | DocumentStore, backend: str) -> Circuit:
    return _decode(backend, reader.get(COLLECTION, backend))


def load_many(store: DocumentStore, backends: list[str]) -> dict[str, Circuit]:
    """Several circuits in one read (one batched get on Firestore)."""
    docs = store.get_many(COLLECTION, backends)
    return {b: _decode(b, docs.get(b)) for b in backends}


def _decode(backend: str, doc: dict | None) -> Circuit:
    if doc is None:
        return Circuit(backend=backend)
    return Circuit(**{**doc, "state": CircuitState(doc["state"])})


def save(tx: Transaction, circuit: Circuit) -> None:
    tx.set(COLLECTION, circuit.backend, {**asdict(circuit), "state": circuit.state.value})
