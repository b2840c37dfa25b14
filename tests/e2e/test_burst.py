"""A burst far past capacity on the emulator stack (issue 11): queued and drained, never
dead-lettered, never failed or rerouted for capacity, and the platform never the bottleneck.

Render functions run as deployed but limited to 4 requests in flight each (the stack's
concurrency gate answers 429 past it, as Cloud Run does), every backend's capacity is set to
4 with ``aiprod capacity set`` (creates a minute unbounded), the simulated providers take 1 s
a render, and tenant A's 150 jobs are published at once, their chains starting on each backend
in turn, then right after them tenant B's 5, all on runway. The renders are held until every
job is admitted (the emulator's router admits about as fast as the renders finish, so
without it no queue would be left by the time B's jobs come), so B's jobs wait behind A's
whole backlog, and they all finish before A's last 50 (the queue's fair order: a free slot
goes to the tenant holding the fewest). The queue is drained by handle_outcome alone: the
reconciler (the safety net) does not run.

The Pub/Sub emulator pushes at most two messages at a time per subscription (see
``aiprod_tools.stack.stack``), so a render function limited to 4 is never offered a fifth
request and its gate refuses nothing in the burst; the second test runs a render function
at concurrency 1 to show the gate refusing pushes, and the refused task delivered later.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from dataclasses import dataclass, field

import pytest

from aiprod import topology
from aiprod.repositories import slots
from support import DEAD_LETTER_INBOX, collect_events, job_docs, terminal, wait_for
from support.cli import aiprod
from support.ledger import assert_books_balanced
from support.logs import count_logged
from support.push import push_paused
from support.tenants import configure, publish

pytestmark = pytest.mark.emulator

BURST, CAPACITY, RENDER_CONCURRENCY, LATENCY_S = 150, 4, 4, 1.0
ENV = {
    "AIPROD_SIMULATION": json.dumps({b: {"latency_s": LATENCY_S} for b in topology.BACKENDS}),
    "AIPROD_POLL_INTERVAL_S": "0.2",
    "AIPROD_DAILY_BUDGET_USD": "100000",  # far from the 70 % warning: routing stays as asked
    # two push lanes: 4 pushes at once, as production would push to a function admitting 4
    # (the emulator pushes 2 a subscription: aiprod_tools.stack.stack)
    "AIPROD_PUSH_LANES": "2",
}
# Creates a minute far above the burst's, so only the concurrency binds (veo's catalog rate,
# 10 a minute, would pace its 50 jobs over five minutes, and a job past the minute's rate
# waits for the reconciler, which does not run here).
UNBOUND_RATE = ("--creates-per-minute", "100000")
# Each request's chain starts on another backend, and has a second one to fall back to
# (which a capacity problem would show as a second attempt).
FIRST_BACKEND = {
    ("quality", 5): "runway",  # runway, then replicate
    ("cost", 5): "replicate",  # replicate, then runway
    ("cost", 4): "veo",  # veo, then runway
}
# Tenant A publishes the burst; tenant B's few jobs come right after, all on one backend,
# where A's jobs wait (no tenant budgets set: each tenant's limit is the global one).
TENANT_A, TENANT_B, TENANT_B_JOBS = "acme", "globex", 5
TENANT_B_SHAPE = ("quality", 5)
TENANT_B_BACKEND = FIRST_BACKEND[TENANT_B_SHAPE]
A_LAST = 50  # B's jobs all finish before A's last 50


def burst_requests(count: int) -> list[dict]:
    shapes = list(FIRST_BACKEND)
    return [
        {
            "job_id": f"burst-{i:03d}",
            "prompt": f"burst job {i}",
            "priority": shapes[i % 3][0],
            "duration_s": shapes[i % 3][1],
            "tenant": TENANT_A,
        }
        for i in range(count)
    ]


def tenant_b_requests(count: int) -> list[dict]:
    priority, duration_s = TENANT_B_SHAPE
    return [
        {
            "job_id": f"{TENANT_B}-{i}",
            "prompt": f"tenant b job {i}",
            "priority": priority,
            "duration_s": duration_s,
            "tenant": TENANT_B,
        }
        for i in range(count)
    ]


@dataclass
class SlotWatch:
    """Samples each backend's slots in use (``repositories.slots.in_use``) on a thread."""

    store: object
    interval_s: float = 0.05
    peak: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> SlotWatch:
        self._thread = threading.Thread(target=self._run, name="slot-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                for backend in topology.BACKENDS:
                    used = slots.in_use(self.store, backend)
                    self.peak[backend] = max(self.peak[backend], used)
            except Exception:  # a sample lost to a transient read error is only a gap
                continue
            self.samples += 1


def render_functions() -> dict[str, int]:
    return {f"render_{b}": RENDER_CONCURRENCY for b in topology.BACKENDS}


def test_a_burst_past_capacity_is_queued_and_every_job_succeeds(make_stack):
    # GIVEN render functions limited to 4 requests each, and a capacity of 4 per backend
    stack = make_stack(ENV, concurrency=render_functions())
    configure(stack, TENANT_A, TENANT_B)  # each publishes on its own topic
    for backend in topology.BACKENDS:
        done = aiprod(stack, "capacity", "set", backend, str(CAPACITY), *UNBOUND_RATE)
        assert done.returncode == 0, done.stderr
    burst, late = burst_requests(BURST), tenant_b_requests(TENANT_B_JOBS)
    requests = burst + late

    def describe() -> str:
        counts: dict[str, int] = defaultdict(int)
        for doc in job_docs(stack.store).values():
            counts[doc.get("status", "?")] += 1
        return f"statuses {dict(counts)}; slots {_in_use(stack)}"

    # WHEN tenant A's 150 jobs are published at once and tenant B's 5 right after them, the
    # slots sampled while they run. Nothing renders until every job is admitted, as when
    # admission outpaces rendering (the router scales out in production; here its two push
    # loops admit about as fast as the renders finish, so B's jobs, admitted last, would come
    # when most of A's had finished and no queue was left to be fair in). Each backend's
    # slots stay held by A's first jobs meanwhile, so B's jobs wait behind A's backlog (no
    # slot freed a moment before its drain is taken by a B job at admission). Each tenant
    # publishes on its own topic, pushed on its own subscription, so "right after" is made
    # to hold across topics: B publishes once A's burst is admitted.
    with SlotWatch(stack.store) as watch:
        with push_paused(stack, *render_functions()):
            for admitted, batch in ((len(burst), burst), (len(requests), late)):
                for request in batch:
                    publish(stack, request)
                wait_for(
                    lambda n=admitted: _all_admitted(stack, n),
                    timeout=300,
                    interval=0.5,
                    describe=describe,
                )
        docs = wait_for(
            lambda: _all_finished(stack, len(requests)),
            timeout=600,
            interval=1.0,
            describe=describe,
        )

    # THEN every job succeeded, on the first backend of its chain, in one attempt: nothing
    # fell back, timed out or was throttled for capacity
    for request in requests:
        job = docs[request["job_id"]]
        assert job["status"] == "SUCCEEDED", job
        assert job["tenant"] == request["tenant"], job
        first = FIRST_BACKEND[(request["priority"], request["duration_s"])]
        attempts = [(a["backend"], a["state"], a.get("error_code")) for a in job["attempts"]]
        assert attempts == [(first, "SUCCEEDED", None)], (request["job_id"], attempts)

    # AND tenant B's jobs, queued behind A's whole backlog on their backend, all finished
    # before A's last 50: the fair order gave them the first slots freed there
    a_done = sorted(docs[r["job_id"]]["finished_at"] for r in burst)
    b_jobs = [docs[r["job_id"]] for r in late]
    for job in b_jobs:
        assert job["attempts"][0].get("queued_at") is not None, f"{job['job_id']} never waited"
    # (B came after A's backlog there, so age alone would have served B last: all but the
    # few A jobs a push may reorder with B's were waiting before B's first)
    a_backlog = [
        queued_at
        for r in burst
        if FIRST_BACKEND[(r["priority"], r["duration_s"])] == TENANT_B_BACKEND
        and (queued_at := docs[r["job_id"]]["attempts"][0].get("queued_at")) is not None
    ]
    b_queued = min(job["attempts"][0]["queued_at"] for job in b_jobs)
    ahead = sum(1 for queued_at in a_backlog if queued_at < b_queued)
    assert ahead >= len(a_backlog) - CAPACITY, f"B came before A's backlog: {ahead} ahead"
    b_last = max(job["finished_at"] for job in b_jobs)
    ranks = sorted(_finish_ranks(docs)[job["job_id"]] for job in b_jobs)
    admitted_s = max(d["created_at"] for d in docs.values()) - min(
        d["created_at"] for d in docs.values()
    )
    print(
        f"tenant B finish ranks among {len(docs)}: {ranks}; A's jobs waiting ahead of B: "
        f"{ahead}; all admitted in {admitted_s:.1f} s"
    )
    assert b_last < a_done[BURST - A_LAST], (ranks, b_last, a_done[BURST - A_LAST])

    # AND the burst waited in the queue on every backend, never in a dead letter
    queued = {b: 0 for b in topology.BACKENDS}
    for job in docs.values():
        if job["attempts"][0].get("queued_at") is not None:
            queued[job["attempts"][0]["backend"]] += 1
    assert all(queued.values()), f"no job waited for a slot on some backend: {queued}"
    assert collect_events(stack.bus, DEAD_LETTER_INBOX) == []

    # AND slots in use never went above the capacity, and reached it (the watch can fail)
    assert watch.samples > 0
    assert dict(watch.peak) == {b: CAPACITY for b in topology.BACKENDS}, dict(watch.peak)
    assert _in_use(stack) == {b: 0 for b in topology.BACKENDS}  # every slot given back

    # AND the render subscriptions on the emulator are the topology's: a refused push is
    # retried with backoff for up to 100 deliveries before any dead letter
    for backend in topology.BACKENDS:
        config = _subscription(stack, f"render_{backend}")
        assert (
            config.dead_letter_policy.max_delivery_attempts == topology.RENDER_MAX_DELIVERY_ATTEMPTS
        )
        retry = config.retry_policy
        backoff = [retry.minimum_backoff.total_seconds(), retry.maximum_backoff.total_seconds()]
        assert backoff == [topology.MIN_BACKOFF_S, topology.MAX_BACKOFF_S]

    # AND no push was refused: the render functions were never the bottleneck (each saw at
    # most its concurrency; the emulator's two push loops keep it at 2 or fewer)
    for name in render_functions():
        gate = stack.gate(name)
        assert gate["refused"] == 0 and gate["max_in_flight"] <= RENDER_CONCURRENCY, gate
        assert count_logged(stack, name, "stack gate: refused") == 0

    # AND the books balance: the production audit finds nothing
    assert_books_balanced(stack.store, docs.values())
    audit = aiprod(stack, "budget", "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_a_push_past_a_functions_concurrency_gets_429_and_is_delivered_later(make_stack):
    # GIVEN replicate's render function deployed at concurrency 1 (the emulator pushes two
    # at a time), a capacity of 2, and short retry backoffs so a redelivery comes quickly
    stack = make_stack(ENV, concurrency={"render_replicate": 1}, min_backoff_s=1, max_backoff_s=2)
    done = aiprod(stack, "capacity", "set", "replicate", "2")
    assert done.returncode == 0, done.stderr
    requests = [
        {"job_id": f"gate-{i}", "prompt": f"gate job {i}", "priority": "cost"} for i in range(4)
    ]

    # WHEN four jobs are admitted (two tasks published, two queued) and then pushed together
    with push_paused(stack, "render_replicate"):
        for request in requests:
            publish(stack, request)
        wait_for(lambda: len(job_docs(stack.store)) == len(requests), timeout=60)
    docs = wait_for(lambda: _all_finished(stack, len(requests)), timeout=300, interval=0.5)

    # THEN the gate refused pushes past its one request in flight, as Cloud Run would
    gate = stack.gate("render_replicate")
    assert gate["refused"] >= 1 and gate["max_in_flight"] == 1, gate
    assert count_logged(stack, "render_replicate", "stack gate: refused") == gate["refused"]

    # AND each refused task was delivered later: every job rendered once on replicate,
    # nothing dead-lettered, nothing fell back
    for request in requests:
        attempts = [(a["backend"], a["state"]) for a in docs[request["job_id"]]["attempts"]]
        assert attempts == [("replicate", "SUCCEEDED")], attempts
    assert collect_events(stack.bus, DEAD_LETTER_INBOX) == []
    assert_books_balanced(stack.store, docs.values())


def _all_admitted(stack, count: int) -> bool:
    docs = job_docs(stack.store)
    return len(docs) >= count and all(doc.get("attempts") for doc in docs.values())


def _finish_ranks(docs: dict) -> dict[str, int]:
    """Each job's place in the finishing order, from 1."""
    order = sorted(docs, key=lambda job_id: docs[job_id]["finished_at"])
    return {job_id: rank for rank, job_id in enumerate(order, start=1)}


def _all_finished(stack, count: int) -> dict | None:
    docs = job_docs(stack.store)
    return docs if len(docs) >= count and all(map(terminal, docs.values())) else None


def _in_use(stack) -> dict[str, int]:
    return {b: slots.in_use(stack.store, b) for b in topology.BACKENDS}


def _subscription(stack, function: str):
    name = topology.qualified(stack.prefix, topology.function(function).subscription)
    path = stack.bus.subscriber.subscription_path(stack.project, name)
    return stack.bus.subscriber.get_subscription(request={"subscription": path})
