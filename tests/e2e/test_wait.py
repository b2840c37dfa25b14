"""``aiprod wait`` against the real functions on the emulators (issue 12): it follows a job
published a moment before, returns when the job ends, and says how it ended by its exit
status (0 succeeded, 3 failed, 124 still running at the timeout)."""

from __future__ import annotations

import json

import pytest

from aiprod import topology
from support import job_docs
from support.cli import aiprod

pytestmark = pytest.mark.emulator

ENV = {
    "AIPROD_SIMULATION": json.dumps(
        {"replicate": {"latency_s": 2}, "runway": {"down": True}, "veo": {"latency_s": 600}}
    ),
    "AIPROD_POLL_INTERVAL_S": "0.1",
}


def test_wait_follows_jobs_to_their_end_and_exits_by_outcome(make_stack):
    # GIVEN replicate rendering in 2 s, runway down, veo slower than any wait here
    stack = make_stack(ENV)
    requests = {
        "ok": {"job_id": "w-ok", "prompt": "a kite", "backends": ["replicate"]},
        "down": {"job_id": "w-down", "prompt": "a kite", "backends": ["runway"]},
        "slow": {"job_id": "w-slow", "prompt": "a kite", "duration_s": 8, "backends": ["veo"]},
    }
    for request in requests.values():
        stack.bus.publish(topology.JOBS, json.dumps(request).encode())

    # WHEN aiprod wait follows each
    ok = aiprod(stack, "wait", "w-ok", "--timeout", "90", "--interval", "0.2")
    down = aiprod(stack, "wait", "w-down", "--timeout", "90", "--interval", "0.2")
    slow = aiprod(stack, "wait", "w-slow", "--timeout", "3", "--interval", "0.2")

    # THEN it returned when each job ended, with the job's outcome as its exit status, and
    # printed the progress it saw
    docs = job_docs(stack.store)
    assert (ok.returncode, docs["w-ok"]["status"]) == (0, "SUCCEEDED"), ok.stderr
    assert (down.returncode, docs["w-down"]["status"]) == (3, "FAILED"), down.stderr
    assert "SUCCEEDED" in ok.stdout and "FAILED" in down.stdout
    # AND a job still rendering at the timeout: 124, and it is indeed still running
    assert slow.returncode == 124 and docs["w-slow"]["status"] == "RUNNING", slow.stderr
