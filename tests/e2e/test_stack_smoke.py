"""Smoke: three job requests through the real functions on the emulators, runway down.

Every hop is real: Pub/Sub push to functions-framework, Firestore transactions, publishes
between functions; only the providers are simulated.
"""

from __future__ import annotations

import json

import pytest

from aiprod import topology
from support import EventTap, jobs_terminal, statuses, wait_for

pytestmark = pytest.mark.emulator

RUNWAY_DOWN = {
    "AIPROD_SIMULATION": json.dumps({"runway": {"down": True}}),
    "AIPROD_POLL_INTERVAL_S": "0.05",
}
REQUESTS = [
    {"job_id": "s1", "prompt": "a cat"},
    {"job_id": "s2", "prompt": "a dog", "image_uri": "https://example.com/a.png"},
    {"job_id": "s3", "prompt": ""},
]
VALID = ["s1", "s2"]


def test_valid_jobs_fall_back_from_runway_and_the_ledger_settles(make_stack):
    # GIVEN a stack whose runway provider is down
    stack = make_stack(RUNWAY_DOWN)
    tap = EventTap(stack.bus)

    # WHEN two valid requests and one invalid request are published
    for request in REQUESTS:
        stack.bus.publish(topology.JOBS, json.dumps(request).encode())

    # THEN the valid jobs end, the invalid one is rejected, and each completion is announced
    def settled():
        docs = jobs_terminal(stack.store, VALID)
        done = all(tap.has(job_id, "job.completed") for job_id in VALID)
        return docs if docs and done and tap.has("s3", "job.rejected") else None

    def seen() -> str:
        events = [(e.job_id, e.type) for e in tap.events]
        return f"jobs: {statuses(stack.store)}; events: {events}"

    docs = wait_for(settled, timeout=30, interval=0.25, describe=seen)

    # AND each valid job succeeded on another backend after runway failed
    for job_id in VALID:
        doc = docs[job_id]
        backends = [attempt["backend"] for attempt in doc["attempts"]]
        assert doc["status"] == "SUCCEEDED", doc
        assert backends[0] == "runway" and doc["attempts"][0]["state"] == "FAILED"
        assert backends[-1] != "runway" and doc["attempts"][-1]["state"] == "SUCCEEDED"
        assert doc["cost_micros"] > 0

    # AND the budget holds are all released and spending equals what the jobs cost
    ledger = [entry for entry in stack.store.list("ledger") if entry["scope"] == "global"]
    assert ledger, "no global ledger entry was written"
    assert all(entry["held_micros"] == 0 for entry in ledger), ledger
    assert sum(entry["spent_micros"] for entry in ledger) == sum(
        docs[job_id]["cost_micros"] for job_id in VALID
    )
