"""At-least-once delivery through the real functions: every job message published twice, every
render task and every outcome delivered twice, and still one render per attempt and one charge
per job; and a job_id reused for another payload refused with ``job.duplicate_rejected``, never
an event of a failure type.

Renders are counted at the provider itself. Replicate and veo are each scripted to refuse
exactly one submit, number ``N + 1``, where ``N`` is the number of renders the batch needs
from them: if every attempt is submitted once, the batch succeeds and a canary job sent
afterwards is the one refused. A second submit anywhere would shift the refusal onto a batch
job and let the canary through. (Runway refuses every submit, so its renders cost nothing;
its circuit opens after three, so a runway canary could not be routed to it anyway.)
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from aiprod import topology
from aiprod.domain.effects import PublishTask, task_for
from aiprod.domain.jobs import Job
from aiprod.domain.messages import JobRequest, RenderTask
from aiprod.services.outbox import Outbox
from support import EventTap, job_docs, jobs_terminal, statuses, wait_for
from support.ledger import (
    assert_allotments_conserved,
    assert_books_balanced,
    totals_by_scope,
)
from support.logs import count_logged, log_entries
from support.push import push_paused

pytestmark = pytest.mark.emulator

IMG = "https://assets.example.com/frame.png"
# job request → the attempts it must end with (one per backend tried)
JOBS = [
    ({"job_id": "d1", "prompt": "boat"}, [("runway", "FAILED"), ("replicate", "SUCCEEDED")]),
    ({"job_id": "d2", "prompt": "kite"}, [("runway", "FAILED"), ("replicate", "SUCCEEDED")]),
    (
        {"job_id": "d3", "prompt": "cup", "image_uri": IMG},
        [("runway", "FAILED"), ("replicate", "SUCCEEDED")],
    ),
    (
        {"job_id": "d4", "prompt": "city", "duration_s": 8},
        [("runway", "FAILED"), ("veo", "SUCCEEDED")],
    ),
    ({"job_id": "d5", "prompt": "cloud", "priority": "cost"}, [("replicate", "SUCCEEDED")]),
    (
        {"job_id": "d6", "prompt": "zoom", "image_uri": IMG, "priority": "speed"},
        [("replicate", "SUCCEEDED")],
    ),
    (
        {"job_id": "d7", "prompt": "dawn", "duration_s": 8, "priority": "cost"},
        [("veo", "SUCCEEDED")],
    ),
    ({"job_id": "d8", "prompt": "long pan", "duration_s": 10}, [("runway", "FAILED")]),
]
EXPECTED = {request["job_id"]: attempts for request, attempts in JOBS}
RENDERS = Counter(b for attempts in EXPECTED.values() for b, _ in attempts)
# a job only replicate can render (480p), and one only veo can (1080p, 4 s)
CANARIES = {
    "replicate": {"job_id": "canary-replicate", "prompt": "only replicate", "resolution": "480p"},
    "veo": {"job_id": "canary-veo", "prompt": "only veo", "resolution": "1080p", "duration_s": 4},
}
SCRIPT = {
    "runway": {"down": True},
    **{b: {"outage_after": RENDERS[b], "outage_count": 1} for b in CANARIES},
}
ENV = {"AIPROD_SIMULATION": json.dumps(SCRIPT), "AIPROD_POLL_INTERVAL_S": "0.05"}
RENDERERS = tuple(f"render_{b}" for b in topology.BACKENDS)


def warm_up_renderers(stack) -> None:
    """One task for an unknown job on each render topic, acknowledged as stale: each render
    process builds its app and provider adapter on that single delivery, so the provider
    object counting submits is the only one in its process."""
    request = JobRequest(job_id="warm-up", prompt="warm-up")
    for backend in topology.BACKENDS:
        task = RenderTask(
            job_id="warm-up", attempt=1, backend=backend, model="-", request=request, hold_micros=0
        )
        Outbox(stack.bus, stack.store).send([PublishTask(task)])
    for function in RENDERERS:
        wait_for(
            lambda f=function: count_logged(stack, f, "render task not run: stale"), timeout=30
        )


def render_deliveries(stack, backend: str) -> int:
    """Deliveries a render function has handled: each logs one line starting ``render ``."""
    return count_logged(stack, f"render_{backend}", "render ")


def log_sizes(stack) -> tuple[int, ...]:
    return tuple(len(log_entries(stack, name)) for name in stack.functions)


def wait_quiet(stack, quiet_s: float = 1.5, timeout: float = 30) -> None:
    """Until no function has logged anything for ``quiet_s`` (every delivery handled)."""
    seen = {"sizes": None, "count": 0}

    def quiet() -> bool:
        sizes = log_sizes(stack)
        seen["count"] = seen["count"] + 1 if sizes == seen["sizes"] else 0
        seen["sizes"] = sizes
        return seen["count"] * 0.25 >= quiet_s

    wait_for(quiet, timeout=timeout, interval=0.25)


def test_duplicated_messages_render_once_per_attempt_and_charge_once(make_stack):
    # GIVEN runway down, replicate refusing only its submit number N + 1, and every render
    # subscription held so that duplicates pile up while the jobs are in flight
    stack = make_stack(ENV)
    warm_up_renderers(stack)
    tap = EventTap(stack.bus)
    job_ids = list(EXPECTED)

    def describe() -> str:
        events = Counter((e.job_id, e.type) for e in tap.poll())
        return f"jobs: {statuses(stack.store)}; events: {dict(events)}"

    # WHEN each job message is published twice back-to-back (same bytes)
    with push_paused(stack, *RENDERERS):
        for request, _ in JOBS:
            body = json.dumps(request).encode()
            stack.bus.publish(topology.JOBS, body)
            stack.bus.publish(topology.JOBS, body)

        # THEN both deliveries found attempt 1 still DISPATCHED and each published its task;
        # job.accepted went out for each job (once, unless the duplicate was handled before
        # the first delivery noted it out: events are at least once)
        def both_routed() -> bool:
            duplicates = count_logged(stack, "route_job", "duplicate job message")
            return duplicates >= len(job_ids) and all(tap.has(j, "job.accepted") for j in job_ids)

        wait_for(both_routed, timeout=60, interval=0.5, describe=describe)
        assert all(tap.types_for(j).count("job.accepted") <= 2 for j in job_ids), describe()
        first = {j: doc["attempts"][0]["backend"] for j, doc in job_docs(stack.store).items()}

    # WHEN the render subscriptions resume (each attempt-1 task is now delivered twice)
    docs = wait_for(
        lambda: jobs_terminal(stack.store, job_ids), timeout=90, interval=0.5, describe=describe
    )
    later = Counter(a["backend"] for d in docs.values() for a in d["attempts"][1:])
    for backend in topology.BACKENDS:
        warm_up = 1
        in_flight = warm_up + 2 * sum(b == backend for b in first.values()) + later[backend]
        wait_for(lambda b=backend, n=in_flight: render_deliveries(stack, b) >= n, timeout=30)
    wait_quiet(stack)
    before_docs, before_ledger = job_docs(stack.store), totals_by_scope(stack.store)
    before_events = len(tap.poll())

    # AND then every job message, render task and outcome is delivered once more
    baseline = {
        "route_job": count_logged(stack, "route_job", "duplicate job message"),
        "handle_outcome": count_logged(stack, "handle_outcome", "duplicate or stale outcome"),
        **{f: count_logged(stack, f, "render task not run") for f in RENDERERS},
    }
    extra = Counter()
    for request, _ in JOBS:
        stack.bus.publish(topology.JOBS, json.dumps(request).encode())
        extra["route_job"] += 1
        job = Job.model_validate(before_docs[request["job_id"]], strict=False)
        for attempt in job.attempts:
            Outbox(stack.bus, stack.store).send([PublishTask(task_for(job, attempt))])
            extra[f"render_{attempt.backend}"] += 1
            outcome = attempt.outcome
            attrs = {"job_id": job.job_id, "attempt": str(attempt.number)}
            stack.bus.publish(topology.RENDER_OUTCOMES, outcome.model_dump_json().encode(), attrs)
            extra["handle_outcome"] += 1

    # THEN each one is acknowledged as a duplicate or a stale message
    prefixes = {"route_job": "duplicate job message", "handle_outcome": "duplicate or stale"}

    def acknowledged() -> bool:
        return all(
            count_logged(stack, f, prefixes.get(f, "render task not run")) >= baseline[f] + n
            for f, n in extra.items()
        )

    wait_for(acknowledged, timeout=60, interval=0.5, describe=lambda: f"expected {dict(extra)}")
    wait_quiet(stack)

    # AND nothing changed: no job, no ledger entry, no event
    assert job_docs(stack.store) == before_docs
    assert totals_by_scope(stack.store) == before_ledger
    assert len(tap.poll()) == before_events, [(e.job_id, e.type) for e in tap.events]

    # AND a message reusing a job_id for another payload, on a job that succeeded and on one
    # that failed, is refused with its own event type: nothing of a failure type is
    # published, nothing is rendered, the jobs are untouched
    conflicts = {"d1": "SUCCEEDED", "d8": "FAILED"}
    for job_id in conflicts:
        request = next(r for r, _ in JOBS if r["job_id"] == job_id)
        stack.bus.publish(topology.JOBS, json.dumps({**request, "prompt": "another"}).encode())

    def refused() -> list:
        return [e for e in tap.poll() if e.type == "job.duplicate_rejected"]

    wait_for(lambda: len(refused()) >= len(conflicts), timeout=30, describe=describe)
    wait_quiet(stack)
    assert {e.job_id: e.payload["status"] for e in refused()} == conflicts
    assert all(e.payload["reason"] == "conflict" and e.payload["payload_hash"] for e in refused())
    new_events = tap.poll()[before_events:]
    assert [e.type for e in new_events] == ["job.duplicate_rejected"] * len(conflicts)
    assert job_docs(stack.store) == before_docs

    # AND each job has exactly the attempts expected, one per backend tried
    for job_id, attempts in EXPECTED.items():
        doc = before_docs[job_id]
        assert [(a["backend"], a["state"]) for a in doc["attempts"]] == attempts, job_id
        last = doc["attempts"][-1]
        if last["state"] == "SUCCEEDED":
            assert doc["status"] == "SUCCEEDED" and doc["cost_micros"] == last["cost_micros"] > 0
            assert last["provider_task_id"].startswith(f"sim~{job_id}~{last['number']}~S~")
            completed = [
                e.payload for e in tap.events if (e.job_id, e.type) == (job_id, "job.completed")
            ]
            assert completed, f"{job_id}: no job.completed"
            assert {(e["cost_micros"], e["output_uri"]) for e in completed} == {
                (doc["cost_micros"], doc["output_uri"])
            }
        else:
            assert (doc["status"], doc["reason"], doc["cost_micros"]) == (
                "FAILED",
                "chain_exhausted",
                0,
            )
            assert tap.has(job_id, "job.failed") and not tap.has(job_id, "job.completed")

    # AND one charge per job: the ledger spent exactly the jobs' costs and holds nothing
    assert_books_balanced(stack.store, before_docs.values())

    assert_allotments_conserved(stack.store)

    # AND replicate and veo were asked for exactly N renders each: each canary is its
    # provider's submit number N + 1, the one scripted to fail
    for canary in CANARIES.values():
        body = json.dumps(canary).encode()
        stack.bus.publish(topology.JOBS, body)
        stack.bus.publish(topology.JOBS, body)
    names = [canary["job_id"] for canary in CANARIES.values()]
    docs = wait_for(
        lambda: jobs_terminal(stack.store, names), timeout=60, interval=0.5, describe=describe
    )
    for backend, canary in CANARIES.items():
        doc = docs[canary["job_id"]]
        assert (doc["status"], doc["reason"]) == ("FAILED", "chain_exhausted"), doc
        [attempt] = doc["attempts"]
        assert (attempt["backend"], attempt["error_code"]) == (backend, "unavailable"), attempt
