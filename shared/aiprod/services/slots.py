"""Taking and giving back render slots inside the caller's transaction: a dispatch takes one
with its hold, an attempt's close gives it back (``domain.slots``, ``repositories.slots``).
Capacity is the operator's run-time setting, else the catalog's default."""

from __future__ import annotations

import random

from aiprod.domain import slots
from aiprod.domain.catalog import Catalog
from aiprod.ports import DocumentStore, Transaction
from aiprod.repositories import capacity as capacity_records
from aiprod.repositories import slots as records


class SlotBook:
    def __init__(self, catalog: Catalog, rng: random.Random | None = None):
        self._catalog = catalog
        self._rng = rng or random.Random()

    def capacity(self, reader: Transaction | DocumentStore, backend: str) -> int:
        override = capacity_records.load(reader, backend)
        if override is not None:
            return override.concurrent
        return self._catalog.backends[backend].capacity.concurrent

    def take(self, tx: Transaction, backend: str) -> str | None:
        """A slot for one render on ``backend``: its key, or None when every one is in use."""
        capacity = self.capacity(tx, backend)
        for index in slots.order(self._rng.randrange(slots.SHARDS)):
            if slots.share(capacity, index) == 0:
                continue
            shard = records.load(tx, backend, index)
            if slots.has_room(shard, capacity):
                records.save(tx, slots.taken(shard))
                return shard.key
        return None

    def give_back(self, tx: Transaction, key: str) -> None:
        records.save(tx, slots.given_back(records.load_key(tx, key)))
