"""Pipeline benchmark: publish → job.completed latency on the emulator stack, and embedded
throughput. A script, not a test: run it with ``.venv/bin/python bench/pipeline.py``.

Emulator part: JOBS requests published at a steady RATE jobs/s to the jobs topic of a fresh
emulator stack (every function under functions-framework, push subscriptions, Firestore
emulator) with zero-latency simulated providers. A job's latency is its ``finished_at`` (set
in the transaction that completes it, just before ``job.completed`` is published) minus the
moment its request was published. Embedded part: the same requests on the in-process bus and
store, published at once, jobs finished per second.

The last line is one JSON object:
{"jobs", "p50_s", "p95_s", "throughput_jobs_s", "embedded_jobs_s", "store"}.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter

from aiprod import topology
from aiprod.config import Settings
from aiprod_tools.embedded import embedded_app
from aiprod_tools.stack.emulators import start_emulators
from aiprod_tools.stack.stack import EmulatorStack

BUDGET_USD = "1000000"  # large: this measures the pipeline, not the budget policy


def requests(count: int, tag: str) -> list[bytes]:
    priorities = ("quality", "cost", "speed")
    return [
        json.dumps(
            {"job_id": f"{tag}-{i:04d}", "prompt": f"bench job {i}", "priority": priorities[i % 3]}
        ).encode()
        for i in range(count)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_emulator(count: int, rate: float, timeout_s: float) -> dict:
    emulators = start_emulators()
    env = {"AIPROD_DAILY_BUDGET_USD": BUDGET_USD, "AIPROD_POLL_INTERVAL_S": "0.05"}
    try:
        with EmulatorStack(emulators, extra_env=env) as stack:
            bodies = requests(count, "emu")
            published: dict[str, float] = {}
            start = time.time()
            for i, body in enumerate(bodies):
                delay = start + i / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
                published[json.loads(body)["job_id"]] = time.time()
                stack.bus.publish(topology.JOBS, body)
            deadline = time.time() + timeout_s
            docs: dict[str, dict] = {}
            while time.time() < deadline:
                docs = {d["job_id"]: d for d in stack.store.list("jobs", limit=count + 10)}
                if sum(1 for d in docs.values() if d.get("finished_at")) >= count:
                    break
                time.sleep(0.5)
            done = {k: d for k, d in docs.items() if d.get("status") == "SUCCEEDED"}
            latencies = [d["finished_at"] - published[k] for k, d in done.items()]
            last = max((d["finished_at"] for d in done.values()), default=start)
            return {
                "completed": len(done),
                "statuses": dict(Counter(d.get("status", "?") for d in docs.values())),
                "p50_s": round(percentile(latencies, 0.50), 3) if latencies else None,
                "p95_s": round(percentile(latencies, 0.95), 3) if latencies else None,
                "max_s": round(max(latencies), 3) if latencies else None,
                "throughput_jobs_s": round(len(done) / max(last - start, 1e-9), 2),
            }
    finally:
        emulators.stop()


def run_embedded(count: int) -> float:
    settings = Settings(global_limit_micros=10**15, poll_interval_s=0.0)
    app = embedded_app(settings, workers=4)
    bodies = requests(count, "emb")
    start = time.perf_counter()
    for body in bodies:
        app.bus.publish(topology.JOBS, body)
    if not app.bus.drain(timeout_s=300):
        raise RuntimeError("embedded run did not finish")
    elapsed = time.perf_counter() - start
    app.bus.close()
    return round(count / elapsed, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="jobs published per second")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--embedded-jobs", type=int, default=2000)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    embedded = run_embedded(args.embedded_jobs)
    print(f"embedded: {embedded} jobs/s over {args.embedded_jobs} jobs", file=sys.stderr)
    emulator = run_emulator(args.jobs, args.rate, args.timeout)
    print(f"emulator: {json.dumps(emulator)}", file=sys.stderr)
    result = {
        "jobs": args.jobs,
        "p50_s": emulator["p50_s"],
        "p95_s": emulator["p95_s"],
        "throughput_jobs_s": emulator["throughput_jobs_s"],
        "embedded_jobs_s": embedded,
        "store": "firestore-emulator (latency) / embedded (embedded_jobs_s)",
        "completed": emulator["completed"],
    }
    print(json.dumps(result))
    return 0 if emulator["completed"] == args.jobs else 1


if __name__ == "__main__":
    sys.exit(main())
