"""A mixed batch of 32 job requests through the real functions, with runway scripted down.

The batch is on disk (``tests/fixtures/e2e_batch.jsonl``): one line per job, ``message`` is
the exact JSON published to the jobs topic and ``expect`` is its known outcome:

- runway-first chains (quality priority): runway fails, the next backend of the chain renders
  it (``path`` lists the backends tried, ``model`` the one that rendered);
- chains only runway can serve (10 s, 1:1, quality 0.93 image): ``chain_exhausted``;
- chains that start elsewhere (cost and speed priorities, 1080p, 480p, allow-lists): one
  attempt on the first backend;
- impossible capabilities: ``no_capable_backend``; malformed requests: ``invalid`` (the
  ``field`` at fault is named in the rejection, and the job is stored REJECTED saying so).

Runway's circuit opens after its third failure, which would reroute jobs admitted later (a
race with admission). So runway's render subscription is held until every job is admitted:
each runway-first job is then known to try runway first, and the circuit still opens (checked).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aiprod.domain.catalog import default_catalog
from aiprod.services.capacity_admin import set_capacity
from support import EventTap, job_docs, statuses, wait_for
from support.ledger import (
    assert_allotments_conserved,
    assert_books_balanced,
    totals_by_scope,
)
from support.push import push_paused
from support.tenants import configure, publish

pytestmark = pytest.mark.emulator

BATCH = Path(__file__).resolve().parents[1] / "fixtures" / "e2e_batch.jsonl"
RUNWAY_DOWN = {
    "AIPROD_SIMULATION": json.dumps({"runway": {"down": True}}),
    "AIPROD_POLL_INTERVAL_S": "0.05",
    "AIPROD_DAILY_BUDGET_USD": "100",
}
FINAL_EVENT = {"SUCCEEDED": "job.completed", "FAILED": "job.failed", "REJECTED": "job.rejected"}


def load_batch() -> list[dict]:
    return [json.loads(line) for line in BATCH.read_text().splitlines() if line.strip()]


def expected_cost(message: dict, expect: dict) -> int:
    """The worst-case price of the model that rendered it (the simulation reports exactly it)."""
    if expect["status"] != "SUCCEEDED":
        return 0
    spec = default_catalog().model(expect["path"][-1], expect["model"])
    return spec.price_for(message.get("resolution", "720p"), message.get("duration_s", 5))


def test_mixed_batch_reaches_known_outcomes_and_the_ledger_is_exact(make_stack):
    # GIVEN a stack whose runway provider refuses every render, and a batch of 32 requests
    batch = load_batch()
    assert len(batch) >= 30
    expect = {row["message"]["job_id"]: row["expect"] for row in batch}
    stored = list(expect)  # an invalid request with a usable job_id is stored REJECTED too
    stack = make_stack(RUNWAY_DOWN)
    configure(stack, "studio")  # its jobs publish on its own topic
    tap = EventTap(stack.bus)
    # (room for every job at once: each job's route is checked here, the queue in test_burst;
    # a job queued behind runway's opening circuit would move to a free backend instead)
    for backend, spec in default_catalog().backends.items():
        set_capacity(stack.store, default_catalog(), backend, spec.capacity.max_concurrent, 10**5)

    def describe() -> str:
        events = {}
        for event in tap.poll():
            events.setdefault(event.job_id, []).append(event.type)
        return f"jobs: {statuses(stack.store)}; events: {events}"

    # WHEN the whole batch is published at once (runway's renders held until all are admitted)
    with push_paused(stack, "render_runway"):
        for row in batch:
            publish(stack, row["message"])
        wait_for(
            lambda: set(stored) <= set(job_docs(stack.store)),
            timeout=90,
            interval=0.5,
            describe=describe,
        )

    # THEN every job reaches a terminal state and its final event is published
    def finished():
        docs = job_docs(stack.store)
        if any(docs.get(j, {}).get("status") not in FINAL_EVENT for j in stored):
            return None
        final = {j: FINAL_EVENT[e["status"]] for j, e in expect.items()}
        return docs if all(tap.has(j, kind) for j, kind in final.items()) else None

    docs = wait_for(finished, timeout=150, interval=0.5, describe=describe)

    # AND each job ended as its fixture line says, with the backends tried in that order
    for row in batch:
        message, want = row["message"], row["expect"]
        job_id = message["job_id"]
        job = docs[job_id]
        assert (job["status"], job.get("reason")) == (want["status"], want.get("reason")), job
        if want.get("reason") == "invalid":  # the document says why, naming the field
            assert want["field"] in job["message"], job
        tried = [(a["backend"], a["state"]) for a in job["attempts"]]
        if want["status"] == "REJECTED":
            assert tried == [] and job["cost_micros"] == 0, job
            continue
        path = want["path"]
        last_state = "SUCCEEDED" if want["status"] == "SUCCEEDED" else "FAILED"
        assert tried == [(b, "FAILED") for b in path[:-1]] + [(path[-1], last_state)], job_id
        for attempt in job["attempts"]:
            if attempt["backend"] == "runway":  # refused at submit: nothing to pay for
                assert (attempt["error_code"], attempt["cost_micros"]) == ("unavailable", 0)
        if want["status"] == "SUCCEEDED":
            assert job["attempts"][-1]["model"] == want["model"], job_id
            assert job["cost_micros"] == expected_cost(message, want) > 0, job_id
            assert job["output_uri"] == f"sim://{path[-1]}/{job_id}/attempt-{len(path)}.mp4"
        else:
            assert job["cost_micros"] == 0, job_id

    # AND the events tell users the same story
    events = tap.poll()
    for row in batch:
        job_id, want = row["message"]["job_id"], row["expect"]
        kind = FINAL_EVENT[want["status"]]
        final = [e.payload for e in events if e.job_id == job_id and e.type == kind]
        assert final, f"{job_id}: no {kind}"
        payload = final[-1]
        assert payload["status"] == want["status"], payload
        assert payload.get("reason") == want.get("reason"), payload
        if want.get("reason") == "invalid":
            assert want["field"] in payload["message"], payload
            continue
        if want["status"] != "REJECTED":
            assert payload["backends_tried"] == want["path"], payload
            assert payload["cost_micros"] == docs[job_id]["cost_micros"], payload
            assert any(e.job_id == job_id and e.type == "job.accepted" for e in events)
    completed = [e.payload for e in events if e.type == "job.completed" and e.job_id == "b09"]
    assert completed[-1]["metadata"] == {"campaign": "spring"}
    assert {e.type for e in events if e.job_id == "b30"} == {"job.rejected"}

    # AND runway's repeated failures opened its circuit
    circuit = stack.store.get("backends", "runway")
    assert circuit is not None and circuit["state"] == "open", circuit
    assert circuit["last_error"] == "unavailable"

    # AND the ledger is exact: nothing held, spent == the sum of the jobs' costs, per scope
    jobs = [docs[job_id] for job_id in stored]
    assert_books_balanced(stack.store, jobs)
    assert_allotments_conserved(stack.store)
    totals = totals_by_scope(stack.store)
    assert set(totals) == {"global", "tenant:studio"}, totals
    assert totals["global"]["spent_micros"] == sum(
        expected_cost(row["message"], row["expect"]) for row in batch
    )
