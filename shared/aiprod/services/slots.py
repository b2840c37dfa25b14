"""Taking and giving back render slots inside the caller's transaction: a dispatch takes one
with its hold, an attempt's close gives it back (``domain.slots``, ``repositories.slots``).
Limits are the operator's run-time setting, else the catalog's default."""

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

    def limits(self, reader: Transaction | DocumentStore, backend: str) -> slots.Limits:
        override = capacity_records.load(reader, backend)
        if override is not None:
            return slots.Limits(override.concurrent, override.creates_per_minute)
        default = self._catalog.backends[backend].capacity
        return slots.Limits(default.concurrent, default.creates_per_minute)

    def capacity(self, reader: Transaction | DocumentStore, backend: str) -> int:
        return self.limits(reader, backend).concurrent

    def take(self, tx: Transaction, backend: str, tenant: str | None, now: float) -> str | None:
        """A slot for one render on ``backend``: its key, or None when every one is in use
        (or the backend's creates this minute are used up)."""
        limits = self.limits(tx, backend)
        shards = records.load_all(tx, backend)  # one read for all of them
        if sum(shard.in_use for shard in shards) >= limits.concurrent:
            return None  # a capacity just lowered: shards still holding more wait it out
        for index in slots.order(self._rng.randrange(slots.SHARDS)):
            shard = shards[index]
            if slots.has_room(shard, limits, now):
                records.save(tx, slots.taken(shard, tenant, now))
                return shard.key
        return None

    def untake(self, tx: Transaction, key: str, tenant: str | None) -> None:
        """Undo a take in the same transaction (the attempt did not go ahead after all)."""
        records.save(tx, slots.untaken(records.load_key(tx, key), tenant))

    def give_back(self, tx: Transaction, key: str, tenant: str | None) -> None:
        records.save(tx, slots.given_back(records.load_key(tx, key), tenant))

    def held_by_tenant(self, store: DocumentStore, backend: str) -> dict[str, int]:
        """Slots each tenant holds on ``backend`` now (a plain read: the queue's fair order)."""
        return slots.held_by_tenant(records.load_all(store, backend))
