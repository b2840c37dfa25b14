"""The spend audit's comparison (``domain.spend_audit``): which provider renders the books
lack, what each is charged, and that what was charged once is never charged again."""

from __future__ import annotations

from aiprod.domain import ledger
from aiprod.domain.catalog import default_catalog
from aiprod.domain.spend_audit import (
    Books,
    ProviderDay,
    ProviderTask,
    Recorded,
    compare,
    task_charge_id,
    total_charge_id,
    worst_case,
)

DAY = "2027-01-15"
WORST = 999_000


def worst(model: str) -> int:
    return WORST


def books(attempts=None, recorded=0, charged=None) -> Books:
    return Books(attempts or {}, recorded, charged or {})


def task(key: str, billed=True, cost=None) -> ProviderTask:
    return ProviderTask(key, f"id-{key}", "m", "succeeded", billed, cost)


def test_a_billed_task_with_no_attempt_is_an_orphan_charged_its_cost():
    # GIVEN a provider task no attempt carries, billed 120 000
    seen = ProviderDay("replicate", DAY, (task("p1", cost=120_000),))

    # WHEN compared with empty books
    [charge] = compare(seen, books(), worst)

    # THEN it is charged once, unattributed, under its own id, with the provider's id
    assert (charge.charge_id, charge.reason) == ("replicate:p1", "orphan")
    assert (charge.target_micros, charge.provider_ids, charge.day) == (120_000, ("id-p1",), DAY)


def test_an_orphan_of_unknown_cost_is_charged_the_worst_case():
    seen = ProviderDay("veo", DAY, (task("j9/attempt-1"),))
    [charge] = compare(seen, books(), worst)
    assert charge.target_micros == WORST and charge.charge_id == "veo:j9~attempt-1"


def test_a_task_an_attempt_recorded_or_holds_for_is_not_charged():
    seen = ProviderDay("replicate", DAY, (task("p1"), task("p2")))
    recorded = {"p1": Recorded(False, 50_000, 100_000), "p2": Recorded(True, 0, 100_000)}
    assert compare(seen, books(recorded), worst) == []


def test_a_billed_task_whose_attempt_closed_at_zero_is_charged_the_attempts_hold():
    # GIVEN the provider billed p1, but its attempt was closed charging nothing
    seen = ProviderDay("runway", DAY, (task("p1"),))
    recorded = {"p1": Recorded(False, 0, 600_000)}

    [charge] = compare(seen, books(recorded), worst)

    assert (charge.reason, charge.target_micros) == ("unrecorded", 600_000)


def test_an_unbilled_task_or_one_of_unknown_billing_with_an_attempt_is_not_charged():
    seen = ProviderDay("replicate", DAY, (task("p1", billed=False), task("p2", billed=None)))
    assert compare(seen, books({"p2": Recorded(False, 0, 1)}), worst) == []


def test_a_task_already_charged_is_not_charged_again():
    seen = ProviderDay("replicate", DAY, (task("p1", cost=10),))
    assert compare(seen, books(charged={task_charge_id("replicate", "p1"): 10}), worst) == []


def test_a_total_above_the_books_is_charged_the_excess_and_grows_only_by_what_is_new():
    # GIVEN Runway used $1.00 today and our attempts recorded $0.60
    seen = ProviderDay("runway", DAY, (), total_micros=1_000_000)

    # WHEN compared: the excess is the target of the day's total record
    [charge] = compare(seen, books(recorded=600_000), worst)
    assert (charge.charge_id, charge.target_micros) == (total_charge_id("runway", DAY), 400_000)

    # THEN once charged, the same view charges nothing; a grown total raises the target
    charged = {charge.charge_id: 400_000}
    assert compare(seen, books(recorded=600_000, charged=charged), worst) == []
    grown = ProviderDay("runway", DAY, (), total_micros=1_100_000)
    [more] = compare(grown, books(recorded=600_000, charged=charged), worst)
    assert more.target_micros == 500_000


def test_a_total_counts_the_per_task_charges_already_made_or_made_now():
    # GIVEN a stored task charged as unrecorded (0.3) and a total 0.3 above the attempts
    seen = ProviderDay("runway", DAY, (task("t1", cost=300_000),), total_micros=900_000)
    recorded = {"t1": Recorded(False, 0, 600_000)}

    charges = compare(seen, books(recorded, recorded=600_000), worst)

    # THEN the task is charged, and the total adds nothing on top of it
    assert [c.reason for c in charges] == ["unrecorded"]


def test_a_total_at_or_below_the_books_charges_nothing():
    seen = ProviderDay("runway", DAY, (), total_micros=500_000)
    assert compare(seen, books(recorded=600_000), worst) == []


def test_worst_case_is_the_highest_price_times_the_longest_duration():
    catalog = default_catalog()
    spec = catalog.model("runway", "gen4.5")
    assert worst_case(catalog, "runway", "gen4.5") == 120_000 * max(spec.durations_s)
    assert worst_case(catalog, "runway", "") >= worst_case(catalog, "runway", "gen4_turbo")


def test_a_charge_spends_from_the_pool_and_keeps_both_invariants():
    pool = ledger.new_pool("global", DAY, 1_000)
    shard = ledger.Shard("global", DAY, 3, allot_micros=100, held_micros=40, spent_micros=10)

    charged, pool = ledger.charge(shard, pool, 300)

    assert (charged.spent_micros, charged.allot_micros, charged.overrun_micros) == (310, 400, 0)
    assert pool.unallotted_micros + charged.allot_micros == 1_000 + 100
    assert charged.held_micros + charged.spent_micros <= charged.allot_micros


def test_a_charge_the_pool_cannot_cover_leaves_the_scope_in_deficit():
    pool = ledger.new_pool("global", DAY, 100)
    charged, pool = ledger.charge(ledger.Shard("global", DAY, 0), pool, 250)
    assert pool.unallotted_micros == -150 and charged.draining
