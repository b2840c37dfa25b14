"""Circuits: ``backends/{name}``, one backend's circuit breaker. A backend with no document
is closed with no failures (the state every backend starts in).

Beside each backend's circuit, ``backends/{name}#quality`` holds what its models' checked
outputs measured (``domain.observed_quality``): a document of its own, so a quality update
never contends with a circuit change, and in the same collection, so the router reads both in
the one batched get it already makes (no extra read per job).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict

from aiprod.domain.health import Circuit, CircuitState
from aiprod.domain.observed_quality import Observed
from aiprod.ports import DocumentStore, Transaction

COLLECTION = "backends"
QUALITY_SUFFIX = "#quality"


def load(reader: Transaction | DocumentStore, backend: str) -> Circuit:
    return _decode(backend, reader.get(COLLECTION, backend))


def load_many(store: DocumentStore, backends: list[str]) -> dict[str, Circuit]:
    """Several circuits in one read (one batched get on Firestore)."""
    return load_with_quality(store, backends, ())[0]


def load_with_quality(
    store: DocumentStore, backends: list[str], rated: Iterable[str]
) -> tuple[dict[str, Circuit], dict[str, dict[str, Observed]]]:
    """Circuits of ``backends`` and the observed quality of ``rated`` backends' models, in
    one batched read."""
    rated = list(rated)
    docs = store.get_many(COLLECTION, [*backends, *(_quality_id(b) for b in rated)])
    circuits = {b: _decode(b, docs.get(b)) for b in backends}
    return circuits, {b: _decode_quality(docs.get(_quality_id(b))) for b in rated}


def load_quality(tx: Transaction, backend: str) -> dict[str, Observed]:
    return _decode_quality(tx.get(COLLECTION, _quality_id(backend)))


def save_quality(tx: Transaction, backend: str, models: dict[str, Observed]) -> None:
    doc = {"backend": backend, "models": {name: asdict(o) for name, o in models.items()}}
    tx.set(COLLECTION, _quality_id(backend), doc)


def _decode(backend: str, doc: dict | None) -> Circuit:
    if doc is None:
        return Circuit(backend=backend)
    return Circuit(**{**doc, "state": CircuitState(doc["state"])})


def _decode_quality(doc: dict | None) -> dict[str, Observed]:
    models = (doc or {}).get("models") or {}
    return {name: Observed(**record) for name, record in models.items()}


def _quality_id(backend: str) -> str:
    return backend + QUALITY_SUFFIX


def save(tx: Transaction, circuit: Circuit) -> None:
    tx.set(COLLECTION, circuit.backend, {**asdict(circuit), "state": circuit.state.value})
