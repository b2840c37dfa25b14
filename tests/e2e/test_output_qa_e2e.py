"""End to end, output QA: every function under functions-framework on the emulators, the
live adapters talking to the provider fakes, outputs in the storage emulator.

Runway renders a black clip. Its render function keeps it, checks it and rejects it
(``qa_failed``, FALLBACK), charged what Runway billed; the job falls back to Veo, whose good
clip is delivered. The completion event carries both QA reports, and the ledger charges both
renders and balances.
"""

from __future__ import annotations

import json

import pytest

from aiprod import topology
from support import EventTap, jobs_terminal, statuses, wait_for
from support.ledger import assert_books_balanced

pytestmark = pytest.mark.emulator

JOB = {"job_id": "qa-black-1", "prompt": "a lighthouse in fog", "duration_s": 8}


def test_a_black_clip_falls_back_and_a_good_clip_is_delivered(make_stack, fakes, storage_emulator):
    # GIVEN live providers on their fakes, Runway rendering black videos
    fakes.runway.output_defect = "black"
    env = {**fakes.env(), "AIPROD_POLL_INTERVAL_S": "0.05", "AIPROD_RETRY_BACKOFF_S": "0.05"}
    stack = make_stack(env)
    tap = EventTap(stack.bus)

    # WHEN a job Runway and Veo can both render is published
    stack.bus.publish(topology.JOBS, json.dumps(JOB).encode())

    # THEN it completes on Veo
    def completed():
        docs = jobs_terminal(stack.store, [JOB["job_id"]])
        return docs if docs and tap.has(JOB["job_id"], "job.completed") else None

    def seen() -> str:
        return f"jobs: {statuses(stack.store)}; events: {[e.type for e in tap.events]}"

    doc = wait_for(completed, timeout=90, interval=0.25, describe=seen)[JOB["job_id"]]
    tried = [(a["backend"], a["state"], a.get("error_code")) for a in doc["attempts"]]
    assert tried == [("runway", "FAILED", "qa_failed"), ("veo", "SUCCEEDED", None)], tried

    # AND the event carries the QA of both attempts: Runway's black clip, Veo's clean pass
    event = next(e.payload for e in tap.events if e.type == "job.completed")
    runway, veo = event["attempts"]
    assert "not_black" in runway["qa"]["reason"] and runway["qa"]["score"] == 0.0
    black = next(c for c in runway["qa"]["checks"] if c["name"] == "not_black")
    assert black["passed"] is False and black["value"] == 1.0 and black["measured"] == "1"
    assert veo["qa"]["passed"] is True and event["qa"] == veo["qa"]
    assert event["output_uri"] == veo["qa"]["checked_uri"]
    assert event["output_uri"].startswith(f"gs://{fakes.bucket}/videos/{JOB['job_id']}/")

    # AND the rejected clip is kept, labelled, but not delivered
    rejected = f"videos/{JOB['job_id']}/attempt-1.mp4"
    assert storage_emulator.blob(fakes.bucket, rejected).metadata["qa"] == "failed"
    assert runway["qa"]["checked_uri"] == f"gs://{fakes.bucket}/{rejected}"

    # AND both renders are charged exactly what each provider billed, and the books balance
    runway_task, veo_task = (a["provider_task_id"] for a in doc["attempts"])
    assert doc["attempts"][0]["cost_micros"] == fakes.runway.billed()[runway_task] > 0
    assert doc["attempts"][1]["cost_micros"] == fakes.veo.billed()[veo_task] > 0
    assert event["cost_micros"] == fakes.runway.billed_total() + fakes.veo.billed_total()
    assert_books_balanced(stack.store, [doc])
