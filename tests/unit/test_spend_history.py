"""Spend history (issue 12, part 5): ``aiprod spend`` by day, tenant and backend over the
ledger's days, through the CLI against the embedded pipeline; ``spend audit`` still routed."""

from __future__ import annotations

import json
from dataclasses import asdict

from aiprod.repositories import unattributed
from aiprod.repositories.unattributed import UnattributedCharge
from aiprod_tools import cli
from aiprod_tools.cli import context, spend

DAY1, DAY2 = "2027-01-15", "2027-01-16"  # the fake clock's day, and the next


def _cost(p, *job_ids: str) -> int:
    return sum(p.job(j)["cost_micros"] for j in job_ids)


def _attempt_costs(p, backend: str, *job_ids: str) -> int:
    attempts = [a for j in job_ids for a in p.job(j)["attempts"] if a["backend"] == backend]
    return sum(a["cost_micros"] for a in attempts)


def _two_days(pipeline, clock):
    """Day 1: a tenant's job and one with no tenant; day 2: spend the audit charged with no
    job (unattributed, on replicate), then two tenants' jobs, one pinned to replicate."""
    p = pipeline()
    p.run({"job_id": "a1", "prompt": "a boat", "tenant": "acme"}, {"job_id": "n1", "prompt": "x"})
    clock.advance(86_400)
    p.seed_ledger("global", 123)
    charge = UnattributedCharge(
        "replicate:p9", "replicate", DAY2, "global", 123, f"global@{DAY2}#000", ["p9"], "seen", 0.0
    )
    p.store.set(unattributed.COLLECTION, charge.charge_id, asdict(charge))
    pinned = {"job_id": "a2", "prompt": "a boat", "tenant": "acme", "backends": ["replicate"]}
    p.run(pinned, {"job_id": "z2", "prompt": "a boat", "tenant": "zeta"})
    return p


def _spend(monkeypatch, capsys, app, *argv: str) -> dict:
    monkeypatch.setattr(context, "make_app", lambda: app)
    assert cli.main(["spend", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _rows(shown: dict) -> dict[str, int]:
    return {r[shown["by"]]: r["spent_micros"] for r in shown["rows"]}


def test_spend_by_day_is_the_ledgers_days(pipeline, clock, monkeypatch, capsys):
    # GIVEN two days of jobs, and an unattributed charge on the second
    p = _two_days(pipeline, clock)

    # WHEN spend is shown by day over two days
    shown = _spend(monkeypatch, capsys, p.app, "--days", "2")

    # THEN each day is the global spend the ledger holds: its jobs, and the charge
    assert shown["days"] == [DAY1, DAY2] and shown["scope"] == "global"
    assert _rows(shown) == {DAY1: _cost(p, "a1", "n1"), DAY2: _cost(p, "a2", "z2") + 123}
    assert shown["total_micros"] == shown["ledger_micros"] > 0
    # AND one tenant's days are its own scope; one day back is today only
    acme = _spend(monkeypatch, capsys, p.app, "--days", "2", "--tenant", "acme")
    assert (acme["scope"], _rows(acme)) == (
        "tenant:acme",
        {DAY1: _cost(p, "a1"), DAY2: _cost(p, "a2")},
    )
    assert list(_rows(_spend(monkeypatch, capsys, p.app, "--days", "1"))) == [DAY2]


def test_spend_by_tenant_names_what_no_tenant_explains(pipeline, clock, monkeypatch, capsys):
    p = _two_days(pipeline, clock)

    shown = _spend(monkeypatch, capsys, p.app, "--days", "2", "--by", "tenant")

    # the rest of the global spend: the job with no tenant, and the unattributed charge
    expected = {"-": _cost(p, "n1") + 123, "acme": _cost(p, "a1", "a2"), "zeta": _cost(p, "z2")}
    assert _rows(shown) == expected
    assert shown["total_micros"] == shown["ledger_micros"]
    one = _spend(monkeypatch, capsys, p.app, "--days", "2", "--by", "tenant", "--tenant", "zeta")
    assert _rows(one) == {"zeta": _cost(p, "z2")}


def test_spend_by_backend_adds_up_to_the_ledger(pipeline, clock, monkeypatch, capsys):
    p = _two_days(pipeline, clock)
    jobs = ("a1", "n1", "a2", "z2")

    shown = _spend(monkeypatch, capsys, p.app, "--days", "2", "--by", "backend")

    # each backend's attempts on those days, and the charge on its provider
    rows = _rows(shown)
    assert rows == {
        "runway": _attempt_costs(p, "runway", *jobs),
        "replicate": _attempt_costs(p, "replicate", *jobs) + 123,
    }
    assert rows["runway"] > 0 and rows["replicate"] > 123
    assert shown["total_micros"] == shown["ledger_micros"] and shown["truncated"] is False
    # AND a tenant's backends are its own jobs' attempts (no unattributed charge)
    acme = _spend(monkeypatch, capsys, p.app, "--days", "1", "--by", "backend", "--tenant", "acme")
    assert _rows(acme) == {"replicate": _cost(p, "a2")}
    assert acme["total_micros"] == acme["ledger_micros"]


def test_spend_prints_a_table_and_keeps_its_audit_verb(pipeline, clock, monkeypatch, capsys):
    p = _two_days(pipeline, clock)
    monkeypatch.setattr(context, "make_app", lambda: p.app)

    assert cli.main(["spend", "--days", "2", "--by", "tenant"]) == 0
    out = capsys.readouterr().out
    assert "acme" in out and "zeta" in out and "total" in out and "unattributed" in out
    assert cli.parser().parse_args(["spend"]).run is spend.history
    assert cli.parser().parse_args(["spend", "audit", "--json"]).run is spend.audit
