"""The real handlers on the embedded bus and store, with simulated providers: the budget
(admission, warning and critical thresholds, tenant limits, event attributes).

Each scenario publishes JobRequests to ``jobs``, drains the bus, then reads what the system
recorded: job documents, ledger entries, circuit states, published events and provider
submissions. Every scenario ends with the books balanced: nothing held, and each budget
scope's spend equal to the cost of its jobs.
"""

from __future__ import annotations

import json

from support.scenarios import TEXT, attempts


def test_budget_admits_part_of_a_batch_and_never_overcommits(pipeline):
    # GIVEN a $1 day and twelve $0.10 jobs (the hold equals the cost, so order cannot matter)
    p = pipeline(global_limit_micros=1_000_000)
    batch = [{"job_id": f"c{i}", "prompt": "cheap", "priority": "cost"} for i in range(12)]

    # WHEN they arrive together (eight handlers at once)
    p.run(*batch)

    # THEN the 100 % limit held at every commit; the 90 % cut-off is read from a snapshot,
    # so jobs arriving together may pass it by what was in flight (at most the limit)
    succeeded = [j for j in p.jobs() if j["status"] == "SUCCEEDED"]
    assert 9 <= len(succeeded) <= 10
    assert len(p.jobs()) == 12
    reasons = {e["reason"] for e in p.events("job.rejected")}
    assert reasons and reasons <= {"budget_critical", "over_budget"}
    assert p.peak_committed() <= 1_000_000
    assert p.ledger()["spent_micros"] == 100_000 * len(succeeded)
    p.assert_books_balanced()


def test_budget_admits_jobs_one_by_one_until_the_critical_threshold(pipeline):
    # GIVEN a $1 day and twelve $0.10 jobs handled one at a time
    p = pipeline(workers=1, global_limit_micros=1_000_000)
    batch = [{"job_id": f"c{i}", "prompt": "cheap", "priority": "cost"} for i in range(12)]

    # WHEN they arrive
    p.run(*batch)

    # THEN jobs are admitted until 90 % is committed, the rest rejected as critical
    statuses = sorted(j["status"] for j in p.jobs())
    assert statuses == ["REJECTED"] * 3 + ["SUCCEEDED"] * 9
    assert {e["reason"] for e in p.events("job.rejected")} == {"budget_critical"}
    assert p.ledger()["spent_micros"] == 900_000
    p.assert_books_balanced()


def test_hold_larger_than_the_headroom_is_over_budget(pipeline):
    # GIVEN a $1 day and runway-only jobs holding $0.60 each
    p = pipeline(global_limit_micros=1_000_000)
    batch = [{"job_id": f"r{i}", "prompt": "x", "backends": ["runway"]} for i in range(4)]

    # WHEN they arrive together
    p.run(*batch)

    # THEN one is admitted and the others cannot fit
    assert sorted(j["status"] for j in p.jobs()) == ["REJECTED"] * 3 + ["SUCCEEDED"]
    rejected = p.events("job.rejected")
    assert [e["reason"] for e in rejected] == ["over_budget"] * 3
    assert p.peak_committed() <= 1_000_000
    p.assert_books_balanced()


def test_mixed_batch_under_a_tight_budget_keeps_the_invariant(pipeline):
    # GIVEN a $2 day and a batch of quality, cost, image and 8 s jobs
    p = pipeline(global_limit_micros=2_000_000)
    kinds = [
        {"prompt": "q"},
        {"prompt": "c", "priority": "cost"},
        {"prompt": "i", "image_uri": "https://example.com/y.png"},
        {"prompt": "v", "duration_s": 8},
    ]
    batch = [{"job_id": f"m{i}", **kinds[i % 4]} for i in range(16)]

    # WHEN they arrive together
    p.run(*batch)

    # THEN some ran, the rest were refused for budget reasons, and nothing overcommitted
    reasons = {j["reason"] for j in p.jobs() if j["status"] == "REJECTED"}
    assert reasons and reasons <= {"over_budget", "budget_critical"}
    assert any(j["status"] == "SUCCEEDED" for j in p.jobs())
    assert p.peak_committed() <= 2_000_000
    p.assert_books_balanced()


def test_warning_state_routes_a_quality_job_cheapest_first(pipeline):
    # GIVEN a day already 75 % spent, with room left for runway's $0.60
    p = pipeline(global_limit_micros=10_000_000)
    p.seed_ledger("global", spent_micros=7_500_000)

    # WHEN a quality-first job arrives
    p.run(TEXT)

    # THEN it went to the cheapest capable backend instead
    assert attempts(p.job("t1")) == [("replicate", "SUCCEEDED")]
    p.assert_books_balanced(seeded={"global": 7_500_000})


def test_below_warning_the_same_job_keeps_its_quality_route(pipeline):
    p = pipeline(global_limit_micros=10_000_000)
    p.seed_ledger("global", spent_micros=6_000_000)
    p.run(TEXT)
    assert attempts(p.job("t1")) == [("runway", "SUCCEEDED")]
    p.assert_books_balanced(seeded={"global": 6_000_000})


def test_tenant_over_its_limit_is_rejected_while_another_tenant_runs(pipeline):
    # GIVEN acme has spent its whole $0.50 today, and globex has its own limit
    p = pipeline(tenant_limits={"acme": 500_000, "globex": 5_000_000})
    p.seed_ledger("tenant:acme", spent_micros=500_000)

    # WHEN each tenant sends a job
    p.run({**TEXT, "job_id": "a1", "tenant": "acme"}, {**TEXT, "job_id": "g1", "tenant": "globex"})

    # THEN acme's is refused and globex's renders, charged to globex and the global budget
    [rejected] = p.events("job.rejected")
    assert (rejected["job_id"], rejected["reason"], rejected["tenant"]) == (
        "a1",
        "budget_critical",
        "acme",
    )
    assert p.job("g1")["status"] == "SUCCEEDED"
    assert p.ledger("tenant:globex")["spent_micros"] == p.job("g1")["cost_micros"] > 0
    assert p.ledger("tenant:acme")["spent_micros"] == 500_000
    p.assert_books_balanced(seeded={"tenant:acme": 500_000})


def test_tenant_limit_below_the_cheapest_hold_is_over_budget(pipeline):
    p = pipeline(tenant_limits={"acme": 50_000})
    p.run({**TEXT, "job_id": "a1", "tenant": "acme"}, {**TEXT, "job_id": "n1"})

    assert p.job("a1")["reason"] == "over_budget"
    assert p.job("n1")["status"] == "SUCCEEDED"
    assert p.ledger("tenant:acme").get("spent_micros", 0) == 0
    p.assert_books_balanced()


def test_events_carry_the_public_attributes(pipeline):
    p = pipeline()
    p.run({**TEXT, "tenant": "acme"})
    for message in p.bus.published["job-events"]:
        body = json.loads(message.data)
        assert message.attributes == {"type": body["type"], "job_id": "t1", "tenant": "acme"}
