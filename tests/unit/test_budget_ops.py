"""``aiprod budget show|set|audit`` on the embedded store, with shards made by real holds.

Holds and settlements go through ``services.ledger.Ledger`` in store transactions (and, for
the audit, through the whole embedded pipeline), so the commands read what the functions write.
"""

from __future__ import annotations

import json
import random

import pytest

from aiprod.adapters.embedded_bus import EmbeddedBus
from aiprod.adapters.embedded_store import EmbeddedStore
from aiprod.bootstrap import App
from aiprod.config import Settings
from aiprod.domain.budget import BudgetState, scopes_for
from aiprod.domain.jobs import AttemptState, ChainStep, JobStatus, add_attempt, new_job
from aiprod.domain.ledger import day_key
from aiprod.exceptions import OperatorInputError
from aiprod.repositories.jobs import load as load_job
from aiprod.repositories.jobs import save as save_job
from aiprod.repositories.ledger import LIMITS, POOLS, SHARDS
from aiprod.services import budget_admin
from aiprod.services.budget_admin import change_limit, day_view, parse_limit, parse_scope
from aiprod.services.budget_audit import audit
from aiprod.services.ledger import Ledger
from aiprod_tools import cli
from aiprod_tools.cli import context

T0 = 1_800_000_000.0  # the fake clock's start (tests/fakes/clock.py)
DAY = "2027-01-15"  # its budget day in UTC
USD = 1_000_000
SETTINGS = Settings(global_limit_micros=10 * USD, tenant_limits={"social": 2 * USD})


@pytest.fixture
def store() -> EmbeddedStore:
    return EmbeddedStore()


@pytest.fixture
def book() -> Ledger:
    return Ledger(SETTINGS, random.Random(7))


@pytest.fixture
def aiprod(store, clock, monkeypatch, capsys):
    """Run ``aiprod <argv>`` against ``store``; returns (exit code, stdout, stderr)."""
    bus = EmbeddedBus(workers=1)
    app = App(SETTINGS, store=store, bus=bus, clock=clock)
    monkeypatch.setattr(context, "make_app", lambda: app)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    yield run
    bus.close()


def hold(store, book, scopes, amount, day=DAY) -> list[str] | None:
    return store.run_transaction(lambda tx: book.reserve(tx, scopes, day, amount))


def settle(store, book, keys, held, actual) -> None:
    store.run_transaction(lambda tx: book.settle(tx, keys, held, actual))


def dispatch(store, book, job_id: str, amount: int, tenant: str | None = None) -> list[str]:
    """What the router does: one transaction holds the budget and writes attempt 1."""

    def body(tx):
        keys = book.reserve(tx, scopes_for(tenant), DAY, amount)
        job = new_job({"job_id": job_id}, "h", tenant, T0, status=JobStatus.RUNNING)
        step = ChainStep(backend="runway", model="gen4.5", hold_micros=amount)
        save_job(tx, add_attempt(job, step, keys, T0))
        return keys

    return store.run_transaction(body)


def finish(store, book, job_id: str, cost: int) -> None:
    """What the outcome handler does: settle the hold to the cost and close the attempt."""

    def body(tx):
        job = load_job(tx, job_id)
        attempt = job.current
        book.settle(tx, attempt.ledger_keys, attempt.hold_micros, cost)
        closed = attempt.model_copy(update={"state": AttemptState.SUCCEEDED, "cost_micros": cost})
        update = {"attempts": [closed], "cost_micros": cost, "status": JobStatus.SUCCEEDED}
        save_job(tx, job.model_copy(update=update))

    store.run_transaction(body)


# -- show ---------------------------------------------------------------------------------------


def test_show_sums_every_scope_over_its_shards(store, book):
    # GIVEN holds on global and on tenant:social, some settled
    keys = hold(store, book, ("global", "tenant:social"), 1_500_000)
    hold(store, book, ("global",), 600_000)
    settle(store, book, keys, 1_500_000, 1_200_000)

    # WHEN the day is viewed
    views = {v.entry.scope: v for v in day_view(store, SETTINGS, DAY)}

    # THEN each scope shows its limit, held, spent, headroom and state
    glob, social = views["global"], views["tenant:social"]
    assert list(views) == ["global", "tenant:social"]
    assert (glob.entry.limit_micros, glob.entry.held_micros, glob.entry.spent_micros) == (
        10 * USD,
        600_000,
        1_200_000,
    )
    assert glob.entry.headroom == 10 * USD - 1_800_000
    assert glob.state is BudgetState.NORMAL and glob.limit_source == "pool"
    assert (social.entry.spent_micros, social.entry.headroom) == (1_200_000, 800_000)
    assert social.state is BudgetState.NORMAL  # 60 %
    assert 1 <= glob.shards_used <= 2 and social.shards_used == 1


def test_show_applies_the_thresholds(store, book):
    hold(store, book, ("tenant:social",), 1_500_000)  # 75 % of 2 USD
    assert day_view(store, SETTINGS, DAY)[0].state is BudgetState.WARNING
    hold(store, book, ("tenant:social",), 400_000)  # 95 %
    assert day_view(store, SETTINGS, DAY)[0].state is BudgetState.CRITICAL
    hold(store, book, ("tenant:social",), 100_000)  # 100 %
    [view] = day_view(store, SETTINGS, DAY)
    assert (view.state, view.entry.headroom) == (BudgetState.EXHAUSTED, 0)


def test_show_counts_every_shard_whatever_this_shell_configures(store):
    # GIVEN functions with 16 shards that held on many of them
    wide = Ledger(SETTINGS, random.Random(1))
    for _ in range(40):
        hold(store, wide, ("global",), 10_000)
    used = {d["index"] for d in store.list(SHARDS)}
    assert len(used) > 4

    # WHEN an operator's shell says 1 shard
    [view] = day_view(store, Settings(ledger_shards=1), DAY)

    # THEN the view still counts and sums them all
    assert (view.shards_used, view.entry.held_micros) == (len(used), 400_000)


def test_show_lists_a_runtime_limit_with_no_activity_and_ignores_other_days(store, book):
    store.set(LIMITS, "tenant:quiet", {"scope": "tenant:quiet", "limit_micros": 3 * USD})
    hold(store, book, ("global",), 500_000, day="2027-01-14")
    [view] = day_view(store, SETTINGS, DAY)
    assert (view.entry.scope, view.entry.limit_micros, view.limit_source) == (
        "tenant:quiet",
        3 * USD,
        "runtime",
    )
    assert (view.shards_used, view.entry.committed) == (0, 0)


def test_budget_show_prints_a_table_and_json_in_micro_usd(aiprod, store, book):
    hold(store, book, ("global", "tenant:social"), 1_800_000)

    code, out, _ = aiprod("budget", "show")
    assert code == 0 and "budget day 2027-01-15" in out
    social = next(line for line in out.splitlines() if line.startswith("tenant:social"))
    cells = ["tenant:social", "$2.00", "$1.80", "$0.00", "$0.20", "90.0%", "critical", "$0.00"]
    assert social.split() == [*cells, "1"]

    code, out, _ = aiprod("budget", "show", "--json", "--day", DAY)
    shown = {s["scope"]: s for s in json.loads(out)["scopes"]}
    assert shown["tenant:social"] == {
        "scope": "tenant:social",
        "day": DAY,
        "limit_micros": 2_000_000,
        "held_micros": 1_800_000,
        "spent_micros": 0,
        "headroom_micros": 200_000,
        "overrun_micros": 0,
        "utilization_pct": 90.0,
        "state": "critical",
        "shards_used": 1,
        "unallotted_micros": 200_000,  # the hold took what it needed
        "limit_source": "pool",
    }


def test_budget_show_refuses_a_malformed_day(aiprod):
    with pytest.raises(SystemExit):
        aiprod("budget", "show", "--day", "15/01/2027")


# -- set ----------------------------------------------------------------------------------------


def test_raising_a_limit_takes_effect_at_once(store, book):
    # GIVEN tenant:social nearly exhausted: a 0.60 USD hold no longer fits
    dispatch(store, book, "a", 1_700_000, tenant="social")
    assert hold(store, book, ("tenant:social",), 600_000) is None

    # WHEN its limit is raised to 5 USD
    change = change_limit(store, SETTINGS, "tenant:social", DAY, 5 * USD)

    # THEN the same hold fits right away, and the limit is kept for later days
    assert (change.before.entry.limit_micros, change.after.entry.limit_micros) == (2 * USD, 5 * USD)
    assert change.after.entry.headroom == 5 * USD - 1_700_000
    assert dispatch(store, book, "b", 600_000, tenant="social") is not None
    assert store.get(LIMITS, "tenant:social")["limit_micros"] == 5 * USD
    assert audit(store, SETTINGS, DAY).discrepancies == []


def test_lowering_below_what_is_committed_leaves_no_headroom(aiprod, store, book):
    # GIVEN 1.50 USD spent and 0.90 USD held on global
    dispatch(store, book, "a", 1_500_000)
    finish(store, book, "a", 1_500_000)
    dispatch(store, book, "b", 900_000)

    # WHEN global is lowered to 2 USD
    code, out, _ = aiprod("budget", "set", "global", "2")

    # THEN it is applied, with before and after and a note that it is over-committed
    assert code == 0
    assert "global: limit set to $2.00 for 2027-01-15" in out
    assert "limit       $10.00  $2.00" in out
    assert "note: global has $2.40 committed" in out and "-$0.40" in out
    [view] = day_view(store, SETTINGS, DAY)
    assert (view.entry.headroom, view.unallotted_micros, view.state) == (
        0,
        -400_000,
        BudgetState.EXHAUSTED,
    )
    # AND nothing more fits, yet the books still balance (the pool carries the deficit)
    assert hold(store, book, ("global",), 1) is None
    assert audit(store, SETTINGS, DAY).ok


def test_set_resizes_shards_beyond_this_shells_configuration(store):
    # GIVEN 16-shard functions that spread allotment over many shards
    wide = Ledger(SETTINGS, random.Random(3))
    for _ in range(30):
        hold(store, wide, ("global",), 100_000)

    # WHEN a 1-shard shell lowers global to exactly what is held
    change_limit(store, Settings(ledger_shards=1), "global", DAY, 3 * USD)

    # THEN every shard gave back its free allotment: nothing more fits anywhere
    assert all(d["allot_micros"] == d["held_micros"] for d in store.list(SHARDS))
    assert store.get(POOLS, day_key("global", DAY))["unallotted_micros"] == 0
    assert hold(store, wide, ("global",), 1) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["global", "-5"], "limit '-5' cannot be negative"),
        (["global", "ten"], "not a finite decimal amount"),
        (["global", "NaN"], "not a finite decimal amount"),
        (["global", "0.0000001"], "more precision than one micro-USD"),
        (["team:x", "5"], "neither 'global' nor 'tenant:<name>'"),
        (["tenant:", "5"], "neither"),
        (["tenant:Big Co", "5"], "neither"),
    ],
)
def test_set_refuses_bad_input_and_writes_nothing(aiprod, store, argv, message):
    code, out, err = aiprod("budget", "set", *argv)
    assert (code, out) == (1, "")
    assert message in err
    assert store.list(LIMITS) == [] and store.list(POOLS) == []


def test_amounts_and_scopes_parse_exactly():
    assert parse_limit("12.5") == 12_500_000
    assert parse_limit("0.000001") == 1
    assert parse_limit("0") == 0
    assert parse_scope("tenant:social-2") == "tenant:social-2"
    with pytest.raises(OperatorInputError):
        parse_limit("Infinity")
    with pytest.raises(OperatorInputError):
        parse_scope("Global")


# -- audit --------------------------------------------------------------------------------------


def test_audit_of_a_real_run_balances(pipeline, aiprod, monkeypatch):
    # GIVEN jobs run through the embedded pipeline, one falling back after runway fails
    p = pipeline(workers=1, simulation={"runway": {"down": True}})
    p.run(
        {"job_id": "a", "prompt": "a kite", "tenant": "social"},
        {"job_id": "b", "prompt": "a boat"},
    )
    monkeypatch.setattr(context, "make_app", lambda: p.app)

    # WHEN the day is audited
    code, out, _ = aiprod("budget", "audit")

    # THEN it balances and says what it looked at
    assert code == 0, out
    assert "the books balance" in out
    report = audit(p.store, p.app.settings, DAY)
    assert report.jobs_scanned == 2 and report.attempts >= 2 and report.steady


def test_audit_checks_open_holds_against_their_attempts(store, book):
    dispatch(store, book, "open", 700_000, tenant="social")
    dispatch(store, book, "done", 500_000)
    finish(store, book, "done", 650_000)  # an overrun of 0.15 USD
    assert audit(store, SETTINGS, DAY).discrepancies == []


def test_audit_reports_each_discrepancy_and_exits_1(aiprod, store, book):
    # GIVEN balanced books, then three kinds of damage
    [key] = dispatch(store, book, "a", 700_000)
    dispatch(store, book, "b", 300_000)
    finish(store, book, "b", 300_000)
    shard = store.get(SHARDS, key)
    store.set(SHARDS, key, {**shard, "held_micros": 0})  # a hold vanished
    pool = store.get(POOLS, day_key("global", DAY))
    store.set(
        POOLS, day_key("global", DAY), {**pool, "unallotted_micros": pool["unallotted_micros"] + 5}
    )
    job = store.get("jobs", "b")
    job["attempts"][0]["ledger_keys"] = [key.replace("#", "#9")]  # names a shard with nothing
    store.set("jobs", "b", job)

    # WHEN audited
    code, out, _ = aiprod("budget", "audit", "--day", DAY)

    # THEN every one is reported, and the exit code says so
    assert code == 1
    found = {(d.key, d.check) for d in audit(store, SETTINGS, DAY).discrepancies}
    assert (key, "held") in found
    assert (day_key("global", DAY), "conservation") in found
    assert (key.replace("#", "#9"), "spent") in found
    assert "discrepancies" in out and "conservation" in out


def test_audit_rereads_while_the_ledger_moves(store, book, monkeypatch):
    # GIVEN a ledger that changes while the jobs are read (a hold lands mid-scan)
    dispatch(store, book, "a", 100_000)
    reads = iter(range(100))
    real = budget_admin.read_books

    def moving(store_, day):
        if next(reads) == 1:
            dispatch(store, book, "b", 200_000)
        return real(store_, day)

    monkeypatch.setattr("aiprod.services.budget_audit.read_books", moving)
    # THEN the audit reads again and still balances
    report = audit(store, SETTINGS, DAY)
    assert report.steady and report.ok and report.attempts == 2
