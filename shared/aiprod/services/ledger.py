"""The budget ledger on the document store: holds, settlements and snapshots across shards.

Inside a transaction, ``reserve`` and ``settle`` read only the documents they change (one
shard per scope in the common case), so concurrent function instances rarely touch the same
document; ``snapshot`` reads every shard plainly, outside any transaction, for the threshold
policy (70 % / 90 %), which is routing advice — the 100 % limit is enforced per shard.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from datetime import UTC, datetime

from aiprod.config import Settings
from aiprod.domain import ledger
from aiprod.domain.budget import BudgetTotals, totals
from aiprod.domain.ledger import Pool, Shard
from aiprod.ports import DocumentStore, Transaction
from aiprod.repositories import ledger as books
from aiprod.services.telemetry import Telemetry, null_telemetry


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
        self._keep_s = settings.retention.ledger_s  # a day's documents, after the day ends
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
            books.save(tx, self._keep_s, shards, pool)
        return [shards[-1].key for shards, _ in staged]

    def settle(self, tx: Transaction, keys: list[str], held: int, actual: int) -> None:
        """Replace the hold on each shard by the actual cost (0 releases it)."""
        for key in keys:
            scope, day, index = ledger.parse_shard_key(key)
            shard = books.load_shard(tx, scope, day, index)
            needs_pool = ledger.needs_pool_to_settle(shard, held, actual)
            pool = self.pool(tx, scope, day) if needs_pool else None
            shard, pool = ledger.settle(shard, pool, held, actual)
            self._save_maybe_in_deficit(tx, shard, pool)

    def charge(self, tx: Transaction, scope: str, day: str, seed: str, amount: int) -> str:
        """Spend ``amount`` with no hold behind it (the spend audit's unattributed charge) on
        one shard of the scope's day (chosen by ``seed``, so a re-run picks the same one).
        Returns the shard key."""
        index = zlib.crc32(seed.encode()) % self._shards
        shard = books.load_shard(tx, scope, day, index)
        shard, pool = ledger.charge(shard, self.pool(tx, scope, day), amount)
        self._save_maybe_in_deficit(tx, shard, pool)
        return shard.key

    def _save_maybe_in_deficit(self, tx: Transaction, shard: Shard, pool: Pool | None) -> None:
        others: list[Shard] = []
        if pool is not None and pool.unallotted_micros < 0:
            # spend the pool could not cover: every shard drains until it is whole
            scope, day, index = shard.scope, shard.day, shard.index
            rest = [books.load_shard(tx, scope, day, i) for i in range(self._shards) if i != index]
            others, pool = ledger.mark_deficit([s for s in rest if not s.draining], pool)
        books.save(tx, self._keep_s, [*others, shard], pool)

    def correct(self, tx: Transaction, keys: list[str], change: int, overrun: int = 0) -> None:
        """Charge ``change`` more on each shard (a cost found after the attempt closed), of
        which ``overrun`` went past the attempt's hold (booked as overrun, like a settlement
        above its hold; the rest is plain spend allotted from the pool), or give it back when
        negative (the estimate it was charged was above the real cost)."""
        for key in keys:
            scope, day, index = ledger.parse_shard_key(key)
            if change > overrun:
                shard = books.load_shard(tx, scope, day, index)
                shard, pool = ledger.charge(shard, self.pool(tx, scope, day), change - overrun)
                self._save_maybe_in_deficit(tx, shard, pool)
            if change > 0 and overrun > 0:
                self.settle(tx, [key], 0, min(overrun, change))
            if change < 0:
                shard = books.load_shard(tx, scope, day, index)
                pool = self.pool(tx, scope, day) if shard.draining else None
                shard, pool = ledger.refund(shard, pool, -change)
                books.save(tx, self._keep_s, [shard], pool)

    # -- plain reads ----------------------------------------------------------------------------

    def snapshot(self, store: DocumentStore, scope: str, day: str) -> BudgetTotals:
        """One scope's day, summed over its shards (a plain read: may be a moment old)."""
        shards = books.load_shards(store, scope, day, self._shards)
        pool = books.load_pool(store, scope, day)
        limit = pool.limit_micros if pool else self.limit(store, scope)
        entry = totals(scope, day, limit, shards)
        self._telemetry.budget(entry)  # the budget gauges: what admission saw
        return entry

    def limit(self, reader: Transaction | DocumentStore, scope: str) -> int:
        """The scope's daily limit: set at run time in the store, else from configuration."""
        runtime = books.runtime_limit(reader, scope)
        return self._settings.limit_for(scope) if runtime is None else runtime

    # -- helpers ----------------------------------------------------------------------------------

    def _hold_in_scope(self, tx, scope: str, day: str, amount: int):
        index = self._rng.randrange(self._shards)
        shard = books.load_shard(tx, scope, day, index)
        if ledger.fits_alone(shard, amount):
            return [ledger.hold(shard, None, amount, 0)[0]], None
        pool = self.pool(tx, scope, day)
        chunk = ledger.chunk_for(pool, self._shards)
        held = ledger.hold(shard, pool, amount, chunk)
        if held is not None:
            return [held[0]], held[1]
        if pool.unallotted_micros < 0:
            return None  # in deficit (a lowered limit or an uncovered overrun)
        others = [books.load_shard(tx, scope, day, i) for i in range(self._shards) if i != index]
        moved = ledger.reclaim(shard, others, pool, amount)
        if moved is None:
            return None
        target, pool = ledger.hold(moved[-1], pool, amount, chunk)
        return [*moved[:-1], target], pool

    def pool(self, tx: Transaction, scope: str, day: str) -> Pool:
        """The scope's pool, or the one a first hold creates (the whole limit unallotted)."""
        pool = books.load_pool(tx, scope, day)
        return pool or ledger.new_pool(scope, day, self.limit(tx, scope))


def set_limit(
    store: DocumentStore,
    settings: Settings,
    scope: str,
    day: str,
    limit: int,
    also: Callable[[Transaction], None] | None = None,
) -> Pool:
    """``aiprod budget set``: store the new limit and resize today's allotments in one go;
    ``also`` writes more in the same transaction (a tenant's registry entry) or raises."""
    shards_n = max(1, settings.ledger_shards)
    book = Ledger(settings)

    def body(tx: Transaction) -> Pool:
        if also is not None:
            also(tx)
        pool = book.pool(tx, scope, day)
        shards = [books.load_shard(tx, scope, day, i) for i in range(shards_n)]
        pool, emptied = ledger.resize(pool, shards, limit)
        books.save_runtime_limit(tx, scope, limit, datetime.now(UTC).isoformat())
        books.save(tx, settings.retention.ledger_s, emptied, pool)
        return pool

    return store.run_transaction(body)
