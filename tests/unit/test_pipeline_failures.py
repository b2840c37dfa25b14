"""The real handlers on the embedded bus and store, with simulated providers.

Each scenario publishes JobRequests to ``jobs``, drains the bus, then reads what the system
recorded: job documents, ledger entries, circuit states, published events and provider
submissions. Every scenario ends with the books balanced: nothing held, and each budget
scope's spend equal to the cost of its jobs.
"""

from __future__ import annotations

import json
import logging

import pytest

from aiprod.domain.policy import RetryPolicy
from aiprod.exceptions import TransientError

TEXT = {"job_id": "t1", "prompt": "a paper boat in the rain", "metadata": {"campaign": "x"}}
IMAGE = {"job_id": "i1", "prompt": "the bottle turns", "image_uri": "gs://assets/bottle.png"}


CLOSED = {
    "backend": "runway",
    "state": "closed",
    "consecutive_failures": 0,
    "trips": 0,
    "open_until": 0.0,
    "probe_started_at": None,
    "last_error": None,
}


def attempts(job: dict) -> list[tuple[str, str]]:
    return [(a["backend"], a["state"]) for a in job["attempts"]]


# -- happy paths ------------------------------------------------------------------------------


def test_text_job_renders_on_runway_and_is_charged_its_cost(pipeline):
    # GIVEN every provider healthy
    p = pipeline()

    # WHEN a text job is published
    p.run(TEXT)

    # THEN it succeeded on runway gen4.5 (quality first) and was charged 5 s x $0.12
    job = p.job("t1")
    assert job["status"] == "SUCCEEDED"
    assert attempts(job) == [("runway", "SUCCEEDED")]
    assert job["output_uri"] == "sim://runway/t1/attempt-1.mp4"
    assert job["cost_micros"] == 600_000
    # AND the user saw it accepted then completed, with cost, output and metadata
    assert [e["type"] for e in p.events(job_id="t1")] == ["job.accepted", "job.completed"]
    done = p.events("job.completed")[0]
    assert (done["backend"], done["model"], done["cost_usd"]) == ("runway", "gen4.5", "0.600000")
    assert done["output_uri"] == job["output_uri"]
    assert done["backends_tried"] == ["runway"]
    assert done["metadata"] == {"campaign": "x"}
    assert len(p.submitted("runway")) == 1
    assert p.ledger()["spent_micros"] == 600_000
    p.assert_books_balanced()


def test_image_job_renders_on_the_image_model(pipeline):
    p = pipeline()
    p.run(IMAGE)

    job = p.job("i1")
    assert job["status"] == "SUCCEEDED"
    assert [(a["backend"], a["model"]) for a in job["attempts"]] == [("runway", "gen4_turbo")]
    assert job["cost_micros"] == 250_000
    p.assert_books_balanced()


# -- failures ---------------------------------------------------------------------------------


def test_runway_down_falls_back_and_completes(pipeline):
    # GIVEN runway refusing every submit
    p = pipeline(simulation={"runway": {"down": True}})

    # WHEN a text job and an image job arrive
    p.run(TEXT, IMAGE)

    # THEN both completed on replicate after one failed runway attempt, paying only replicate
    for job_id in ("t1", "i1"):
        job = p.job(job_id)
        assert job["status"] == "SUCCEEDED"
        assert attempts(job) == [("runway", "FAILED"), ("replicate", "SUCCEEDED")]
        assert job["attempts"][0]["error_code"] == "unavailable"
        assert job["cost_micros"] == 100_000
        assert p.events("job.completed", job_id)[0]["backends_tried"] == ["runway", "replicate"]
    assert p.submitted("runway") == []
    assert len(p.submitted("replicate")) == 2
    p.assert_books_balanced()


def test_retry_same_error_is_retried_on_the_same_backend_after_a_backoff(pipeline, clock):
    # GIVEN runway throttling the first submit only
    throttle = {"outage_after": 0, "outage_count": 1, "error_class": "RETRY_SAME"}
    p = pipeline(simulation={"runway": {**throttle, "error_code": "throttled"}})

    # WHEN a job arrives
    p.run(TEXT)

    # THEN the second runway attempt, sent with a 2 s backoff, rendered it
    job = p.job("t1")
    assert attempts(job) == [("runway", "FAILED"), ("runway", "SUCCEEDED")]
    assert job["attempts"][1]["not_before"] == clock.start + 2
    assert clock() >= clock.start + 2
    assert job["cost_micros"] == 600_000
    p.assert_books_balanced()


def test_retry_same_gives_up_after_two_retries_and_falls_back(pipeline):
    # GIVEN runway throttling every submit
    p = pipeline(simulation={"runway": {"down": True, "error_class": "RETRY_SAME"}})

    # WHEN a job arrives
    p.run(TEXT)

    # THEN runway was tried three times (1 + 2 retries), then replicate rendered it
    job = p.job("t1")
    assert attempts(job) == [("runway", "FAILED")] * 3 + [("replicate", "SUCCEEDED")]
    assert [a["error_class"] for a in job["attempts"][:3]] == ["RETRY_SAME"] * 3
    # AND the three consecutive failures opened runway's circuit
    assert p.store.get("backends", "runway")["state"] == "open"
    p.assert_books_balanced()


def test_retry_is_not_sent_to_a_backend_whose_circuit_opened(pipeline):
    # GIVEN runway throttling everything, one failure short of opening its circuit
    p = pipeline(simulation={"runway": {"down": True, "error_class": "RETRY_SAME"}})
    p.store.set("backends", "runway", {**CLOSED, "consecutive_failures": 2})

    # WHEN a job's first attempt fails (opening the circuit) and so does its retry, which was
    # dispatched before the circuit opened
    p.run(TEXT)

    # THEN no third attempt goes to the open circuit: the job falls back instead
    assert p.store.get("backends", "runway")["state"] == "open"
    job = p.job("t1")
    assert attempts(job) == [("runway", "FAILED"), ("runway", "FAILED"), ("replicate", "SUCCEEDED")]
    p.assert_books_balanced()


def test_failed_half_open_probe_is_not_retried_and_reopens_for_longer(pipeline, clock):
    # GIVEN runway's circuit open once before, its 60 s cooldown over, and runway throttling
    p = pipeline(simulation={"runway": {"down": True, "error_class": "RETRY_SAME"}})
    tripped = {"state": "open", "consecutive_failures": 3, "trips": 1}
    p.store.set("backends", "runway", {**CLOSED, **tripped, "open_until": clock() - 1})

    # WHEN a job is routed to runway as the half-open probe, and the probe fails
    p.run(TEXT)

    # THEN the job falls back at once instead of retrying the failed probe
    assert attempts(p.job("t1")) == [("runway", "FAILED"), ("replicate", "SUCCEEDED")]
    # AND the circuit reopened with a doubled cooldown
    circuit = p.store.get("backends", "runway")
    assert (circuit["state"], circuit["trips"]) == ("open", 2)
    assert circuit["open_until"] == clock() + 120
    p.assert_books_balanced()


def test_terminal_error_fails_at_once_without_fallback(pipeline):
    # GIVEN runway rejecting the request itself
    bad = {"down": True, "error_class": "TERMINAL", "error_code": "bad_request"}
    p = pipeline(simulation={"runway": bad})

    # WHEN a job arrives
    p.run(TEXT)

    # THEN it failed after the one attempt, and the failure event says why
    job = p.job("t1")
    assert (job["status"], job["reason"]) == ("FAILED", "terminal")
    assert attempts(job) == [("runway", "FAILED")]
    failed = p.events("job.failed", "t1")
    assert len(failed) == 1
    [attempt] = failed[0]["attempts"]
    assert (attempt["backend"], attempt["error_class"], attempt["error_code"]) == (
        "runway",
        "TERMINAL",
        "bad_request",
    )
    assert (failed[0]["reason"], failed[0]["cost_usd"]) == ("terminal", "0.000000")
    assert p.submitted("replicate") == []
    # AND a bad request says nothing about runway's health
    assert p.store.get("backends", "runway") is None
    p.assert_books_balanced()


def test_every_backend_down_exhausts_the_chain(pipeline):
    p = pipeline(simulation={"runway": {"down": True}, "replicate": {"down": True}})
    p.run(TEXT)

    job = p.job("t1")
    assert (job["status"], job["reason"]) == ("FAILED", "chain_exhausted")
    assert attempts(job) == [("runway", "FAILED"), ("replicate", "FAILED")]
    assert p.events("job.failed", "t1")[0]["backends_tried"] == ["runway", "replicate"]
    p.assert_books_balanced()


@pytest.mark.parametrize(
    "policy",
    [RetryPolicy(max_attempts=2), RetryPolicy(max_wall_s=1.0)],
    ids=["attempt cap", "wall-time cap"],
)
def test_caps_fail_the_job_as_attempts_exhausted(pipeline, policy):
    # GIVEN runway throttling every submit, and a cap on attempts or on the job's wall time
    p = pipeline(retry=policy, simulation={"runway": {"down": True, "error_class": "RETRY_SAME"}})

    # WHEN a job arrives (its retry waits a 2 s backoff)
    p.run(TEXT)

    # THEN the second failure hits the cap and the job fails without falling back
    job = p.job("t1")
    assert (job["status"], job["reason"]) == ("FAILED", "attempts_exhausted")
    assert attempts(job) == [("runway", "FAILED"), ("runway", "FAILED")]
    assert p.events("job.failed", "t1")[0]["reason"] == "attempts_exhausted"
    assert p.submitted("replicate") == []
    p.assert_books_balanced()


def test_provider_overrun_is_charged_and_noted(pipeline, caplog):
    # GIVEN replicate reporting 1.5x the worst case we held
    p = pipeline(simulation={"replicate": {"cost_ratio": 1.5}})

    # WHEN a job renders there
    with caplog.at_level(logging.WARNING, logger="aiprod.services.outcome"):
        p.run({**TEXT, "priority": "cost"})

    # THEN the real cost is charged, and the overrun is on the ledger, the attempt and the job
    job = p.job("t1")
    assert job["cost_micros"] == 150_000
    assert (job["overrun_micros"], job["attempts"][0]["overrun_micros"]) == (50_000, 50_000)
    assert (p.ledger()["spent_micros"], p.ledger()["overrun_micros"]) == (150_000, 50_000)
    # AND one warning says so, with the numbers as fields (the hook for a metric)
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "cost_overrun"]
    assert line.levelno == logging.WARNING
    assert (line.job_id, line.backend) == ("t1", "replicate")
    assert (line.hold_micros, line.cost_micros, line.overrun_micros) == (100_000, 150_000, 50_000)
    p.assert_books_balanced()


# -- duplicates -------------------------------------------------------------------------------


def test_duplicate_job_message_renders_and_charges_once(pipeline):
    # GIVEN the same job message delivered three times, concurrently
    p = pipeline()
    p.run(TEXT, TEXT, TEXT)

    # THEN one render, one charge, one completion
    assert len(p.submitted("runway")) == 1
    assert len(p.jobs()) == 1
    assert p.job("t1")["cost_micros"] == 600_000
    assert p.ledger()["spent_micros"] == 600_000
    assert len(p.events("job.completed")) == 1

    # AND a redelivery after completion publishes nothing at all
    before = len(p.bus.published["job-events"])
    p.run(TEXT)
    assert len(p.bus.published["job-events"]) == before
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_reused_job_id_with_another_payload_is_a_conflict(pipeline):
    # GIVEN a completed job
    p = pipeline()
    p.run(TEXT)
    original = p.job("t1")

    # WHEN another request arrives under the same job_id
    p.run({**TEXT, "prompt": "something else entirely"})

    # THEN it is rejected as a conflict and the original job is untouched
    [rejected] = p.events("job.rejected", "t1")
    assert rejected["reason"] == "conflict"
    assert p.job("t1") == original
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_render_task_delivered_again_after_completion_does_not_render(pipeline):
    # GIVEN a completed job
    p = pipeline()
    p.run(TEXT)
    task = p.bus.published["render-runway"][0]
    job, ledger = p.job("t1"), p.ledger()

    # WHEN its render task is delivered again
    p.bus.publish("render-runway", task.data, task.attributes)
    p.drain()

    # THEN there is no second render, and nothing changed
    assert len(p.submitted("runway")) == 1
    assert (p.job("t1"), p.ledger()) == (job, ledger)
    assert len(p.bus.published["render-outcomes"]) == 1
    p.assert_books_balanced()


def test_outcome_delivered_again_is_settled_once(pipeline):
    # GIVEN a job that fell back from runway and completed on replicate
    p = pipeline(simulation={"runway": {"down": True}})
    p.run(TEXT)
    job, ledger = p.job("t1"), p.ledger()
    failure, success = p.bus.published["render-outcomes"]

    # WHEN both outcomes are delivered again
    for message in (failure, success):
        p.bus.publish("render-outcomes", message.data, message.attributes)
    p.drain()

    # THEN no second settlement, no second fallback, no second completion (the job notes
    # that job.completed is out, so a redelivery does not publish it again)
    assert (p.job("t1"), p.ledger()) == (job, ledger)
    assert p.job("t1")["announced"] is True
    assert len(p.submitted("replicate")) == 1
    assert len(p.events("job.completed")) == 1
    p.assert_books_balanced()


def _failing_once(p, topic: str, carrying: bytes = b"") -> list[str]:
    """Make the next publish to ``topic`` (of a message containing ``carrying``) fail, as a
    Pub/Sub outage right after a commit would."""
    failed: list[str] = []
    publish = p.bus.publish

    def flaky(name: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        if name == topic and carrying in data and not failed:
            failed.append(name)
            raise ConnectionError(f"publish to {name} failed")
        return publish(name, data, attributes)

    p.bus.publish = flaky
    return failed


def test_completion_event_lost_after_the_commit_is_published_by_the_redelivery(pipeline):
    # GIVEN job.completed failing to publish once, after handle_outcome committed the success
    p = pipeline()
    failed = _failing_once(p, "job-events", carrying=b'"job.completed"')

    # WHEN the job runs (the outcome handler raises, Pub/Sub redelivers the outcome)
    p.run(TEXT)

    # THEN job.completed reaches users once the redelivery publishes it, charged once
    assert failed == ["job-events"]
    assert p.job("t1")["status"] == "SUCCEEDED"
    assert len(p.events("job.completed")) == 1
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_next_task_lost_after_the_fallback_commit_is_published_by_the_redelivery(pipeline):
    # GIVEN runway down, and the fallback task's first publish failing after the commit
    p = pipeline(simulation={"runway": {"down": True}})
    failed = _failing_once(p, "render-replicate")

    # WHEN the job runs
    p.run(TEXT)

    # THEN the redelivered failure outcome publishes the task again, the job completes on
    # replicate without waiting for the lease, rendered and charged once
    assert failed == ["render-replicate"]
    assert p.job("t1")["status"] == "SUCCEEDED"
    assert attempts(p.job("t1")) == [("runway", "FAILED"), ("replicate", "SUCCEEDED")]
    assert len(p.submitted("replicate")) == 1
    assert len(p.events("job.completed")) == 1
    p.assert_books_balanced()


# -- budget -----------------------------------------------------------------------------------


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
        {"prompt": "i", "image_uri": "https://x/y.png"},
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


# -- lost messages, timeouts, days, outages ---------------------------------------------------


def test_unknown_outcome_keeps_the_hold_and_a_redelivery_resumes_without_resubmitting(
    pipeline, clock
):
    # GIVEN runway taking 100 s to render while the renderer gives up waiting after 10 s
    slow = {"runway": {"latency_s": 100}}
    p = pipeline(render_deadline_s=10, lease_s=60, poll_interval_s=5, simulation=slow)
    p.run(TEXT)

    # THEN the outcome is unknown: the job is still running and its hold is kept
    job = p.job("t1")
    assert job["status"] == "RUNNING"
    assert job["attempts"][0]["state"] == "RUNNING"
    assert job["attempts"][0]["provider_task_id"] is not None
    assert p.ledger()["held_micros"] == 600_000
    p.assert_ledger_matches_attempts()

    # WHEN the task is delivered again after the lease, once the render is done
    clock.advance(200)
    p.bus.publish("render-runway", p.bus.published["render-runway"][0].data)
    p.drain()

    # THEN the stored provider task was polled, not resubmitted, and settled once
    assert len(p.submitted("runway")) == 1
    assert p.job("t1")["status"] == "SUCCEEDED"
    assert p.ledger()["spent_micros"] == 600_000
    p.assert_books_balanced()


def test_lost_outcome_is_republished_from_the_attempt_not_rendered_again(pipeline):
    # GIVEN the first outcome message is lost on its way to handle_outcome
    p = pipeline()
    lost: list[bytes] = []
    deliver = p.app.outcomes.handle

    def lossy(data: bytes, attributes: dict[str, str]) -> None:
        if not lost:
            lost.append(data)
        else:
            deliver(data, attributes)

    p.bus.subscribe("render-outcomes", lossy)
    p.run(TEXT)
    assert len(lost) == 1
    assert p.job("t1")["attempts"][0]["state"] == "REPORTED"
    p.assert_ledger_matches_attempts()  # the hold is still there

    # WHEN the render task is delivered again
    p.bus.publish("render-runway", p.bus.published["render-runway"][0].data)
    p.drain()

    # THEN the stored outcome is published again and settled, with no second render
    assert len(p.submitted("runway")) == 1
    assert p.job("t1")["status"] == "SUCCEEDED"
    assert len(p.events("job.completed")) == 1
    p.assert_books_balanced()


def test_fallback_after_midnight_settles_on_the_old_day_and_holds_on_the_new(pipeline, clock):
    # GIVEN it is 23:59 UTC and runway fails its render two minutes later
    clock.now = 1_800_057_540.0  # 2027-01-15T23:59:00Z
    p = pipeline(poll_interval_s=30, simulation={"runway": {"latency_s": 120, "failure_rate": 1}})

    # WHEN a job is routed to runway and falls back after midnight
    p.run(TEXT)

    # THEN the runway hold was released on the 15th and replicate charged on the 16th
    assert attempts(p.job("t1")) == [("runway", "FAILED"), ("replicate", "SUCCEEDED")]
    old, new = p.ledger(day="2027-01-15"), p.ledger(day="2027-01-16")
    assert (old["held_micros"], old["spent_micros"]) == (0, 0)
    assert (new["held_micros"], new["spent_micros"]) == (0, 100_000)
    p.assert_books_balanced()


def test_budget_fails_closed_when_the_ledger_cannot_be_read(pipeline):
    # GIVEN the ledger unreadable (a store outage)
    p = pipeline()
    p.store.unavailable.add("ledger")

    # WHEN a job arrives
    p.run(TEXT)

    # THEN nothing is admitted or rendered: the message is retried, then dead-lettered
    assert p.jobs() == []
    assert p.events() == []
    assert p.submitted("runway") == []
    [dead] = p.bus.published["dead-letter"]
    assert json.loads(dead.data)["job_id"] == "t1"
    assert dead.attributes["source"] == "jobs"


def test_health_fails_open_when_circuits_cannot_be_read(pipeline):
    # GIVEN circuit states unreadable
    p = pipeline()
    p.store.unavailable.add("backends")

    # WHEN a job arrives THEN it is still routed and rendered, as if every circuit were closed
    p.run(TEXT)
    assert attempts(p.job("t1")) == [("runway", "SUCCEEDED")]
    p.assert_books_balanced()


def test_same_request_with_keys_in_another_order_is_a_duplicate_not_a_conflict(pipeline):
    p = pipeline()
    p.run(TEXT)
    p.run(dict(reversed(list(TEXT.items()))))

    assert p.events("job.rejected") == []
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_render_task_for_another_backend_is_dead_lettered_not_rendered(pipeline):
    # GIVEN a job dispatched to runway
    p = pipeline()
    p.run(TEXT)
    task = p.bus.published["render-runway"][0]

    # WHEN its task reaches the replicate function (a misrouted subscription)
    p.bus.publish("render-replicate", task.data, task.attributes)
    p.drain()

    # THEN replicate renders nothing and the message goes to the dead-letter topic
    assert p.submitted("replicate") == []
    dead = p.bus.published["dead-letter"]
    assert [m.attributes["reason"] for m in dead] == ["wrong_backend"]
    p.assert_books_balanced()


def test_success_on_a_healthy_backend_writes_no_circuit_document(pipeline):
    # GIVEN every provider healthy (no circuit document exists yet)
    p = pipeline()

    # WHEN jobs succeed
    p.run(TEXT, IMAGE)

    # THEN no transaction touched the shared backends/ documents (nothing changed)
    assert [p.job(j)["status"] for j in ("t1", "i1")] == ["SUCCEEDED", "SUCCEEDED"]
    assert p.store.list("backends") == []
    p.assert_books_balanced()


def test_success_after_failures_resets_the_circuit(pipeline):
    # GIVEN runway failing its first submit only
    p = pipeline(simulation={"runway": {"outage_after": 0, "outage_count": 1}})

    # WHEN a first job falls back and a second one succeeds on runway
    p.run(TEXT)
    p.run({**TEXT, "job_id": "t2"})

    # THEN the success reset runway's consecutive failures
    assert p.job("t2")["attempts"][0]["backend"] == "runway"
    circuit = p.store.get("backends", "runway")
    assert (circuit["state"], circuit["consecutive_failures"]) == ("closed", 0)


def test_a_store_hiccup_right_after_the_submit_does_not_lose_the_task_id(pipeline, monkeypatch):
    # GIVEN the store failing once, on the write that follows the provider submit
    p = pipeline(workers=1)
    backend = p.app.backend("runway")
    submit, transact = backend.submit, p.store.run_transaction
    pending: list[bool] = []

    def submitting(task):
        task_id = submit(task)
        pending.append(True)
        return task_id

    def flaky(body):
        if pending:
            pending.clear()
            raise TransientError("firestore unavailable")
        return transact(body)

    monkeypatch.setattr(backend, "submit", submitting)
    monkeypatch.setattr(p.store, "run_transaction", flaky)

    # WHEN the job runs
    p.run(TEXT)

    # THEN the id was stored on a second try: one render, completed, charged once
    job = p.job("t1")
    assert job["status"] == "SUCCEEDED"
    assert job["attempts"][0]["provider_task_id"] == p.submitted("runway")[0]
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()
