"""Cancelling a job (issue 12, part 3) on the embedded pipeline: in every state a job can be
in, a cancel ends it CANCELLED with one ``job.cancelled``, charging what its provider
charged and releasing the rest of its hold; a cancel that arrives too late is reported, and
the books balance every time."""

from __future__ import annotations

import logging

import pytest

from aiprod.domain.catalog import default_catalog
from aiprod.repositories import slots as slot_records
from aiprod.services.capacity_admin import set_capacity
from support.cancels import cancel
from support.scenarios import TEXT, attempts, runway_job
from support.stuck import deliver, drop


def test_a_queued_job_is_cancelled_without_rendering_and_its_hold_released(pipeline):
    # GIVEN runway limited to one render at a time, busy with a long render, and a second
    # job waiting for the slot
    p = pipeline(workers=1, simulation={"runway": {"latency_s": 10_000}}, render_deadline_s=5)
    set_capacity(p.store, default_catalog(), "runway", 1)
    p.run(runway_job(1), runway_job(2))
    held = p.ledger()["held_micros"]
    assert p.job("q2")["attempts"][0]["state"] == "QUEUED"

    # WHEN the waiting job is cancelled
    cancel(p, "q2", requested_by="ops@example.com")

    # THEN it ended CANCELLED, nothing was rendered for it, its hold is released (the
    # running job's is kept), and one job.cancelled says who and why
    job = p.job("q2")
    assert (job["status"], job["reason"]) == ("CANCELLED", "cancel_requested")
    assert job["cost_micros"] == 0
    assert attempts(job) == [("runway", "FAILED")]
    assert job["attempts"][0]["error_code"] == "cancel_requested"
    assert len(p.submitted("runway")) == 1
    assert p.ledger()["held_micros"] == held - job["attempts"][0]["hold_micros"]
    [event] = p.events("job.cancelled", "q2")
    assert event["status"] == "CANCELLED"
    assert event["message"] == "cancelled by ops@example.com: not needed"
    assert p.events("job.failed", "q2") == []
    assert p.job("q1")["status"] == "RUNNING"


def test_a_dispatched_job_is_cancelled_and_its_task_later_does_nothing(pipeline):
    # GIVEN a job whose render task is published but not yet delivered
    p = pipeline()
    set_capacity(p.store, default_catalog(), "runway", 2)
    lost = drop(p, "render-runway")
    p.run(runway_job(1))
    assert p.job("q1")["attempts"][0]["state"] == "DISPATCHED"
    assert slot_records.in_use(p.store, "runway") == 1

    # WHEN it is cancelled, and the task reaches the render function afterwards
    cancel(p, "q1")
    deliver(p, "render-runway", "render_runway")
    for data in lost:
        p.app.renderer("runway").handle(data, {})
    p.drain()

    # THEN it is CANCELLED, its slot and hold are given back, and nothing was rendered
    assert p.job("q1")["status"] == "CANCELLED"
    assert slot_records.in_use(p.store, "runway") == 0
    assert p.submitted("runway") == []
    assert len(p.events("job.cancelled", "q1")) == 1
    p.assert_books_balanced()


def test_a_cancel_after_the_job_ended_is_refused_and_changes_nothing(pipeline):
    # GIVEN a job that succeeded
    p = pipeline()
    p.run(TEXT)
    before = p.job("t1")
    assert before["status"] == "SUCCEEDED"

    # WHEN it is cancelled
    cancel(p, "t1")

    # THEN the job is untouched, and the refusal says why
    assert p.job("t1") == before
    [refused] = p.events("job.cancel_refused", "t1")
    assert (refused["reason"], refused["status"]) == ("already_finished", "SUCCEEDED")
    assert p.events("job.cancelled") == []


def test_a_cancel_for_no_such_job_is_refused(pipeline):
    p = pipeline()
    cancel(p, "nobody")
    [refused] = p.events("job.cancel_refused", "nobody")
    assert (refused["reason"], refused["status"]) == ("not_found", "UNKNOWN")
    assert p.store.get("jobs", "nobody") is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"action": "pause", "job_id": "t1"}',
        b'{"action": "cancel"}',
        b'{"action": "cancel", "job_id": "../etc"}',
        b'{"action": "cancel", "job_id": "t1", "reason": "' + b"x" * 501 + b'"}',
        b'{"action": "cancel", "job_id": "t1", "extra": 1}',
    ],
    ids=["not json", "unknown action", "no job_id", "bad job_id", "reason too long", "extra"],
)
def test_a_malformed_control_message_is_dead_lettered_without_its_content(pipeline, body, caplog):
    p = pipeline()
    with caplog.at_level(logging.ERROR):
        p.app.job_control.handle(body, {})
    [dead] = p.bus.published["dead-letter"]
    assert (dead.data, dead.attributes) == (body, {"reason": "invalid", "source": "job-control"})
    [line] = [r for r in caplog.records if "control message" in r.getMessage()]
    assert "etc" not in line.getMessage() and "xxxx" not in line.getMessage()


def test_a_redelivered_cancel_cancels_once(pipeline):
    p = pipeline(workers=1, simulation={"runway": {"latency_s": 10_000}}, render_deadline_s=5)
    set_capacity(p.store, default_catalog(), "runway", 1)
    p.run(runway_job(1), runway_job(2))

    cancel(p, "q2")
    cancel(p, "q2")

    assert p.job("q2")["status"] == "CANCELLED"
    assert len(p.events("job.cancelled", "q2")) == 1
    assert p.events("job.cancel_refused", "q2") == []


@pytest.mark.parametrize(
    ("simulation", "status", "events"),
    [
        ({}, "SUCCEEDED", ["job.cancel_refused", "job.completed"]),
        ({"failure_rate": 1.0}, "CANCELLED", ["job.cancelled"]),
    ],
    ids=["finished first: delivered, charged, reported", "failed: cancelled, no fallback"],
)
def test_a_cancel_that_finds_the_outcome_stored_lets_it_end_the_job(
    pipeline, simulation, status, events
):
    # GIVEN a job whose render ended at the provider, its outcome stored but not yet applied
    p = pipeline(simulation={"runway": simulation})
    lost = drop(p, "render-outcomes")
    p.run(TEXT)
    assert p.job("t1")["attempts"][0]["state"] == "REPORTED"

    # WHEN it is cancelled, then the outcome is applied
    cancel(p, "t1")
    deliver(p, "render-outcomes", "handle_outcome")
    for data in lost:
        p.app.outcomes.handle(data, {})
    p.drain()

    # THEN a render that finished first is delivered and charged, the refusal saying so;
    # a failed one ends the job CANCELLED instead of falling back
    job = p.job("t1")
    assert job["status"] == status
    assert len(job["attempts"]) == 1
    assert p.submitted("replicate") == []
    assert [e["type"] for e in p.events(job_id="t1")][-len(events) :] == events
    if status == "SUCCEEDED":
        [refused] = p.events("job.cancel_refused", "t1")
        assert refused["reason"] == "finished_first"
        assert job["cost_micros"] > 0
    p.assert_books_balanced()
