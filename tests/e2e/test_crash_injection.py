"""Crash injection: functions die or fail at every step boundary, and nothing is lost.

Failpoints (shared/aiprod/faults.py) fire once per job and attempt at the four boundaries
the ledger's promises depend on: after the hold, before the task is published (the router
process exits); after the claim, before the provider call (the render process exits);
after the provider call, before the outcome is published (the render invocation fails);
after the outcome, before the settlement (the outcome process exits). Pub/Sub redelivers,
leases expire (3 s here) and the reconciler, called every second as Cloud Scheduler would,
recovers what redelivery cannot.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections import Counter

import pytest

from aiprod import topology
from support import jobs_terminal, statuses, wait_for
from support.ledger import assert_books_balanced
from support.logs import log_entries

pytestmark = pytest.mark.emulator

FAULTS = ",".join(
    [
        "router.after_commit=exit:0.4",
        "render.after_claim=exit:0.3",
        "render.after_provider=raise:0.3",
        "outcome.before_settle=exit:0.3",
    ]
)
JOBS = 16


def _requests() -> list[dict]:
    priorities = ("quality", "cost", "speed")
    return [
        {"job_id": f"crash-{i:02d}", "prompt": f"scene {i}", "priority": priorities[i % 3]}
        for i in range(JOBS)
    ]


def _renders(stack) -> Counter:
    """Renders started per (job, attempt), from every render process's log."""
    seen: Counter = Counter()
    for spec in topology.FUNCTIONS:
        if spec.name.startswith("render_"):
            for entry in log_entries(stack, spec.name):
                if entry.get("message") == "simulated render started":
                    seen[entry["job_id"], entry["attempt"]] += 1
    return seen


def _fired(stack) -> Counter:
    fired: Counter = Counter()
    for name in stack.functions:
        for entry in log_entries(stack, name):
            if entry.get("event") == "failpoint":
                fired[entry["message"].split()[1]] += 1
    return fired


def test_every_job_survives_crashes_at_each_step_boundary(make_stack):
    # GIVEN functions that crash once per job at each boundary, short leases, and the
    # reconciler running every second
    env = {
        "AIPROD_FAULTS": FAULTS,
        "AIPROD_FAULTS_DIR": tempfile.mkdtemp(prefix="aiprod-faults-"),
        "AIPROD_LEASE_S": "3",
        "AIPROD_RENDER_DEADLINE_S": "2",
        "AIPROD_POLL_INTERVAL_S": "0.05",
    }
    stack = make_stack(env, min_backoff_s=0.1, max_backoff_s=1)
    stop = threading.Event()

    def scheduler() -> None:
        while not stop.wait(1.0):
            stack.call("reconcile", timeout_s=30)

    ticker = threading.Thread(target=scheduler, daemon=True)
    ticker.start()

    # WHEN a batch of jobs is published
    requests = _requests()
    try:
        for request in requests:
            stack.bus.publish(topology.JOBS, json.dumps(request).encode())
        ids = [r["job_id"] for r in requests]
        docs = wait_for(
            lambda: jobs_terminal(stack.store, ids),
            timeout=150,
            interval=0.5,
            describe=lambda: f"jobs: {statuses(stack.store)}; fired: {dict(_fired(stack))}",
        )
    finally:
        stop.set()
        ticker.join(timeout=35)

    # THEN every failpoint really fired and every job ended: succeeded, or (when a crash
    # hit each backend of its chain right after the claim) failed on lease timeouts only
    fired = _fired(stack)
    assert set(fired) == {name.split("=")[0] for name in FAULTS.split(",")}, fired
    for job_id in ids:
        doc = docs[job_id]
        if doc["status"] != "SUCCEEDED":
            codes = {a["error_code"] for a in doc["attempts"]}
            assert (doc["status"], doc["reason"], codes) == (
                "FAILED",
                "chain_exhausted",
                {"lease_expired"},
            ), doc
    assert sum(docs[i]["status"] == "SUCCEEDED" for i in ids) >= JOBS // 2

    # AND no attempt was rendered twice
    renders = _renders(stack)
    assert renders and max(renders.values()) == 1, renders.most_common(3)

    # AND the books reconcile to the jobs' charges exactly, with nothing held
    assert_books_balanced(stack.store, [docs[i] for i in ids])
