"""The budget ledger's documents: one pool and N shards per scope and budget day, and the
run-time limits ``aiprod budget set`` stores.

| collection | id | holds |
|---|---|---|
| ``budget_pools`` | ``{scope}@{day}`` | a ``Pool``: the limit and what is not yet allotted |
| ``ledger`` | ``{scope}@{day}#{index:03d}`` | a ``Shard``: allotment, held, spent, overrun |
| ``budget_limits`` | ``{scope}`` | a limit set at run time (overrides configuration) |

The ids come from ``domain.ledger`` (``day_key`` / ``shard_key``); this module is the only
one that knows the collections and turns documents into ``Pool`` and ``Shard`` values. A
day's pool and shards carry ``expire_at`` (the day's end plus the ledger retention), so the
store's TTL policy deletes old days; run-time limits are kept for good.
"""

from __future__ import annotations

from dataclasses import asdict, fields

from aiprod.domain.ledger import Pool, Shard, day_key, shard_key
from aiprod.domain.retention import day_expiry
from aiprod.ports import EXPIRE_AT, DocumentStore, Transaction

SHARDS = "ledger"
POOLS = "budget_pools"
LIMITS = "budget_limits"
Reader = Transaction | DocumentStore
_SHARD_FIELDS = tuple(f.name for f in fields(Shard))
_POOL_FIELDS = tuple(f.name for f in fields(Pool))


def shard_from(doc: dict) -> Shard:
    """A stored shard; amounts a document lacks are 0 (an older document, or a new shard)."""
    return Shard(**{name: doc[name] for name in _SHARD_FIELDS if name in doc})


def pool_from(doc: dict) -> Pool:
    return Pool(**{name: doc[name] for name in _POOL_FIELDS})


def load_shard(reader: Reader, scope: str, day: str, index: int) -> Shard:
    """The shard, or an empty one (no allotment yet) when it was never written."""
    doc = reader.get(SHARDS, shard_key(scope, day, index))
    return Shard(scope=scope, day=day, index=index) if doc is None else shard_from(doc)


def load_shards(store: DocumentStore, scope: str, day: str, count: int) -> list[Shard]:
    """The shards of a scope's day that exist among the first ``count`` (one round trip)."""
    keys = [shard_key(scope, day, i) for i in range(count)]
    return [shard_from(doc) for doc in store.get_many(SHARDS, keys).values()]


def load_pool(reader: Reader, scope: str, day: str) -> Pool | None:
    doc = reader.get(POOLS, day_key(scope, day))
    return None if doc is None else pool_from(doc)


def save(tx: Transaction, keep_s: float, shards: list[Shard], pool: Pool | None = None) -> None:
    """Write the shards (and the pool), each kept ``keep_s`` after its day ends."""
    for shard in shards:
        tx.set(SHARDS, shard.key, {**asdict(shard), EXPIRE_AT: day_expiry(shard.day, keep_s)})
    if pool is not None:
        tx.set(POOLS, pool.key, {**asdict(pool), EXPIRE_AT: day_expiry(pool.day, keep_s)})


def runtime_limit(reader: Reader, scope: str) -> int | None:
    """The limit an operator set for the scope, if any."""
    doc = reader.get(LIMITS, scope)
    return None if doc is None else doc["limit_micros"]


def save_runtime_limit(tx: Transaction, scope: str, limit: int, updated_at: str) -> None:
    tx.set(LIMITS, scope, {"scope": scope, "limit_micros": limit, "updated_at": updated_at})


def shards_of_day(store: DocumentStore, day: str, limit: int) -> list[Shard]:
    """Every shard of every scope on ``day``, whatever the configured shard count."""
    return [shard_from(doc) for doc in store.query(SHARDS, "day", "==", day, limit=limit)]


def scope_days(store: DocumentStore, limit: int) -> list[tuple[str, str]]:
    """Every (day, scope) that has a shard, sorted."""
    return sorted({(doc["day"], doc["scope"]) for doc in store.list(SHARDS, limit=limit)})


def pools_of_day(store: DocumentStore, day: str, limit: int) -> list[Pool]:
    return [pool_from(doc) for doc in store.query(POOLS, "day", "==", day, limit=limit)]


def runtime_limits(store: DocumentStore, limit: int) -> dict[str, int]:
    return {doc["scope"]: doc["limit_micros"] for doc in store.list(LIMITS, limit=limit)}
