"""Circuits: ``backends/{name}``, one backend's circuit breaker. A backend with no document
is closed with no failures (the state every backend starts in)."""

from __future__ import annotations

from dataclasses import asdict

from aiprod.domain.health import Circuit, CircuitState
from aiprod.ports import DocumentStore, Transaction

COLLECTION = "backends"


def load(reader: Transaction | DocumentStore, backend: str) -> Circuit:
    doc = reader.get(COLLECTION, backend)
    if doc is None:
        return Circuit(backend=backend)
    return Circuit(**{**doc, "state": CircuitState(doc["state"])})


def save(tx: Transaction, circuit: Circuit) -> None:
    tx.set(COLLECTION, circuit.backend, {**asdict(circuit), "state": circuit.state.value})
