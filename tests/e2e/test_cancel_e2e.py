"""Cancelling jobs end to end (issue 12, part 3): every function under functions-framework on
the emulators, the live adapters on the provider fakes, ``aiprod cancel`` run as an operator
would. A queued job ends CANCELLED without reaching the provider; a running one is stopped
at the provider (its fake records the cancel call), charged exactly what the provider bills
for it, with one ``job.cancelled``; the books balance."""

from __future__ import annotations

import json

import pytest

from aiprod.repositories import jobs as job_records
from support import EventTap, statuses, wait_for
from support.cli import aiprod
from support.ledger import assert_books_balanced

pytestmark = pytest.mark.emulator

LONG = 10**6  # looks before a fake's task is done: it renders until cancelled


def _job(job_id: str, backend: str) -> dict:
    return {
        "job_id": job_id,
        "prompt": "a lighthouse in fog",
        "duration_s": 5,
        "backends": [backend],
    }


def _stack(make_stack, fakes):
    env = {**fakes.env(), "AIPROD_POLL_INTERVAL_S": "0.05"}
    return make_stack(env)


def _doc(stack, job_id: str) -> dict | None:
    return stack.store.get(job_records.COLLECTION, job_id)


def _running_with_task(stack, job_id: str) -> str:
    def stored():
        doc = _doc(stack, job_id)
        attempt = (doc or {}).get("attempts", [{}])[-1]
        return attempt.get("provider_task_id") if attempt.get("state") == "RUNNING" else None

    return wait_for(stored, timeout=60, interval=0.2, describe=lambda: statuses(stack.store))


def _one_cancelled(tap: EventTap, job_id: str) -> dict:
    def cancelled():
        return [e.payload for e in tap.poll() if e.job_id == job_id and e.type == "job.cancelled"]

    wait_for(cancelled, timeout=30, interval=0.2, describe=lambda: tap.types_for(job_id))
    return cancelled()


def test_a_queued_then_a_running_runway_job_are_cancelled(make_stack, fakes):
    # GIVEN runway running one render at a time, its renders lasting until cancelled, one
    # job rendering and a second waiting for the slot
    fakes.runway.polls_before_done = LONG
    stack = _stack(make_stack, fakes)
    tap = EventTap(stack.bus)
    assert aiprod(stack, "capacity", "set", "runway", "1").returncode == 0
    stack.bus.publish("jobs", json.dumps(_job("run-1", "runway")).encode())
    task_id = _running_with_task(stack, "run-1")
    stack.bus.publish("jobs", json.dumps(_job("wait-1", "runway")).encode())
    wait_for(lambda: tap.has("wait-1", "job.queued"), timeout=30, interval=0.2)

    # WHEN the waiting job is cancelled with the CLI
    done = aiprod(stack, "cancel", "wait-1", "--reason", "campaign pulled", timeout=90)

    # THEN it ended CANCELLED without reaching runway, and its hold is released
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "status": "CANCELLED",
        "cost_micros": 0,
    }
    [event] = _one_cancelled(tap, "wait-1")
    assert event["message"].endswith(": campaign pulled")
    assert len(fakes.runway.started) == 1

    # WHEN the running job is cancelled too
    done = aiprod(stack, "cancel", "run-1", timeout=90)

    # THEN runway's cancel endpoint got its task, the job ended CANCELLED charged exactly
    # what runway bills for the task, one job.cancelled said so, and the books balance
    assert done.returncode == 0, done.stderr
    assert fakes.runway.cancelled == [task_id]
    doc = _doc(stack, "run-1")
    assert doc["status"] == "CANCELLED"
    assert doc["attempts"][0]["error_code"] == "cancelled"
    assert doc["cost_micros"] == fakes.runway.billed()[task_id] > 0
    [event] = _one_cancelled(tap, "run-1")
    assert event["cost_micros"] == doc["cost_micros"]
    docs = [_doc(stack, j) for j in ("run-1", "wait-1")]
    assert_books_balanced(stack.store, docs)
    assert [e.type for e in tap.poll() if e.type == "job.failed"] == []


def test_a_running_replicate_job_is_cancelled_at_the_provider(make_stack, fakes):
    # GIVEN a replicate render that lasts until cancelled
    fakes.replicate.polls_before_done = LONG
    stack = _stack(make_stack, fakes)
    tap = EventTap(stack.bus)
    stack.bus.publish("jobs", json.dumps(_job("rep-1", "replicate")).encode())
    task_id = _running_with_task(stack, "rep-1")

    # WHEN a client cancels it with a message on the control topic (no CLI)
    body = {"action": "cancel", "job_id": "rep-1", "requested_by": "studio-app"}
    stack.bus.publish("job-control", json.dumps(body).encode())

    # THEN replicate's cancel endpoint got the prediction, and the job ended CANCELLED at
    # what replicate bills for it, with one job.cancelled
    [event] = _one_cancelled(tap, "rep-1")
    assert fakes.replicate.cancelled == [task_id]
    doc = _doc(stack, "rep-1")
    assert (doc["status"], event["message"]) == ("CANCELLED", "cancelled by studio-app")
    assert doc["cost_micros"] == event["cost_micros"] == fakes.replicate.billed()[task_id]
    assert_books_balanced(stack.store, [doc])
