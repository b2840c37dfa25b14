"""Render slots: how many renders a backend runs at once, as shards so that no single
document takes every dispatch's write (the ledger's sharding is the model). Pure.

A backend's capacity is spread over ``SHARDS`` shards (shard ``i`` may hold its share of the
capacity, some shares 0 when the capacity is small); taking a slot increments one shard that
has room, giving it back decrements the shard the attempt took it from (``slot_key``). A
capacity lowered at run time lowers the shares at once: shards above their new share take
nothing until renders finish.

Each shard also counts what it holds per tenant (the queue serves the tenant holding the
fewest slots first) and, where the provider limits creates a minute, the slots it gave out
in the current minute: a dispatch is a create, so a backend's creates stay within its rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

SHARDS = 8
UNTENANTED = "-"  # the untenanted jobs share one place in the fair order (not a tenant name)


@dataclass(frozen=True)
class SlotShard:
    backend: str
    index: int
    in_use: int = 0
    tenants: dict[str, int] = field(default_factory=dict)  # slots held per tenant
    minute: int = 0  # the epoch minute ``created`` counts in
    created: int = 0  # slots taken in that minute

    @property
    def key(self) -> str:
        return slot_key(self.backend, self.index)


@dataclass(frozen=True)
class Limits:
    """What a backend may run: renders at once, and creates a minute (None: no rate)."""

    concurrent: int
    creates_per_minute: int | None = None


def slot_key(backend: str, index: int) -> str:
    return f"{backend}#{index}"


def parse_slot_key(key: str) -> tuple[str, int]:
    backend, _, index = key.rpartition("#")
    return backend, int(index)


def tenant_key(tenant: str | None) -> str:
    return tenant or UNTENANTED


def share(total: int, index: int, shards: int = SHARDS) -> int:
    """Shard ``index``'s share of ``total`` spread over the first ``shards`` shards (the
    shares add up to it)."""
    if index >= shards:
        return 0
    return total // shards + (1 if index < total % shards else 0)


def active_shards(limits: Limits) -> int:
    """How many shards take slots: as many as there are slots and creates a minute to give
    each one a share of both (a capacity of 1, or 2 creates a minute, use fewer shards, so
    no shard holds slots it may never start, or creates it has no slot for)."""
    rate = limits.creates_per_minute or SHARDS
    return max(1, min(SHARDS, limits.concurrent, rate))


def slot_share(limits: Limits, index: int) -> int:
    """Shard ``index``'s share of the renders at a time."""
    return share(limits.concurrent, index, active_shards(limits))


def rate_share(limits: Limits, index: int) -> int:
    """Shard ``index``'s share of the creates a minute."""
    assert limits.creates_per_minute is not None
    return share(limits.creates_per_minute, index, active_shards(limits))


def order(start: int) -> list[int]:
    """Shards in the order a take tries them: from ``start`` round, so takes spread out."""
    return [(start + i) % SHARDS for i in range(SHARDS)]


def minute_of(now: float) -> int:
    return int(now // 60)


def has_room(shard: SlotShard, limits: Limits, now: float) -> bool:
    if shard.in_use >= slot_share(limits, shard.index):
        return False
    if limits.creates_per_minute is None:
        return True
    created = shard.created if shard.minute == minute_of(now) else 0
    return created < rate_share(limits, shard.index)


def taken(shard: SlotShard, tenant: str | None, now: float) -> SlotShard:
    who = tenant_key(tenant)
    minute = minute_of(now)
    created = (shard.created if shard.minute == minute else 0) + 1
    tenants = {**shard.tenants, who: shard.tenants.get(who, 0) + 1}
    return replace(shard, in_use=shard.in_use + 1, tenants=tenants, minute=minute, created=created)


def given_back(shard: SlotShard, tenant: str | None) -> SlotShard:
    who = tenant_key(tenant)
    tenants = dict(shard.tenants)
    left = tenants.pop(who, 0) - 1
    if left > 0:
        tenants[who] = left
    return replace(shard, in_use=max(0, shard.in_use - 1), tenants=tenants)


def untaken(shard: SlotShard, tenant: str | None) -> SlotShard:
    """A take undone before its attempt went ahead: not a create either."""
    return replace(given_back(shard, tenant), created=max(0, shard.created - 1))


def held_by_tenant(shards: list[SlotShard]) -> dict[str, int]:
    """Slots each tenant holds across a backend's shards."""
    held: dict[str, int] = {}
    for shard in shards:
        for who, count in shard.tenants.items():
            held[who] = held.get(who, 0) + count
    return held
