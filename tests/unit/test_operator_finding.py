"""Finding jobs (issue 12, part 4): ``aiprod jobs list`` and ``aiprod wait``, driven through
the CLI against the embedded pipeline."""

from __future__ import annotations

import json

import pytest

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
