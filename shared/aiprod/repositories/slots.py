"""Render slot shards: ``capacity_slots/{backend}#{i}``, how many renders each shard holds
(``domain.slots``). A missing shard holds none."""

from __future__ import annotations

from dataclasses import asdict

from aiprod.domain.slots import SHARDS, SlotShard, parse_slot_key, slot_key
from aiprod.ports import DocumentStore, Transaction

COLLECTION = "capacity_slots"


def load(reader: Transaction | DocumentStore, backend: str, index: int) -> SlotShard:
    doc = reader.get(COLLECTION, slot_key(backend, index))
    return SlotShard(backend, index, int(doc["in_use"])) if doc else SlotShard(backend, index)


def load_key(reader: Transaction | DocumentStore, key: str) -> SlotShard:
    backend, index = parse_slot_key(key)
    return load(reader, backend, index)


def save(tx: Transaction, shard: SlotShard) -> None:
    tx.set(COLLECTION, shard.key, asdict(shard))


def in_use(store: DocumentStore, backend: str) -> int:
    """Slots held now across the backend's shards (a plain read)."""
    keys = [slot_key(backend, i) for i in range(SHARDS)]
    return sum(int(doc["in_use"]) for doc in store.get_many(COLLECTION, keys).values())
