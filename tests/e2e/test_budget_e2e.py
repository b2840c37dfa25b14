"""The daily budget through the real functions: a limit that admits only part of the work.

Every scenario samples every ledger entry on a background thread (about every 50 ms) while it
runs, and asserts that no sample ever had spent + held above the limit. The simulated
providers report exactly the worst case that was held, so a job's hold is also its cost and
the budget used after each admission is known in advance: that makes the 70 % (route
cheapest-first) and 90 % (admit nothing new) thresholds observable job by job when jobs are
published one at a time.
"""

from __future__ import annotations

import json

import pytest

from support import EventTap, job_docs, jobs_terminal, statuses, wait_for
from support.ledger import (
    LedgerWatch,
    assert_allotments_conserved,
    assert_books_balanced,
    totals_by_scope,
)
from support.tenants import configure, publish

pytestmark = pytest.mark.emulator

IMG = "https://assets.example.com/frame.png"
FAST = {"AIPROD_POLL_INTERVAL_S": "0.05"}
BUDGET_REASONS = {"over_budget", "budget_critical"}


def text(job_id: str, **fields) -> dict:
    return {"job_id": job_id, "prompt": f"budget scenario {job_id}", **fields}


def image(job_id: str, **fields) -> dict:
    return text(job_id, image_uri=IMG, **fields)


def route(stack, request: dict) -> dict:
    """Publish one request and return its job document once admission has decided."""
    publish(stack, request)
    return wait_for(
        lambda: stack.store.get("jobs", request["job_id"]),
        timeout=30,
        interval=0.1,
        describe=lambda: f"jobs: {statuses(stack.store)}",
    )


def settle_all(stack, job_ids: list[str]) -> dict[str, dict]:
    return wait_for(
        lambda: jobs_terminal(stack.store, job_ids),
        timeout=90,
        interval=0.5,
        describe=lambda: f"jobs: {statuses(stack.store)}",
    )


def first_backend(job: dict) -> str:
    return job["chain"][0]["backend"]


# request, budget used before it arrives, then: (backend it starts on, hold) or rejection reason
SEQUENCE = [
    # below 70 %: each job keeps its own priority
    (text("n1"), "runway", 600_000),  # 0 % → 20 %
    (text("n2"), "runway", 600_000),  # 20 % → 40 %
    (image("n3"), "runway", 250_000),  # 40 % → 48.3 %
    (text("n4", priority="cost"), "replicate", 100_000),  # → 51.7 %
    (image("n5", priority="speed"), "replicate", 100_000),  # → 55 %
    (text("n6"), "runway", 600_000),  # 55 % → 75 %: warning
    # 70-90 %: quality jobs are routed cheapest-first; a hold that cannot fit is over budget
    (text("w1"), "replicate", 100_000),  # → 78.3 %
    (image("w2"), "replicate", 100_000),  # → 81.7 %
    (text("w3", duration_s=8), "over_budget", 0),  # cheapest is veo $0.80, headroom $0.55
    (text("w4"), "replicate", 100_000),  # → 85 %
    (text("w5", priority="speed"), "replicate", 100_000),  # → 88.3 %
    (text("w6"), "replicate", 100_000),  # → 91.7 %: critical
    # at or above 90 %: nothing new is admitted, even what would fit
    (text("c1", priority="cost"), "budget_critical", 0),
    (text("c2", resolution="480p"), "budget_critical", 0),
    (image("c3"), "budget_critical", 0),
]
LIMIT = 3_000_000


def test_thresholds_route_cheapest_first_at_70_and_refuse_at_90_percent(make_stack):
    # GIVEN a $3 day and a stack with healthy providers
    stack = make_stack({**FAST, "AIPROD_DAILY_BUDGET_USD": "3"})
    tap = EventTap(stack.bus)

    # WHEN 15 jobs arrive one after another (each admitted or refused before the next),
    # while earlier jobs render and settle concurrently
    with LedgerWatch(stack.store, {"global": LIMIT}) as watch:
        routed = [(route(stack, request), want, hold) for request, want, hold in SEQUENCE]
        docs = settle_all(stack, [request["job_id"] for request, _, _ in SEQUENCE])

    # THEN no sample of the ledger ever had more spent + held than the limit
    assert watch.samples >= 20, f"only {watch.samples} ledger samples"
    assert watch.breaches == [], watch.breaches[:3]
    assert 0 < max(watch.peak.values()) <= LIMIT

    # AND each job was admitted on the backend the budget state implies, or refused
    for job, want, hold in routed:
        job_id = job["job_id"]
        if want in BUDGET_REASONS:
            assert (job["status"], job["reason"]) == ("REJECTED", want), job
            assert docs[job_id]["attempts"] == []
            continue
        assert job["request"]["priority"] in ("quality", "cost", "speed")
        assert (first_backend(job), job["attempts"][0]["hold_micros"]) == (want, hold), job_id
        assert docs[job_id]["status"] == "SUCCEEDED", docs[job_id]
        assert docs[job_id]["cost_micros"] == hold

    # AND the warning is visible on the same request shape: quality first at 55 %, cheapest
    # first at 75 % (its chain puts replicate before runway)
    assert [s["backend"] for s in docs["n6"]["chain"]] == ["runway", "replicate"]
    assert [s["backend"] for s in docs["w1"]["chain"]] == ["replicate", "runway"]
    assert docs["w1"]["request"]["priority"] == "quality"

    # AND refusals reach users with their reason
    rejected = {e.job_id: e.payload["reason"] for e in tap.poll() if e.type == "job.rejected"}
    assert rejected == {"w3": "over_budget", **dict.fromkeys(("c1", "c2", "c3"), "budget_critical")}

    # AND the day ends above 90 % but within the limit, with nothing held
    totals = totals_by_scope(stack.store)["global"]
    assert totals["spent_micros"] == 2_750_000
    assert_books_balanced(stack.store, docs.values())
    assert_allotments_conserved(stack.store)


def test_concurrent_batch_never_commits_past_the_limit(make_stack):
    # GIVEN a $2 day whose critical threshold is 100 % (only the hard limit stops admission),
    # and 20 jobs whose holds add up to about $6
    env = {**FAST, "AIPROD_DAILY_BUDGET_USD": "2", "AIPROD_BUDGET_CRITICAL": "1.0"}
    stack = make_stack(env)
    kinds = [
        lambda i: text(f"m{i:02d}"),  # runway $0.60
        lambda i: text(f"m{i:02d}", priority="cost"),  # replicate $0.10
        lambda i: image(f"m{i:02d}"),  # runway $0.25
        lambda i: text(f"m{i:02d}", duration_s=8, priority="speed"),  # veo $0.80
        lambda i: text(f"m{i:02d}", resolution="480p"),  # replicate $0.05
    ]
    batch = [kinds[i % len(kinds)](i) for i in range(20)]
    job_ids = [request["job_id"] for request in batch]

    # WHEN they are all published at once
    with LedgerWatch(stack.store, {"global": 2_000_000}) as watch:
        for request in batch:
            publish(stack, request)
        docs = settle_all(stack, job_ids)

    # THEN spent + held never passed the limit at any sampled moment
    assert watch.samples >= 20, f"only {watch.samples} ledger samples"
    assert watch.breaches == [], watch.breaches[:3]
    assert max(watch.peak.values()) <= 2_000_000

    # AND part of the batch ran, the rest was refused for budget reasons only
    outcome = {job_id: docs[job_id]["status"] for job_id in job_ids}
    assert set(outcome.values()) == {"SUCCEEDED", "REJECTED"}, outcome
    reasons = {doc["reason"] for doc in docs.values() if doc["status"] == "REJECTED"}
    assert reasons <= BUDGET_REASONS, reasons
    spent = totals_by_scope(stack.store)["global"]["spent_micros"]
    assert spent <= 2_000_000
    assert_books_balanced(stack.store, docs.values())
    assert_allotments_conserved(stack.store)


def test_tenant_over_its_budget_is_refused_while_another_tenant_runs(make_stack):
    # GIVEN a $0.25 budget for tenant "small"; tenant "big" has the global $100
    tenants = json.dumps({"small": 0.25})
    stack = make_stack({**FAST, "AIPROD_TENANT_BUDGETS_USD": tenants})
    configure(stack, "small", "big")  # each publishes on its own topic
    tap = EventTap(stack.bus)

    def small(job_id: str, **fields) -> dict:
        return text(job_id, tenant="small", **fields)

    big = [text(f"big{i}", tenant="big") for i in range(4)]
    limits = {"global": 100_000_000, "tenant:small": 250_000}

    with LedgerWatch(stack.store, limits) as watch:
        # WHEN "small" spends 80 % of its budget
        s1 = route(stack, small("s1", priority="cost"))  # $0.10 → 40 %
        s2 = route(stack, small("s2", priority="cost"))  # $0.10 → 80 %
        # AND "big" publishes its jobs while "small" asks for more
        for request in big[:3]:
            publish(stack, request)
        s3 = route(stack, small("s3"))  # cheapest $0.10 > headroom $0.05
        s4 = route(stack, small("s4", resolution="480p"))  # $0.05 fits exactly → 100 %
        s5 = route(stack, small("s5", priority="cost"))  # exhausted
        last_big = route(stack, big[3])
        docs = settle_all(stack, [f"s{i}" for i in range(1, 6)] + [r["job_id"] for r in big])

    # THEN "small" got what fits its budget and was refused the rest
    assert [docs[job["job_id"]]["status"] for job in (s1, s2, s4)] == ["SUCCEEDED"] * 3
    assert (s3["status"], s3["reason"]) == ("REJECTED", "over_budget")
    assert (s5["status"], s5["reason"]) == ("REJECTED", "budget_critical")
    refused = {e.job_id: e.payload for e in tap.poll() if e.type == "job.rejected"}
    assert {j: (p["reason"], p["tenant"]) for j, p in refused.items()} == {
        "s3": ("over_budget", "small"),
        "s5": ("budget_critical", "small"),
    }

    # AND "big" ran its jobs all along, including one sent after "small" was exhausted
    assert last_big["status"] != "REJECTED"
    assert all(docs[r["job_id"]]["status"] == "SUCCEEDED" for r in big)
    assert all(tap.has(r["job_id"], "job.completed") for r in big)

    # AND no sample of either scope ever exceeded its limit; "small" ended exactly at it
    assert watch.samples >= 10 and watch.breaches == [], watch.breaches[:3]
    totals = totals_by_scope(stack.store)
    assert totals["tenant:small"]["spent_micros"] == 250_000
    assert totals["tenant:big"]["spent_micros"] == 4 * 600_000
    assert_books_balanced(stack.store, job_docs(stack.store).values())
    assert_allotments_conserved(stack.store)
