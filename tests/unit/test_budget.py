"""The budget as admission sees it: totals over shards, thresholds, days and scopes.

Holds and settlements are the sharded ledger's: tests/unit/test_ledger_shards.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aiprod.domain.budget import (
    BudgetState,
    BudgetTotals,
    Thresholds,
    budget_day,
    headroom,
    scopes_for,
    tightest,
    totals,
)
from aiprod.domain.ledger import Shard

LIMIT = 1_000_000


def entry(spent: int = 0, held: int = 0, limit: int = LIMIT, scope: str = "global") -> BudgetTotals:
    return BudgetTotals(scope, "2027-01-15", limit, held_micros=held, spent_micros=spent)


def test_totals_sum_the_shards_that_exist():
    # GIVEN two of a scope's shards written, the others never touched
    shards = [
        Shard("global", "2027-01-15", 0, allot_micros=500_000, held_micros=100_000),
        Shard(
            "global",
            "2027-01-15",
            3,
            allot_micros=400_000,
            spent_micros=300_000,
            overrun_micros=20_000,
        ),
    ]

    # WHEN admission sums them
    day = totals("global", "2027-01-15", LIMIT, shards)

    # THEN held, spent and overrun are the shards' sums, and the headroom follows
    assert (day.held_micros, day.spent_micros, day.overrun_micros) == (100_000, 300_000, 20_000)
    assert (day.committed, day.headroom) == (400_000, 600_000)


def test_exactly_the_headroom_fits():
    # GIVEN 700k spent and 200k held of 1M
    base = entry(spent=700_000, held=200_000)

    # THEN exactly the headroom fits, one micro more does not
    assert base.fits(100_000) and not base.fits(100_001)
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


def test_the_key_names_scope_and_day():
    assert entry(scope="tenant:acme").key == "tenant:acme@2027-01-15"
