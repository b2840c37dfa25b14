"""Burst benchmark (issue 11): a burst far past capacity on the emulator stack, queued and
drained. A script, not a test: ``.venv/bin/python bench/burst.py`` (``--jobs 60 --latency 1``
for a quick run).

A fresh emulator stack (every function under functions-framework behind its concurrency
gate, push subscriptions, the Firestore emulator) with simulated providers taking
``--latency`` s a render and a capacity of ``--capacity`` on each of the three backends.
Tenant A publishes ``--jobs`` requests at once, priority ``speed``, no backend allow-list;
tenant B publishes 10 more 1 s later. No single model serves one request on all three
backends (Veo renders 4, 6 or 8 s, Replicate's models 5 s), so A's requests alternate 5 s
(replicate, then runway) and 4 s (veo, then runway): every backend is in some chain.

Figures: ``makespan_s`` from the first publish to the last job's ``finished_at``;
``ideal_s`` = jobs x latency / total capacity; ``max_in_use_over_capacity`` the highest
sampled slots-in-use / capacity of any backend; ``tenant_b_p95_s`` the p95 of tenant B's
job durations (``finished_at`` - ``created_at``). Targets (the issue's): every job succeeded,
no dead letter, makespan <= 1.5 x ideal, in use never above capacity, tenant B's p95 <= 3 x
the latency; exit status 1 when one is missed.

The store is the Firestore emulator. The Pub/Sub emulator pushes at most two messages at a
time per subscription (``aiprod_tools.stack.stack``) and a render function holds its push
for the whole render, so the stack runs ``--lanes`` push lanes per push-fed topic (2 pushes
each; by default enough for the capacity) and each function process (one local instance)
admits what the deployed instances x concurrency admit: the capacity for a render function,
every lane's pushes for route_job and handle_outcome. The last line is one JSON object:
{"jobs", "succeeded", "dead_letters", "makespan_s", "ideal_s", "max_in_use_over_capacity",
"tenant_b_p95_s", "store"}.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections import Counter

from aiprod import topology
from aiprod.domain.catalog import default_catalog
from aiprod.repositories import slots
from aiprod.services.capacity_admin import set_capacity
from aiprod_tools.stack.emulators import start_emulators
from aiprod_tools.stack.stack import EmulatorStack

BUDGET_USD = "1000000"  # large: this measures the queue, not the budget policy
TENANT_A, TENANT_B, TENANT_B_JOBS, TENANT_B_AFTER_S = "tenant-a", "tenant-b", 10, 1.0
# Far above what any burst here creates in a minute, so only concurrency binds.
CREATES_PER_MINUTE = 100_000
DEAD_LETTER_INBOX = f"{topology.DEAD_LETTER}--inbox"


def requests(count: int, tenant: str, tag: str) -> list[bytes]:
    return [
        json.dumps(
            {
                "job_id": f"{tag}-{i:04d}",
                "prompt": f"burst job {i}",
                "priority": "speed",
                "duration_s": 5 if i % 2 == 0 else 4,
                "tenant": tenant,
            }
        ).encode()
        for i in range(count)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class SlotSampler(threading.Thread):
    """The highest slots-in-use / capacity seen on any backend, sampled until stopped."""

    def __init__(self, stack: EmulatorStack, capacity: int, interval_s: float = 0.1):
        super().__init__(name="slot-sampler", daemon=True)
        self.stack, self.capacity, self.interval_s = stack, capacity, interval_s
        self.peak, self.samples, self.stop = 0.0, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.interval_s):
            try:
                used = [slots.in_use(self.stack.store, b) for b in topology.BACKENDS]
            except Exception:  # a lost sample is only a gap
                continue
            self.peak = max(self.peak, max(used) / self.capacity)
            self.samples += 1


def publish_all(stack: EmulatorStack, bodies: list[bytes]) -> None:
    """Publish every body at once (the publisher batches them), over the jobs topic's lanes,
    and wait for the ids."""
    publisher, lanes = stack.bus.publisher, stack.bus.lanes
    paths = [
        publisher.topic_path(
            stack.project, topology.qualified(stack.prefix, topology.lane_topic(topology.JOBS, i))
        )
        for i in range(lanes)
    ]
    futures = [publisher.publish(paths[i % lanes], body) for i, body in enumerate(bodies)]
    for future in futures:
        future.result(timeout=60)


def dead_letters(stack: EmulatorStack) -> int:
    count = 0
    while batch := stack.bus.pull(DEAD_LETTER_INBOX, max_messages=100):
        count += len(batch)
    return count


def run(jobs: int, latency: float, capacity: int, lanes: int, timeout_s: float) -> dict:
    simulation = {b: {"latency_s": latency} for b in topology.BACKENDS}
    env = {
        "AIPROD_DAILY_BUDGET_USD": BUDGET_USD,
        "AIPROD_SIMULATION": json.dumps(simulation),
        "AIPROD_POLL_INTERVAL_S": str(min(1.0, max(0.05, latency / 5))),
        "AIPROD_PUSH_LANES": str(lanes),
    }
    pushes = 2 * lanes  # what the emulator pushes at once to one function
    concurrency = {
        **{f"render_{b}": max(capacity, 8) for b in topology.BACKENDS},
        "route_job": max(pushes, 8),
        "handle_outcome": max(pushes, 8),
    }
    emulators = start_emulators()
    try:
        with EmulatorStack(emulators, extra_env=env, concurrency=concurrency) as stack:
            for backend in topology.BACKENDS:
                set_capacity(stack.store, default_catalog(), backend, capacity, CREATES_PER_MINUTE)
            sampler = SlotSampler(stack, capacity)
            sampler.start()
            start = time.time()
            publish_all(stack, requests(jobs, TENANT_A, "a"))
            time.sleep(max(0.0, start + TENANT_B_AFTER_S - time.time()))
            publish_all(stack, requests(TENANT_B_JOBS, TENANT_B, "b"))
            total = jobs + TENANT_B_JOBS
            docs = wait_finished(stack, total, timeout_s)
            sampler.stop.set()
            sampler.join(timeout=10)
            gates = {f"render_{b}": stack.gate(f"render_{b}") for b in topology.BACKENDS}
            done = [d for d in docs.values() if d.get("status") == "SUCCEEDED"]
            b_times = [
                d["finished_at"] - d["created_at"] for d in done if d.get("tenant") == TENANT_B
            ]
            last = max((d["finished_at"] for d in done), default=start)
            firsts: dict[str, int] = {}
            for d in done:
                firsts[d["attempts"][0]["backend"]] = firsts.get(d["attempts"][0]["backend"], 0) + 1
            detail = {
                "statuses": dict(Counter(d.get("status", "?") for d in docs.values())),
                "first_backend": firsts,
                "gates": gates,
                "slot_samples": sampler.samples,
            }
            print(f"burst: {json.dumps(detail)}", file=sys.stderr)
            return {
                "jobs": total,
                "succeeded": len(done),
                "dead_letters": dead_letters(stack),
                "makespan_s": round(last - start, 2),
                "ideal_s": round(total * latency / (capacity * len(topology.BACKENDS)), 2),
                "max_in_use_over_capacity": round(sampler.peak, 3),
                "tenant_b_p95_s": round(percentile(b_times, 0.95), 2) if b_times else None,
                "store": "firestore-emulator",
            }
    finally:
        emulators.stop()


def wait_finished(stack: EmulatorStack, count: int, timeout_s: float) -> dict[str, dict]:
    deadline = time.time() + timeout_s
    docs: dict[str, dict] = {}
    while time.time() < deadline:
        docs = {d["job_id"]: d for d in stack.store.list("jobs", limit=count + 10)}
        if len(docs) >= count and all(d.get("finished_at") for d in docs.values()):
            break
        time.sleep(1.0)
    return docs


def missed(result: dict, latency: float) -> list[str]:
    checks = {
        "succeeded": result["succeeded"] == result["jobs"],
        "dead_letters": result["dead_letters"] == 0,
        "makespan": result["makespan_s"] <= 1.5 * result["ideal_s"],
        "in_use": result["max_in_use_over_capacity"] <= 1.0,
        "tenant_b": (result["tenant_b_p95_s"] or float("inf")) <= 3 * latency,
    }
    return [name for name, ok in checks.items() if not ok]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=600, help="tenant A's burst")
    parser.add_argument("--latency", type=float, default=5.0, help="simulated render seconds")
    parser.add_argument("--capacity", type=int, default=20, help="render slots per backend")
    parser.add_argument("--lanes", type=int, help="push lanes a topic (default: capacity / 2)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    lanes = args.lanes or max(1, -(-args.capacity // 2))
    result = run(args.jobs, args.latency, args.capacity, lanes, args.timeout)
    failed = missed(result, args.latency)
    print(f"burst: targets missed: {failed or 'none'}", file=sys.stderr)
    print(json.dumps(result))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
