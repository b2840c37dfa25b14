"""The sharded ledger's pure arithmetic: holds, refills, reclaim, settlement, resize."""

from __future__ import annotations

import pytest

from aiprod.domain import ledger
from aiprod.domain.ledger import Pool, Shard

DAY = "2027-01-15"


def pool(unallotted: int, limit: int = 10_000_000) -> Pool:
    return Pool("global", DAY, limit, unallotted)


def shard(index: int = 0, allot: int = 0, held: int = 0, spent: int = 0) -> Shard:
    return Shard("global", DAY, index, allot, held, spent)


def conserved(p: Pool, shards: list[Shard]) -> bool:
    return p.unallotted_micros + sum(s.allot_micros for s in shards) == p.limit_micros


def test_a_hold_that_fits_the_shard_does_not_touch_the_pool():
    held, untouched = ledger.hold(shard(allot=1_000_000), None, 400_000, chunk=0)
    assert (held.held_micros, held.free, untouched) == (400_000, 600_000, None)


def test_a_dry_shard_takes_a_chunk_from_the_pool():
    # GIVEN an empty shard and a pool holding the whole limit
    p, s = pool(10_000_000), shard()
    # WHEN it holds 0.60 USD with chunks of 2.50 USD
    s2, p2 = ledger.hold(s, p, 600_000, chunk=2_500_000)
    # THEN it took one chunk, holds the amount, and nothing was created or lost
    assert (s2.allot_micros, s2.held_micros, p2.unallotted_micros) == (
        2_500_000,
        600_000,
        7_500_000,
    )
    assert conserved(p2, [s2])


def test_a_hold_larger_than_a_chunk_takes_what_it_needs():
    s2, p2 = ledger.hold(shard(allot=100_000), pool(10_000_000), 3_200_000, chunk=1_000_000)
    assert (s2.allot_micros, s2.free, p2.unallotted_micros) == (3_200_000, 0, 6_900_000)


def test_the_pool_gives_only_what_it_has():
    s2, p2 = ledger.hold(shard(), pool(700_000), 600_000, chunk=2_500_000)
    assert (s2.allot_micros, p2.unallotted_micros) == (700_000, 0)


def test_shard_and_pool_short_means_reclaim():
    assert ledger.hold(shard(allot=100_000), pool(200_000), 600_000, chunk=1) is None


def test_reclaim_moves_free_allotment_from_other_shards_and_conserves():
    # GIVEN a dry pool, a target shard with 0.10 USD free and two others with free allotment
    p = pool(0, limit=3_000_000)
    target = shard(0, allot=100_000)
    others = [shard(1, allot=1_400_000, held=1_000_000), shard(2, allot=1_500_000, spent=500_000)]
    # WHEN 0.90 USD must be held on the target
    moved = ledger.reclaim(target, others, p, 900_000)
    # THEN 0.80 USD moved in (largest free first), the target can hold it, and nothing leaked
    assert moved is not None and moved[-1].index == 0
    assert moved[-1].free == 900_000
    final = {s.index: s for s in [*others, *moved]}
    assert conserved(p, list(final.values()))
    s2, p2 = ledger.hold(moved[-1], p, 900_000, chunk=1)
    assert s2.held_micros == 900_000 and p2 == p


def test_reclaim_refuses_when_the_whole_scope_lacks_room():
    others = [shard(1, allot=500_000, held=400_000)]
    assert ledger.reclaim(shard(0), others, pool(50_000), 200_000) is None


def test_settle_below_the_hold_charges_the_actual_cost():
    s, p = ledger.settle(shard(allot=1_000_000, held=600_000), None, 600_000, 450_000)
    assert (s.held_micros, s.spent_micros, s.free, p) == (0, 450_000, 550_000, None)


def test_release_is_a_settle_at_zero():
    s, _ = ledger.settle(shard(allot=1_000_000, held=600_000), None, 600_000, 0)
    assert (s.held_micros, s.spent_micros) == (0, 0)


def test_an_overrun_is_charged_and_its_excess_allotted_from_the_pool():
    # GIVEN a hold of 0.60 USD and a provider that charges 0.75 USD
    p = pool(9_000_000)
    s = shard(allot=1_000_000, held=600_000)
    # WHEN it settles
    s2, p2 = ledger.settle(s, p, 600_000, 750_000)
    # THEN the whole cost is spent, the overrun noted, and the books still conserve
    assert (s2.spent_micros, s2.overrun_micros, s2.held_micros) == (750_000, 150_000, 0)
    assert s2.held_micros + s2.spent_micros <= s2.allot_micros
    assert conserved(p2, [s2])


def test_an_overrun_needs_the_pool():
    with pytest.raises(ValueError, match="pool"):
        ledger.settle(shard(allot=1_000_000, held=600_000), None, 600_000, 700_000)


def test_settling_more_than_is_held_is_refused():
    with pytest.raises(ValueError):
        ledger.settle(shard(allot=1_000_000, held=100_000), None, 600_000, 0)


def test_resize_returns_free_allotment_and_moves_the_pool_by_the_difference():
    # GIVEN a 10 USD day with 3 USD allotted to a shard holding 1 USD
    p = pool(7_000_000)
    s = shard(allot=3_000_000, held=1_000_000)
    # WHEN the limit drops to 2 USD
    p2, emptied = ledger.resize(p, [s], 2_000_000)
    # THEN the shard keeps only what it holds, and the pool has the 1 USD left of the new limit
    assert [e.allot_micros for e in emptied] == [1_000_000]
    assert p2.unallotted_micros == 1_000_000 and conserved(p2, emptied)


def test_resize_below_what_is_committed_leaves_a_negative_pool():
    p2, _ = ledger.resize(
        pool(0, limit=1_000_000), [shard(allot=1_000_000, spent=1_000_000)], 500_000
    )
    assert p2.unallotted_micros == -500_000


def test_shard_keys_round_trip():
    key = ledger.shard_key("tenant:acme", DAY, 7)
    assert key == "tenant:acme@2027-01-15#007"
    assert ledger.parse_shard_key(key) == ("tenant:acme", DAY, 7)


# -- deficit: a lowered limit or an overrun the pool cannot cover ------------------------------


def _service(limit: int, shards: int = 1):
    import random

    from aiprod.adapters.embedded_store import EmbeddedStore
    from aiprod.config import Settings
    from aiprod.services.ledger import Ledger

    config = Settings(global_limit_micros=limit, ledger_shards=shards)
    return EmbeddedStore(), Ledger(config, random.Random(1)), config


def _committed(store, book) -> int:
    return book.snapshot(store, "global", DAY).committed


def test_a_released_hold_does_not_outlive_a_lowered_limit():
    from aiprod.services.ledger import set_limit

    # GIVEN a 10 USD day: 6 USD held (open) and 3 USD spent
    store, book, config = _service(10_000_000)
    hold = lambda amount: store.run_transaction(  # noqa: E731
        lambda tx: book.reserve(tx, ("global",), DAY, amount)
    )
    open_keys = hold(6_000_000)
    spent_keys = hold(3_000_000)
    store.run_transaction(lambda tx: book.settle(tx, spent_keys, 3_000_000, 3_000_000))

    # WHEN the limit is lowered to 5 USD and the open hold is then released
    set_limit(store, config, "global", DAY, 5_000_000)
    store.run_transaction(lambda tx: book.settle(tx, open_keys, 6_000_000, 0))

    # THEN the freed allotment repaid the deficit: only 2 USD more may be held, not 6
    assert hold(6_000_000) is None
    assert hold(2_000_000) is not None
    assert _committed(store, book) == 5_000_000
    assert hold(1) is None


def test_an_overrun_the_pool_cannot_cover_stops_further_holds_on_every_shard():
    # GIVEN a 1 USD day on 4 shards, fully held by 0.25 USD holds
    store, book, _ = _service(1_000_000, shards=4)
    keys = [
        store.run_transaction(lambda tx: book.reserve(tx, ("global",), DAY, 250_000))
        for _ in range(4)
    ]
    assert all(keys)

    # WHEN one is settled at 0.40 USD (an overrun of 0.15 USD the pool cannot cover)
    # and another is released
    store.run_transaction(lambda tx: book.settle(tx, keys[0], 250_000, 400_000))
    store.run_transaction(lambda tx: book.settle(tx, keys[1], 250_000, 0))

    # THEN the release repaid the deficit first: 0.10 USD remains to hold, on any shard,
    # which brings the day back to exactly its limit, the overrun included
    assert store.run_transaction(lambda tx: book.reserve(tx, ("global",), DAY, 150_000)) is None
    assert store.run_transaction(lambda tx: book.reserve(tx, ("global",), DAY, 100_000))
    entry = book.snapshot(store, "global", DAY)
    assert entry.committed == 1_000_000 and entry.overrun_micros == 150_000
