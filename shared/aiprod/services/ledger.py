"""The budget ledger on the document store: holds, settlements and snapshots across shards.

Inside a transaction, ``reserve`` and ``settle`` read only the documents they change (one
shard per scope in the common case), so concurrent function instances rarely touch the same
document; ``snapshot`` reads every shard plainly, outside any transaction, for the threshold
policy (70 % / 90 %), which is routing advice — the 100 % limit is enforced per shard.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from datetime import UTC, datetime

from aiprod.config import Settings
from aiprod.domain import ledger
from aiprod.domain.budget import LedgerEntry
from aiprod.domain.ledger import Pool, Shard
from aiprod.ports import DocumentStore, Transaction
from aiprod.services.telemetry import Telemetry, null_telemetry

SHARDS = "ledger"
POOLS = "budget_pools"
LIMITS = "budget_limits"


class Ledger:
    def __init__(
        self,
        settings: Settings,
        rng: random.Random | None = None,
        telemetry: Telemetry | None = None,
    ):
        self._settings = settings
        self._telemetry = telemetry or null_telemetry()
        self._shards = max(1, settings.ledger_shards)
        self._rng = rng or random.Random()

    # -- inside a transaction -----------------------------------------------------------------

    def reserve(self, tx: Transaction, scopes: tuple[str, ...], day: str, amount: int):
        """Hold ``amount`` in every scope, or nowhere. Returns the shard keys held on."""
        staged: list[tuple[list[Shard], Pool | None]] = []
        for scope in scopes:
            result = self._hold_in_scope(tx, scope, day, amount)
            if result is None:
                return None
            staged.append(result)
        for shards, pool in staged:
            self._write(tx, shards, pool)
        return [shards[-1].key for shards, _ in staged]

    def settle(self, tx: Transaction, keys: list[str], held: int, actual: int) -> None:
        """Replace the hold on each shard by the actual cost (0 releases it)."""
        for key in keys:
            scope, day, index = ledger.parse_shard_key(key)
            shard = self._shard(tx, scope, day, index)
            needs_pool = ledger.needs_pool_to_settle(shard, held, actual)
            pool = self._pool(tx, scope, day) if needs_pool else None
            shard, pool = ledger.settle(shard, pool, held, actual)
            others: list[Shard] = []
            if pool is not None and pool.unallotted_micros < 0:
                # an overrun the pool could not cover: every shard drains until it is whole
                rest = [self._shard(tx, scope, day, i) for i in range(self._shards) if i != index]
                others, pool = ledger.mark_deficit([s for s in rest if not s.draining], pool)
            self._write(tx, [*others, shard], pool)

    # -- plain reads ----------------------------------------------------------------------------

    def snapshot(self, store: DocumentStore, scope: str, day: str) -> LedgerEntry:
        """One scope's day, summed over its shards (a plain read: may be a moment old)."""
        keys = [ledger.shard_key(scope, day, i) for i in range(self._shards)]
        docs = store.get_many(SHARDS, keys).values()
        pool = store.get(POOLS, f"{scope}@{day}")
        limit = pool["limit_micros"] if pool else self.limit(store, scope)
        entry = LedgerEntry(
            scope=scope,
            day=day,
            limit_micros=limit,
            held_micros=sum(d["held_micros"] for d in docs),
            spent_micros=sum(d["spent_micros"] for d in docs),
            overrun_micros=sum(d["overrun_micros"] for d in docs),
        )
        self._telemetry.budget(entry)  # the budget gauges: what admission saw
        return entry

    def limit(self, reader: Transaction | DocumentStore, scope: str) -> int:
        """The scope's daily limit: set at run time in the store, else from configuration."""
        doc = reader.get(LIMITS, scope)
        return doc["limit_micros"] if doc else self._settings.limit_for(scope)

    # -- helpers ----------------------------------------------------------------------------------

    def _hold_in_scope(self, tx, scope: str, day: str, amount: int):
        index = self._rng.randrange(self._shards)
        shard = self._shard(tx, scope, day, index)
        if ledger.fits_alone(shard, amount):
            return [ledger.hold(shard, None, amount, 0)[0]], None
        pool = self._pool(tx, scope, day)
        chunk = ledger.chunk_for(pool, self._shards)
        held = ledger.hold(shard, pool, amount, chunk)
        if held is not None:
            return [held[0]], held[1]
        if pool.unallotted_micros < 0:
            return None  # in deficit (a lowered limit or an uncovered overrun)
        others = [self._shard(tx, scope, day, i) for i in range(self._shards) if i != index]
        moved = ledger.reclaim(shard, others, pool, amount)
        if moved is None:
            return None
        target, pool = ledger.hold(moved[-1], pool, amount, chunk)
        return [*moved[:-1], target], pool

    def _shard(self, tx, scope: str, day: str, index: int) -> Shard:
        doc = tx.get(SHARDS, ledger.shard_key(scope, day, index))
        if doc is None:
            return Shard(scope=scope, day=day, index=index)
        return Shard(**{k: doc[k] for k in Shard.__dataclass_fields__ if k in doc})

    def _pool(self, tx, scope: str, day: str) -> Pool:
        doc = tx.get(POOLS, f"{scope}@{day}")
        if doc is None:
            return ledger.new_pool(scope, day, self.limit(tx, scope))
        return Pool(**{k: doc[k] for k in Pool.__dataclass_fields__})

    def _write(self, tx, shards: list[Shard], pool: Pool | None) -> None:
        for shard in shards:
            tx.set(SHARDS, shard.key, asdict(shard))
        if pool is not None:
            tx.set(POOLS, pool.key, asdict(pool))


def set_limit(store: DocumentStore, settings: Settings, scope: str, day: str, limit: int) -> Pool:
    """``aiprod budget set``: store the new limit and resize today's allotments in one go."""
    shards_n = max(1, settings.ledger_shards)
    book = Ledger(settings)

    def body(tx: Transaction) -> Pool:
        pool = book._pool(tx, scope, day)
        shards = [book._shard(tx, scope, day, i) for i in range(shards_n)]
        pool, emptied = ledger.resize(pool, shards, limit)
        now = datetime.now(UTC).isoformat()
        tx.set(LIMITS, scope, {"scope": scope, "limit_micros": limit, "updated_at": now})
        book._write(tx, emptied, pool)
        return pool

    return store.run_transaction(body)
