"""Sharded budget allotments: exact under concurrency without one hot document. Pure.

A scope's day (``global@2026-11-23``) is a pool plus N shards. The pool holds the part of
the limit not yet allotted; each shard holds an allotment and what is held and spent against
it. Two invariants make the budget exact however many writers run at once:

- conservation: ``pool.unallotted + sum(shard.allot) == limit`` (every move is a transfer)
- per shard: ``held + spent <= allot`` (a hold never exceeds its shard's allotment)

so ``spent + held <= limit`` always. A hold touches one shard (chosen at random, so
concurrent holds rarely meet); a shard that runs dry takes a chunk from the pool; when the
pool is dry too, free allotment is reclaimed from the other shards (rare: near the limit).
An overrun (a provider charging more than the hold) is charged in full and its excess is
drawn from the pool. A pool can go negative (an overrun it cannot cover, or a limit lowered
below what is committed): the scope is then in deficit, every shard is marked ``draining``,
a draining shard's free allotment repays the pool before anything else, and no hold is
granted until the pool is back to zero or above. So holds never take spent + held past the
limit; only a provider's overrun can, and it is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Pool:
    scope: str
    day: str
    limit_micros: int
    unallotted_micros: int

    @property
    def key(self) -> str:
        return day_key(self.scope, self.day)


@dataclass(frozen=True)
class Shard:
    scope: str
    day: str
    index: int
    allot_micros: int = 0
    held_micros: int = 0
    spent_micros: int = 0
    overrun_micros: int = 0
    draining: bool = False  # the scope is in deficit: free allotment repays the pool first

    @property
    def key(self) -> str:
        return shard_key(self.scope, self.day, self.index)

    @property
    def free(self) -> int:
        return max(0, self.allot_micros - self.held_micros - self.spent_micros)


def day_key(scope: str, day: str) -> str:
    """A scope's budget day, ``global@2026-11-23``: its pool's id and its shards' prefix."""
    return f"{scope}@{day}"


def shard_key(scope: str, day: str, index: int) -> str:
    return f"{day_key(scope, day)}#{index:03d}"


def parse_shard_key(key: str) -> tuple[str, str, int]:
    head, index = key.rsplit("#", 1)
    scope, day = head.rsplit("@", 1)
    return scope, day, int(index)


def new_pool(scope: str, day: str, limit: int) -> Pool:
    return Pool(scope, day, limit, limit)


def chunk_for(pool: Pool, shards: int) -> int:
    """How much a dry shard takes from the pool at once: a slice of the limit."""
    return max(1, pool.limit_micros // (2 * max(1, shards)))


def fits_alone(shard: Shard, amount: int) -> bool:
    """Can the shard hold this without touching the pool (the common, one-document case)?"""
    return not shard.draining and shard.free >= amount


def repay(shard: Shard, pool: Pool) -> tuple[Shard, Pool]:
    """While the pool is in deficit, the shard's free allotment pays it back first; the shard
    stops draining once the pool is whole."""
    if pool.unallotted_micros >= 0:
        return replace(shard, draining=False), pool
    pay = min(shard.free, -pool.unallotted_micros)
    pool = replace(pool, unallotted_micros=pool.unallotted_micros + pay)
    shard = replace(shard, allot_micros=shard.allot_micros - pay)
    return replace(shard, draining=pool.unallotted_micros < 0), pool


def hold(
    shard: Shard, pool: Pool | None, amount: int, chunk: int
) -> tuple[Shard, Pool | None] | None:
    """Hold ``amount`` on ``shard``, refilling it from ``pool`` when it lacks room.

    ``pool`` may be None only when the shard fits alone. Returns the new shard and pool (the
    pool unchanged when not needed), or None when shard and pool together cannot cover it
    (then ``reclaim`` from the other shards, or refuse).
    """
    if amount < 0:
        raise ValueError("a hold is never negative")
    if fits_alone(shard, amount):
        return replace(shard, held_micros=shard.held_micros + amount), pool
    if pool is None:
        raise ValueError("the shard cannot hold this alone: read its pool")
    shard, pool = repay(shard, pool)
    if pool.unallotted_micros < 0:
        return None  # in deficit: nothing is held until the pool is whole again
    if shard.free >= amount:
        return replace(shard, held_micros=shard.held_micros + amount), pool
    need = amount - shard.free
    take = min(max(need, chunk), max(0, pool.unallotted_micros))
    if take < need:
        return None
    refilled = replace(shard, allot_micros=shard.allot_micros + take)
    pool = replace(pool, unallotted_micros=pool.unallotted_micros - take)
    return replace(refilled, held_micros=refilled.held_micros + amount), pool


def reclaim(target: Shard, others: list[Shard], pool: Pool, amount: int) -> list[Shard] | None:
    """Move free allotment from ``others`` into ``target`` until it can hold ``amount``.

    Returns every changed shard (target last), or None when the whole scope cannot (or the
    pool is in deficit: then free allotment repays it, see ``repay``).
    """
    if pool.unallotted_micros < 0:
        return None
    need = amount - target.free - pool.unallotted_micros
    if need > sum(s.free for s in others):
        return None
    changed: list[Shard] = []
    moved = 0
    for shard in sorted(others, key=lambda s: -s.free):
        if moved >= need:
            break
        take = min(shard.free, need - moved)
        if take > 0:
            changed.append(replace(shard, allot_micros=shard.allot_micros - take))
            moved += take
    return [*changed, replace(target, allot_micros=target.allot_micros + moved)]


def settle(shard: Shard, pool: Pool | None, held: int, actual: int) -> tuple[Shard, Pool | None]:
    """Replace a hold by the actual cost; an overrun's excess is allotted from the pool; a
    draining shard repays the pool's deficit with what the settlement freed."""
    if held < 0 or actual < 0 or held > shard.held_micros:
        raise ValueError(f"cannot settle hold {held} (actual {actual}) on {shard.key}")
    overrun = max(0, actual - held)
    if overrun and pool is None:
        raise ValueError("an overrun is allotted from the pool: read it")
    settled = replace(
        shard,
        held_micros=shard.held_micros - held,
        spent_micros=shard.spent_micros + actual,
        overrun_micros=shard.overrun_micros + overrun,
        allot_micros=shard.allot_micros + overrun,
    )
    if overrun:
        pool = replace(pool, unallotted_micros=pool.unallotted_micros - overrun)
    if pool is not None and (settled.draining or pool.unallotted_micros < 0):
        settled, pool = repay(replace(settled, draining=True), pool)
    return settled, pool


def refund(shard: Shard, pool: Pool | None, amount: int) -> tuple[Shard, Pool | None]:
    """Give back part of what was charged (an estimate above the real cost): it becomes free
    allotment again, which a draining shard repays to the pool first."""
    if amount < 0 or amount > shard.spent_micros:
        raise ValueError(f"cannot refund {amount} on {shard.key}")
    refunded = replace(shard, spent_micros=shard.spent_micros - amount)
    if pool is not None and refunded.draining:
        refunded, pool = repay(refunded, pool)
    return refunded, pool


def charge(shard: Shard, pool: Pool, amount: int) -> tuple[Shard, Pool]:
    """Spend no hold covered (the spend audit's unattributed charge): allotted from the pool
    and spent at once, so both invariants hold; a pool it drives negative is in deficit."""
    if amount < 0:
        raise ValueError("a charge is never negative")
    spent = replace(
        shard, allot_micros=shard.allot_micros + amount, spent_micros=shard.spent_micros + amount
    )
    pool = replace(pool, unallotted_micros=pool.unallotted_micros - amount)
    if spent.draining or pool.unallotted_micros < 0:
        spent, pool = repay(replace(spent, draining=True), pool)
    return spent, pool


def needs_pool_to_settle(shard: Shard, held: int, actual: int) -> bool:
    return actual > held or shard.draining


def resize(pool: Pool, shards: list[Shard], limit: int) -> tuple[Pool, list[Shard]]:
    """A new limit for the day: free allotment returns to the pool, then the pool moves by the
    difference (it may go negative when more is already committed than the new limit)."""
    returned = sum(s.free for s in shards)
    unallotted = pool.unallotted_micros + returned + (limit - pool.limit_micros)
    deficit = unallotted < 0
    emptied = [
        replace(s, allot_micros=s.allot_micros - s.free, draining=deficit)
        for s in shards
        if s.free or s.draining != deficit
    ]
    return replace(pool, limit_micros=limit, unallotted_micros=unallotted), emptied


def mark_deficit(shards: list[Shard], pool: Pool) -> tuple[list[Shard], Pool]:
    """The pool just went negative: every shard repays what it can and drains until whole."""
    changed = []
    for shard in shards:
        repaid, pool = repay(replace(shard, draining=True), pool)
        changed.append(repaid)
    return changed, pool
