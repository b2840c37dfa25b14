"""The reconcile function over HTTP (as Cloud Scheduler calls it) recovers a lost render task.

The task is really lost: runway's push subscription is paused, the queued task is pulled and
acknowledged by the test, then pushing resumes. Only the reconciler can finish the job.
"""

from __future__ import annotations

import json

import pytest

from aiprod import topology
from support import jobs_terminal, statuses, wait_for
from support.push import set_push

pytestmark = pytest.mark.emulator

ENV = {"AIPROD_LEASE_S": "2", "AIPROD_POLL_INTERVAL_S": "0.05"}
JOB = {"job_id": "lost-1", "prompt": "a lighthouse at dusk"}


def lose_queued_task(stack, function: str) -> int:
    """Pull and acknowledge what waits on ``function``'s (paused) subscription."""
    name = topology.qualified(stack.prefix, topology.function(function).subscription)
    path = stack.bus.subscriber.subscription_path(stack.project, name)
    response = stack.bus.subscriber.pull(
        request={"subscription": path, "max_messages": 10, "return_immediately": True},
        timeout=5,
    )
    ack_ids = [received.ack_id for received in response.received_messages]
    if ack_ids:
        stack.bus.subscriber.acknowledge(request={"subscription": path, "ack_ids": ack_ids})
    return len(ack_ids)


def test_lost_render_task_is_redispatched_by_the_scheduled_function(make_stack):
    # GIVEN a stack with 2 s leases, and a job whose render task is lost
    stack = make_stack(ENV)
    set_push(stack, "render_runway", None)
    stack.bus.publish(topology.JOBS, json.dumps(JOB).encode())
    assert wait_for(lambda: lose_queued_task(stack, "render_runway"), timeout=20) == 1
    set_push(stack, "render_runway", stack.functions["render_runway"].url)
    assert stack.store.get("jobs", "lost-1")["attempts"][0]["state"] == "DISPATCHED"

    # WHEN Cloud Scheduler calls reconcile after the lease expired
    def redispatching_sweep() -> dict | None:
        report = stack.call("reconcile")
        return report if report["redispatched"] else None

    report = wait_for(redispatching_sweep, timeout=20, interval=0.5)

    # THEN it republished the task once, and the job completed on runway
    assert report["errors"] == 0
    docs = wait_for(
        lambda: jobs_terminal(stack.store, ["lost-1"]),
        timeout=30,
        describe=lambda: str(statuses(stack.store)),
    )
    job = docs["lost-1"]
    assert job["status"] == "SUCCEEDED"
    assert [(a["backend"], a["redispatched"]) for a in job["attempts"]] == [("runway", 1)]
    assert (job["lease_expires_at"], job["wall_deadline_at"]) == (None, None)
    # AND nothing is held, the spend is the job's cost, and another sweep finds nothing to do
    global_shards = [d for d in stack.store.list("ledger") if d["scope"] == "global"]
    assert sum(d["held_micros"] for d in global_shards) == 0
    assert sum(d["spent_micros"] for d in global_shards) == job["cost_micros"] > 0
    assert not any(stack.call("reconcile").values())
