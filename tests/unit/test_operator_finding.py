"""Finding jobs and circuits (issue 12, part 4): ``aiprod jobs list``, ``aiprod wait`` and
``aiprod circuits`` (with an operator override, logged and audited), driven through the CLI
against the embedded pipeline."""

from __future__ import annotations

import json

import pytest

from aiprod.domain.observed_quality import Observed, blended
from aiprod.repositories import circuits, operator_audit
from aiprod_tools import cli
from aiprod_tools.cli import context, listing
from support.scenarios import TEXT


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """``run_cli(app, *argv)`` → (exit status, stdout, stderr), the app as ``make_app``."""

    def run(app, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setattr(context, "make_app", lambda: app)
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def _ids(out: str) -> list[str]:
    return [j["job_id"] for j in json.loads(out)["jobs"]]


def test_jobs_list_filters_by_tenant_status_and_since(pipeline, clock, run_cli):
    # GIVEN runway down, an old job, then a tenant's job that falls back and one pinned there
    p = pipeline(simulation={"runway": {"down": True}})
    p.run({"job_id": "old", "prompt": "an old boat"})
    clock.advance(3 * 3600)
    p.run({"job_id": "ok1", "prompt": "a boat", "tenant": "acme"})
    clock.advance(60)
    p.run({"job_id": "bad1", "prompt": "a boat", "tenant": "acme", "backends": ["runway"]})
    p.run({"job_id": "other", "prompt": "a boat", "tenant": "zeta"})

    # WHEN jobs are listed from two hours back THEN the old one is not, newest first
    status, out, _ = run_cli(p.app, "jobs", "list", "--since", "2h", "--json")
    assert status == 0
    assert set(_ids(out)) == {"ok1", "bad1", "other"} and _ids(out)[-1] == "ok1"
    # AND tenant and status filter what was read
    assert _ids(run_cli(p.app, "jobs", "list", "--tenant", "acme", "--json")[1]) == ["bad1", "ok1"]
    _, out, _ = run_cli(p.app, "jobs", "list", "--status", "failed", "--json")
    (failed,) = json.loads(out)["jobs"]
    assert (failed["job_id"], failed["status"], failed["backend"]) == ("bad1", "FAILED", "runway")
    # AND a date reaches the old job; the rows carry what a table shows
    _, out, _ = run_cli(p.app, "jobs", "list", "--since", "2027-01-15", "--json")
    assert set(_ids(out)) == {"old", "ok1", "bad1", "other"}
    assert json.loads(out)["jobs"][-1]["backend"] == "replicate"  # runway down: fell back


def test_jobs_list_says_when_it_read_its_limit(pipeline, run_cli):
    p = pipeline()
    p.run(TEXT, {"job_id": "t2", "prompt": "another"})

    status, out, err = run_cli(p.app, "jobs", "list", "--limit", "1", "--json")

    assert status == 0 and json.loads(out)["truncated"] is True and len(_ids(out)) == 1
    assert "limit of 1" in err
    with pytest.raises(SystemExit) as usage:
        run_cli(p.app, "jobs", "list", "--since", "yesterday")
    assert usage.value.code == 2
    assert "t2" in run_cli(p.app, "jobs", "list")[1]  # the table


def test_wait_follows_a_job_to_success_and_to_failure(pipeline, run_cli):
    # GIVEN a job published, not yet routed
    p = pipeline(simulation={"runway": {"down": True}})
    p.bus.publish("jobs", json.dumps(TEXT).encode())

    # WHEN waited for THEN it shows the changes and exits 0 once the job succeeded
    status, out, _ = run_cli(p.app, "wait", "t1", "--timeout", "30", "--interval", "0.01")
    assert status == 0
    assert out.splitlines()[-1].startswith("SUCCEEDED") and "attempt 2 on replicate" in out
    # AND a job that fails ends with its own exit status
    pinned = {"job_id": "f1", "prompt": "a boat", "backends": ["runway"]}
    p.bus.publish("jobs", json.dumps(pinned).encode())
    status, out, _ = run_cli(p.app, "wait", "f1", "--timeout", "30", "--interval", "0.01")
    assert status == listing.EXIT["FAILED"] == 3 and out.splitlines()[-1].startswith("FAILED")
    p.drain()


def test_wait_gives_up_at_its_timeout(pipeline, run_cli):
    p = pipeline()
    status, out, err = run_cli(p.app, "wait", "never", "--timeout", "0.05", "--interval", "0.01")
    assert status == listing.EXIT_TIMEOUT == 124
    assert out.strip() == "no job 'never' yet" and "still not over" in err


def test_circuits_show_every_backend_and_the_output_store(pipeline, run_cli):
    p = pipeline()
    status, out, _ = run_cli(p.app, "circuits", "--json")

    shown = json.loads(out)
    assert status == 0 and shown["override"] is None
    names = [c["backend"] for c in shown["circuits"]]
    assert names == [*p.app.catalog.fallback_order, "output-store"]
    assert all(c["state"] == "closed" and c["admits"] for c in shown["circuits"])
    assert "output-store" in run_cli(p.app, "circuits")[1]


def test_an_operator_opens_and_closes_a_circuit_logged_and_audited(
    pipeline, clock, run_cli, monkeypatch
):
    # GIVEN an operator named in the environment
    monkeypatch.setenv("AIPROD_OPERATOR", "alice@example.com")
    p = pipeline()

    # WHEN they open runway's circuit
    status, out, err = run_cli(p.app, "circuits", "--open", "runway", "--json")

    # THEN it is open and admits nothing
    assert status == 0
    shown = json.loads(out)
    runway = next(c for c in shown["circuits"] if c["backend"] == "runway")
    assert (runway["state"], runway["admits"]) == ("open", False)
    # AND the change is audited: who, what, before and after
    record = shown["override"]
    stored = p.store.get(operator_audit.COLLECTION, record["audit_id"])
    assert stored["operator"] == "alice@example.com" and stored["action"] == "circuit.open"
    assert (stored["before"]["state"], stored["after"]["state"]) == ("closed", "open")
    assert stored["target"] == "runway" and stored["at"] == p.app.clock()
    # AND logged as one JSON line naming the operator
    logged = json.loads(err.strip().splitlines()[-1])
    assert (logged["operator"], logged["backend"]) == ("alice@example.com", "runway")
    assert logged["event"] == "circuit.open" and logged["severity"] == "WARNING"
    # AND routing honours it: a new job goes elsewhere
    p.run(TEXT)
    assert p.job("t1")["attempts"][0]["backend"] != "runway"

    # WHEN they close it later THEN it admits again, and a second record says so
    clock.advance(5)
    status, out, _ = run_cli(p.app, "circuits", "--close", "runway")
    assert status == 0 and "open -> closed by alice@example.com" in out
    records = operator_audit.since(p.store, 0.0)
    assert [r["action"] for r in records] == ["circuit.open", "circuit.close"]
    assert p.store.get("backends", "runway")["state"] == "closed"


def test_an_override_of_no_circuit_is_refused(pipeline, run_cli):
    p = pipeline()
    status, _, err = run_cli(p.app, "circuits", "--close", "midjourney")
    assert status == 1 and "no circuit 'midjourney'" in err
    assert operator_audit.since(p.store, 0.0) == []


def test_circuits_show_each_models_measured_and_blended_quality(pipeline, run_cli):
    # GIVEN runway's gen4.5 (catalog 0.95) with one checked output, rejected
    p = pipeline()
    seen = Observed().record(0.0, p.app.clock())
    p.store.run_transaction(lambda tx: circuits.save_quality(tx, "runway", {"gen4.5": seen}))

    status, out, _ = run_cli(p.app, "circuits", "--json")

    # THEN every catalog model is listed; the observed one with its measurement and blend
    rows = {(r["backend"], r["model"]): r for r in json.loads(out)["quality"]}
    assert status == 0 and len(rows) == sum(len(b.models) for b in p.app.catalog.backends.values())
    gen45 = rows[("runway", "gen4.5")]
    assert (gen45["catalog"], gen45["measured"], gen45["outputs"]) == (0.95, 0.0, 1.0)
    assert gen45["blended"] == blended(0.95, seen, p.app.clock()) < 0.95
    veo = rows[("veo", "veo-3.1-generate-001")]
    assert (veo["measured"], veo["blended"]) == (None, veo["catalog"])
    assert "blended" in run_cli(p.app, "circuits")[1]
