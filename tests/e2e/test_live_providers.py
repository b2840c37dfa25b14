"""End to end with the real provider adapters: every function under functions-framework on
the emulators, the SDKs talking to the provider fakes, outputs in the storage emulator.

Runway's fake is down (503 on every create): the job retries Runway, falls back to Veo, and
Veo's video lands in the bucket; the completion event carries its gs:// URI and Veo's cost.
"""

from __future__ import annotations

import json

import pytest

from aiprod import topology
from fakes.base import VIDEO, Reply
from support import EventTap, jobs_terminal, statuses, wait_for

pytestmark = pytest.mark.emulator

JOB = {"job_id": "live-1", "prompt": "a lighthouse in fog", "duration_s": 8}
VEO_COST = 8 * 100_000  # Veo 3.1 Fast, 720p, video only: $0.10/s (catalog)


def test_runway_down_falls_back_to_veo_whose_video_lands_in_the_bucket(
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

    # THEN it completes
    def completed():
        docs = jobs_terminal(stack.store, [JOB["job_id"]])
        return docs if docs and tap.has(JOB["job_id"], "job.completed") else None

    def seen() -> str:
        return f"jobs: {statuses(stack.store)}; events: {[e.type for e in tap.events]}"

    doc = wait_for(completed, timeout=60, interval=0.25, describe=seen)[JOB["job_id"]]

    # AND on Veo, after Runway's attempts failed as server errors (each create sent once)
    backends = [(a["backend"], a["state"], a.get("error_code")) for a in doc["attempts"]]
    assert backends[-1][:2] == ("veo", "SUCCEEDED"), backends
    runway = [b for b in backends if b[0] == "runway"]
    assert runway and all(b[1:] == ("FAILED", "server_error") for b in runway)
    assert len(fakes.runway.calls("POST")) == len(runway)

    # AND the event carries the gs:// URI of the video in the bucket, and Veo's cost
    event = next(e.payload for e in tap.events if e.type == "job.completed")
    attempt = len(doc["attempts"])
    name = f"videos/{JOB['job_id']}/attempt-{attempt}/sample_0.mp4"
    assert event["output_uri"] == f"gs://{fakes.bucket}/{name}"
    assert (event["backend"], event["cost_micros"]) == ("veo", VEO_COST)
    assert storage_emulator.read(fakes.bucket, name) == VIDEO
    assert storage_emulator.blob(fakes.bucket, name).metadata["job_id"] == JOB["job_id"]

    # AND no key or token reached any function's log
    for function in ("render_runway", "render_veo", "route_job", "handle_outcome"):
        text = stack.log(function, 5000)
        assert not [s for s in fakes.secrets() if s in text], function
