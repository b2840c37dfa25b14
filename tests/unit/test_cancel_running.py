"""Cancelling a job whose render is at the provider (issue 12, part 3), on the embedded
pipeline: a provider that can stop its task is asked to, and the task's end charges what the
provider reported; one that cannot (or whose stop fails) has the attempt closed at once and
its task charged when it ends; a create still in flight is stopped when its id arrives."""

from __future__ import annotations

import json

import pytest

from aiprod.domain.messages import ErrorClass
from aiprod.exceptions import ProviderError
from support.cancels import cancel
from support.scenarios import TEXT
from support.stuck import slow_runway, sweep


def hold_of(p, job_id: str = "t1") -> int:
    return p.job(job_id)["attempts"][0]["hold_micros"]


def test_a_running_render_is_stopped_and_charged_what_the_provider_reports(pipeline, clock):
    # GIVEN a 30 s runway render, watched for 10 s, then left to the reconciler (its task
    # stored)
    p = pipeline(**slow_runway(30))
    p.run(TEXT)
    assert clock() - clock.start == 10
    task_id = p.job("t1")["attempts"][0]["provider_task_id"]
    assert task_id and p.job("t1")["status"] == "RUNNING"
    hold = hold_of(p)

    # WHEN it is cancelled: the provider is asked to stop it, and a render function is
    # handed the task again to watch its end (its first watcher left)
    cancel(p, "t1")
    assert p.app.backend("runway").cancelled == [task_id]

    # THEN the job is CANCELLED, charged the third of its price that ran (10 of 30 s, the
    # simulated provider's bill), never fell back, and one job.cancelled carries that cost
    job = p.job("t1")
    assert job["status"] == "CANCELLED"
    assert job["cost_micros"] == hold * 10 // 30
    [attempt] = job["attempts"]
    assert (attempt["state"], attempt["error_code"]) == ("FAILED", "cancelled")
    assert p.submitted("replicate") == [] and p.submitted("veo") == []
    [event] = p.events("job.cancelled", "t1")
    assert event["cost_micros"] == hold * 10 // 30
    assert p.ledger()["spent_micros"] == hold * 10 // 30
    p.assert_books_balanced()
    # AND the cancel did not count against runway's health
    assert p.app.health.snapshot().get("runway") is None or (
        p.app.health.snapshot()["runway"].consecutive_failures == 0
    )


def _cannot_stop(backend, monkeypatch) -> None:
    monkeypatch.setattr(backend, "can_cancel", False)


def _stop_fails(backend, monkeypatch) -> None:
    def refuse(task_id, task):
        raise ProviderError(ErrorClass.RETRY_SAME, "runway answered 503", code="server_error")

    monkeypatch.setattr(backend, "cancel", refuse)


@pytest.mark.parametrize("provider", [_cannot_stop, _stop_fails], ids=["cannot stop", "stop fails"])
def test_a_render_that_cannot_be_stopped_ends_cancelled_at_once_and_is_charged_at_its_end(
    pipeline, clock, monkeypatch, provider
):
    # GIVEN a 30 s render left to the reconciler, on a provider whose stop is not possible
    p = pipeline(**slow_runway(30))
    p.run(TEXT)
    provider(p.app.backend("runway"), monkeypatch)
    hold = hold_of(p)

    # WHEN it is cancelled
    cancel(p, "t1")

    # THEN the job is CANCELLED at once, its hold released, its task kept as a late task
    job = p.job("t1")
    assert (job["status"], job["cost_micros"]) == ("CANCELLED", 0)
    assert job["attempts"][0]["late_task_lease"] is not None
    assert p.ledger()["held_micros"] == 0
    assert len(p.events("job.cancelled", "t1")) == 1

    # AND once the render ends, the reconciler charges what it cost: nothing is dropped
    clock.advance(30)
    report = sweep(p)
    assert report["late_charged"] == 1
    job = p.job("t1")
    assert (job["status"], job["cost_micros"]) == ("CANCELLED", hold)
    assert p.ledger()["spent_micros"] == hold
    p.assert_books_balanced()


def test_a_create_in_flight_is_closed_charged_its_hold_then_stopped_and_charged_its_cost(
    pipeline, clock, monkeypatch
):
    # GIVEN a runway create that the cancel overtakes: the submit intent is written, the
    # create not yet answered, when the cancel arrives
    p = pipeline(**slow_runway(30))
    backend = p.app.backend("runway")
    submit = backend.submit

    def overtaken(task, before_send=None):
        def intend():
            before_send()
            body = {"action": "cancel", "job_id": task.job_id}
            p.app.job_control.handle(json.dumps(body).encode(), {})
            # closed at once, charged its worst case (the create may reach the provider)
            [attempt] = p.job(task.job_id)["attempts"]
            assert attempt["state"] == "REPORTED"
            assert attempt["outcome"]["cost_micros"] == attempt["hold_micros"]
            assert attempt["outcome"]["cost_estimated"] is True

        return submit(task, before_send=intend)

    monkeypatch.setattr(backend, "submit", overtaken)

    # WHEN the job runs, its create answering after the cancel
    p.run(TEXT)

    # THEN the task the create made is asked to stop at once (nothing of it ran), and its
    # real cost (0) replaces the estimate: nothing held, nothing spent
    [task_id] = p.submitted("runway")
    assert backend.cancelled == [task_id]
    clock.advance(60)  # the late task's next look (its worker gave up on a still-open attempt)
    sweep(p)
    job = p.job("t1")
    assert (job["status"], job["cost_micros"]) == ("CANCELLED", 0)
    assert job["attempts"][0]["late_task_lease"] is None
    assert p.ledger()["spent_micros"] == 0
    assert len(p.events("job.cancelled", "t1")) == 1
    p.assert_books_balanced()
