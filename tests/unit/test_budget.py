"""Budget arithmetic in integer micro-USD: holds, settlement, thresholds, days and scopes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiprod.domain.budget import (
    BudgetState,
    LedgerEntry,
    Thresholds,
    budget_day,
    headroom,
    scopes_for,
    tightest,
)

LIMIT = 1_000_000


def entry(spent: int = 0, held: int = 0, limit: int = LIMIT, scope: str = "global") -> LedgerEntry:
    return LedgerEntry(scope, "2027-01-15", limit, held_micros=held, spent_micros=spent)


def test_hold_reserves_and_settle_replaces_it_with_the_actual_cost():
    # GIVEN a hold of 600k against a 1M limit
    held = entry().hold(600_000)
    assert (held.held_micros, held.spent_micros, held.headroom) == (600_000, 0, 400_000)

    # WHEN it settles at 450k
    settled = held.settle(600_000, 450_000)

    # THEN the hold is gone and only the actual cost is spent
    assert (settled.held_micros, settled.spent_micros, settled.overrun_micros) == (0, 450_000, 0)
    assert settled.headroom == 550_000


def test_settle_with_zero_releases_the_hold():
    released = entry(spent=100_000).hold(300_000).settle(300_000, 0)
    assert (released.held_micros, released.spent_micros) == (0, 100_000)


def test_settle_above_the_hold_charges_the_overrun_and_notes_it():
    # GIVEN a provider that reports more than the worst case we held
    settled = entry().hold(200_000).settle(200_000, 260_000)

    # THEN the real cost is spent and the excess is recorded as an overrun
    assert (settled.spent_micros, settled.overrun_micros, settled.held_micros) == (
        260_000,
        60_000,
        0,
    )


@pytest.mark.parametrize(("held", "actual"), [(-1, 0), (10, -1), (500_001, 0)])
def test_settle_refuses_impossible_amounts(held, actual):
    with pytest.raises(ValueError):
        entry().hold(500_000).settle(held, actual)


def test_hold_that_does_not_fit_raises_and_changes_nothing():
    # GIVEN 700k spent and 200k held of 1M
    base = entry(spent=700_000, held=200_000)

    # THEN exactly the headroom fits, one micro more does not, and negative holds are refused
    assert base.fits(100_000) and not base.fits(100_001)
    assert base.hold(100_000).committed == LIMIT
    with pytest.raises(ValueError):
        base.hold(100_001)
    with pytest.raises(ValueError):
        base.hold(-1)
    assert base.committed == 900_000


def test_headroom_is_never_negative_and_takes_the_tightest_scope():
    over = entry(spent=1_200_000)  # an overrun took spend past the limit
    assert over.headroom == 0
    assert headroom([entry(spent=100_000), entry(spent=700_000, scope="tenant:a")]) == 300_000
    assert headroom([]) == 0


@pytest.mark.parametrize(
    ("used", "state"),
    [
        (0.0, BudgetState.NORMAL),
        (0.69, BudgetState.NORMAL),
        (0.699999, BudgetState.NORMAL),
        (0.70, BudgetState.WARNING),
        (0.89, BudgetState.WARNING),
        (0.90, BudgetState.CRITICAL),
        (0.999999, BudgetState.CRITICAL),
        (1.0, BudgetState.EXHAUSTED),
        (1.2, BudgetState.EXHAUSTED),
    ],
)
def test_thresholds_at_70_and_90_percent(used, state):
    # GIVEN spend at a share of the limit (held counts the same as spent)
    spent = round(used * LIMIT)
    assert entry(spent=spent).state(Thresholds()) is state
    assert entry(held=spent // 2, spent=spent - spent // 2).state(Thresholds()) is state


def test_thresholds_are_configurable():
    assert entry(spent=500_000).state(Thresholds(warning=0.5, critical=0.8)) is BudgetState.WARNING


def test_a_zero_limit_is_exhausted():
    assert entry(limit=0).state(Thresholds()) is BudgetState.EXHAUSTED
    assert not entry(limit=0).fits(1)


def test_tightest_state_wins_across_scopes():
    entries = [entry(spent=100_000), entry(spent=950_000, scope="tenant:a")]
    assert tightest(entries, Thresholds()) is BudgetState.CRITICAL
    assert tightest([], Thresholds()) is BudgetState.NORMAL


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("moment", "zone", "day"),
    [
        ("2027-01-15T23:30:00", "UTC", "2027-01-15"),
        ("2027-01-15T23:30:00", "Asia/Tokyo", "2027-01-16"),
        ("2027-01-15T14:59:59", "Asia/Tokyo", "2027-01-15"),
        ("2027-01-15T15:00:00", "Asia/Tokyo", "2027-01-16"),
        ("2027-01-16T04:00:00", "America/Los_Angeles", "2027-01-15"),
        ("2027-07-16T06:59:59", "America/Los_Angeles", "2027-07-15"),  # summer time: UTC-7
    ],
)
def test_budget_day_follows_the_configured_time_zone(moment, zone, day):
    assert budget_day(_ts(moment), zone) == day


def test_scopes_for_global_and_tenant():
    assert scopes_for(None) == ("global",)
    assert scopes_for("acme") == ("global", "tenant:acme")


def test_ledger_key_names_scope_and_day():
    assert entry(scope="tenant:acme").key == "tenant:acme@2027-01-15"


@settings(max_examples=200, deadline=None)
@given(data=st.data(), limit=st.integers(0, 5_000_000))
def test_holds_never_overcommit_and_settlement_accounts_for_every_micro(data, limit):
    # GIVEN an empty day and a random run of holds, settlements (below and above the hold)
    # and releases
    ledger = LedgerEntry("global", "2027-01-15", limit)
    open_holds: list[int] = []
    settled_actuals: list[int] = []
    overruns = 0

    def settle(index: int, actual: int) -> None:
        nonlocal ledger, overruns
        amount = open_holds.pop(index)
        ledger = ledger.settle(amount, actual)
        settled_actuals.append(actual)
        overruns += max(0, actual - amount)

    steps = data.draw(st.lists(st.sampled_from(["hold", "settle", "release"]), max_size=40))
    for step in steps:
        if step == "hold":
            amount = data.draw(st.integers(0, limit + 500_000), label="hold")
            before = ledger
            try:
                ledger = ledger.hold(amount)
            except ValueError:
                # WHEN a hold would pass the limit THEN it is refused and nothing changed
                assert before.committed + amount > limit
            else:
                open_holds.append(amount)
            # THEN a hold never takes spent + held past the limit
            assert ledger is before or ledger.committed <= limit
        elif open_holds:
            index = data.draw(st.integers(0, len(open_holds) - 1), label="which")
            held = open_holds[index]
            actual = 0 if step == "release" else data.draw(st.integers(0, 2 * held + 1))
            settle(index, actual)
        assert ledger.held_micros == sum(open_holds)

    # WHEN everything still held is settled
    while open_holds:
        settle(0, data.draw(st.integers(0, 2 * open_holds[0] + 1), label="final"))

    # THEN spend is exactly the sum of actual costs, nothing is held, overruns are all noted
    assert ledger.held_micros == 0
    assert ledger.spent_micros == sum(settled_actuals)
    assert ledger.overrun_micros == overruns
