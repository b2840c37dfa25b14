"""Render slots: how many renders a backend runs at once, as shards so that no single
document takes every dispatch's write (the ledger's sharding is the model). Pure.

A backend's capacity is spread over ``SHARDS`` shards (shard ``i`` may hold its share of the
capacity, some shares 0 when the capacity is small); taking a slot increments one shard that
has room, giving it back decrements the shard the attempt took it from (``slot_key``). A
capacity lowered at run time lowers the shares at once: shards above their new share take
nothing until renders finish.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

SHARDS = 8


@dataclass(frozen=True)
class SlotShard:
    backend: str
    index: int
    in_use: int = 0

    @property
    def key(self) -> str:
        return slot_key(self.backend, self.index)


def slot_key(backend: str, index: int) -> str:
    return f"{backend}#{index}"


def parse_slot_key(key: str) -> tuple[str, int]:
    backend, _, index = key.rpartition("#")
    return backend, int(index)


def share(capacity: int, index: int) -> int:
    """Shard ``index``'s share of ``capacity`` (the shares add up to it)."""
    return capacity // SHARDS + (1 if index < capacity % SHARDS else 0)


def order(start: int) -> list[int]:
    """Shards in the order a take tries them: from ``start`` round, so takes spread out."""
    return [(start + i) % SHARDS for i in range(SHARDS)]


def has_room(shard: SlotShard, capacity: int) -> bool:
    return shard.in_use < share(capacity, shard.index)


def taken(shard: SlotShard) -> SlotShard:
    return replace(shard, in_use=shard.in_use + 1)


def given_back(shard: SlotShard) -> SlotShard:
    return replace(shard, in_use=max(0, shard.in_use - 1))
