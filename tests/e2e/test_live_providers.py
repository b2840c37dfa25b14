"""End to end with the real provider adapters: every function under functions-framework on
the emulators, the SDKs talking to the provider fakes, outputs in the storage emulator.

Runway's fake answers 503 to a create (which may hide a task a gateway lost): the attempt
waits, never sent again, until the reconciler closes it charging its hold; the job falls back
to Veo, whose video lands in the bucket; the completion event carries its gs:// URI.
"""

from __future__ import annotations

import json

import pytest

from aiprod import topology
from aiprod.repositories import jobs as job_records
from fakes.base import Reply
from support import EventTap, jobs_terminal, statuses, wait_for

pytestmark = pytest.mark.emulator

JOB = {"job_id": "live-1", "prompt": "a lighthouse in fog", "duration_s": 8}
VEO_COST = 8 * 100_000  # Veo 3.1 Fast, 720p, video only: $0.10/s (catalog)


def test_a_runway_503_is_charged_its_hold_and_veo_renders_into_the_bucket(
    make_stack, fakes, storage_emulator
):
    # GIVEN live providers on their fakes, with Runway answering 503 to every create
    fakes.runway.queue("create", *[Reply(503, {"error": "Service unavailable"})] * 10)
    env = {
        **fakes.env(),
        "AIPROD_POLL_INTERVAL_S": "0.05",
        "AIPROD_RETRY_BACKOFF_S": "0.05",
    }
    stack = make_stack(env)
    tap = EventTap(stack.bus)

    # WHEN a job that Runway and Veo can both render is published
    stack.bus.publish(topology.JOBS, json.dumps(JOB).encode())

    # THEN Runway's attempt waits, unconfirmed, its create sent once
    def unconfirmed():
        doc = stack.store.get(job_records.COLLECTION, JOB["job_id"])
        codes = [a.get("error_code") for a in (doc or {}).get("attempts", [])]
        return doc if codes == ["submit_unconfirmed"] else None

    def seen() -> str:
        return f"jobs: {statuses(stack.store)}; events: {[e.type for e in tap.events]}"

    wait_for(unconfirmed, timeout=60, interval=0.25, describe=seen)
    assert len(fakes.runway.calls("POST", "/v1/text_to_video")) == 1

    # WHEN Cloud Scheduler calls the reconciler (the attempt's watcher left: its lease ended)
    report = stack.call("reconcile")
    assert report["timed_out"] == 1, report

    # THEN the job completes on Veo, Runway's attempt charged its hold (a task may exist)
    def completed():
        docs = jobs_terminal(stack.store, [JOB["job_id"]])
        return docs if docs and tap.has(JOB["job_id"], "job.completed") else None

    doc = wait_for(completed, timeout=60, interval=0.25, describe=seen)[JOB["job_id"]]
    backends = [(a["backend"], a["state"], a.get("error_code")) for a in doc["attempts"]]
    assert backends == [
        ("runway", "FAILED", "submit_unconfirmed"),
        ("veo", "SUCCEEDED", None),
    ], backends
    runway = doc["attempts"][0]
    assert runway["cost_estimated"] and runway["cost_micros"] == runway["hold_micros"]
    assert len(fakes.runway.calls("POST", "/v1/text_to_video")) == 1

    # AND the event carries the gs:// URI of the video in the bucket, and Veo's cost
    event = next(e.payload for e in tap.events if e.type == "job.completed")
    attempt = len(doc["attempts"])
    name = f"videos/{JOB['job_id']}/attempt-{attempt}/sample_0.mp4"
    assert event["output_uri"] == f"gs://{fakes.bucket}/{name}"
    assert (event["backend"], doc["attempts"][-1]["cost_micros"]) == ("veo", VEO_COST)
    assert event["cost_micros"] == runway["cost_micros"] + VEO_COST  # the job's whole cost
    veo_operation = doc["attempts"][-1]["provider_task_id"]
    assert storage_emulator.read(fakes.bucket, name) == fakes.veo.video(veo_operation)
    assert storage_emulator.blob(fakes.bucket, name).metadata["job_id"] == JOB["job_id"]

    # AND no key or token reached any function's log
    for function in ("render_runway", "render_veo", "route_job", "handle_outcome"):
        text = stack.log(function, 5000)
        assert not [s for s in fakes.secrets() if s in text], function
