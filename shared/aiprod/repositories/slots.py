"""Render slot shards: ``capacity_slots/{backend}#{i}``, how many renders each shard holds
(``domain.slots``). A missing shard holds none."""

from __future__ import annotations

from dataclasses import asdict

from aiprod.domain.slots import SHARDS, SlotShard, parse_slot_key, slot_key
from aiprod.ports import Document, DocumentStore, Transaction

COLLECTION = "capacity_slots"


def _shard(backend: str, index: int, doc: Document | None) -> SlotShard:
    if not doc:
        return SlotShard(backend, index)
    return SlotShard(
        backend,
        index,
        int(doc["in_use"]),
        {str(k): int(v) for k, v in (doc.get("tenants") or {}).items()},
        int(doc.get("minute", 0)),
        int(doc.get("created", 0)),
    )


def load(reader: Transaction | DocumentStore, backend: str, index: int) -> SlotShard:
    return _shard(backend, index, reader.get(COLLECTION, slot_key(backend, index)))


def load_key(reader: Transaction | DocumentStore, key: str) -> SlotShard:
    backend, index = parse_slot_key(key)
    return load(reader, backend, index)


def save(tx: Transaction, shard: SlotShard) -> None:
    tx.set(COLLECTION, shard.key, asdict(shard))


def load_all(
    reader: Transaction | DocumentStore, backend: str, indexes: range | list[int] = range(SHARDS)
) -> list[SlotShard]:
    """The backend's shards (every one by default), in one batched read."""
    keys = {i: slot_key(backend, i) for i in indexes}
    docs = reader.get_many(COLLECTION, list(keys.values()))
    return [_shard(backend, i, docs.get(key)) for i, key in keys.items()]


def in_use(store: DocumentStore, backend: str) -> int:
    """Slots held now across the backend's shards (a plain read)."""
    return sum(shard.in_use for shard in load_all(store, backend))
