"""``aiprod cancel`` (issue 12, part 3) against the embedded pipeline: it publishes the
cancel on the control topic, follows the job to its end, and exits by what happened."""

from __future__ import annotations

import getpass
import json

import pytest

from aiprod.domain.catalog import default_catalog
from aiprod.services.capacity_admin import set_capacity
from aiprod_tools import cli
from aiprod_tools.cli import cancel as cancel_cli
from aiprod_tools.cli import context
from support.scenarios import TEXT, runway_job
from support.stuck import deliver, drop


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """``run_cli(app, *argv)`` → (exit status, stdout, stderr), the app as ``make_app``."""
    monkeypatch.setattr(cancel_cli, "POLL_S", 0.01)

    def run(app, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setattr(context, "make_app", lambda: app)
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def queued_behind_a_long_render(pipeline):
    p = pipeline(workers=1, simulation={"runway": {"latency_s": 10_000}}, render_deadline_s=5)
    set_capacity(p.store, default_catalog(), "runway", 1)
    p.run(runway_job(1), runway_job(2))
    return p


def test_cancel_follows_the_job_to_cancelled_and_exits_0(pipeline, run_cli):
    p = queued_behind_a_long_render(pipeline)

    status, out, _ = run_cli(p.app, "cancel", "q2", "--reason", "campaign pulled")

    assert status == 0
    assert json.loads(out.strip().splitlines()[-1]) == {"status": "CANCELLED", "cost_micros": 0}
    [sent] = p.bus.published["job-control"]
    assert json.loads(sent.data) == {
        "action": "cancel",
        "job_id": "q2",
        "reason": "campaign pulled",
        "requested_by": f"cli:{getpass.getuser()}",
    }
    assert p.job("q2")["cancel"]["reason"] == "campaign pulled"


def test_cancel_refuses_a_job_that_is_over_or_unknown_without_publishing(pipeline, run_cli):
    p = pipeline()
    p.run(TEXT)

    assert run_cli(p.app, "cancel", "t1") == (
        1,
        "",
        "aiprod: t1 is over (SUCCEEDED): nothing to cancel\n",
    )
    assert run_cli(p.app, "cancel", "nope") == (1, "", "aiprod: no job 'nope'\n")
    assert p.bus.published.get("job-control", []) == []


def test_cancel_no_wait_publishes_and_returns(pipeline, run_cli):
    p = queued_behind_a_long_render(pipeline)

    status, out, _ = run_cli(p.app, "cancel", "q2", "--no-wait", "--by", "ops")

    assert status == 0 and "cancel published" in out
    [sent] = p.bus.published["job-control"]
    assert json.loads(sent.data)["requested_by"] == "ops"


def test_cancel_exits_3_when_the_render_finished_first(pipeline, monkeypatch, capsys):
    # GIVEN a job whose render succeeded, its outcome not applied yet
    p = pipeline()
    lost = drop(p, "render-outcomes")
    p.run(TEXT)
    monkeypatch.setattr(context, "make_app", lambda: p.app)

    def outcome_arrives(_seconds: float) -> None:
        deliver(p, "render-outcomes", "handle_outcome")
        for data in lost:
            p.app.outcomes.handle(data, {})
        lost.clear()

    # WHEN it is cancelled, and the outcome is applied while the CLI follows the job
    args = cli.parser().parse_args(["cancel", "t1"])
    status = cancel_cli.cancel(args, sleep=outcome_arrives)

    # THEN the CLI says the render finished first, and exits 3
    _, err = capsys.readouterr()
    assert status == 3
    assert "ended SUCCEEDED before the cancel" in err
    assert p.job("t1")["status"] == "SUCCEEDED"
