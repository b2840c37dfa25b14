"""The reconciler on the embedded pipeline: each stuck state a lost message or a dead process
leaves, found by its expired lease (or passed wall time) and finished the normal way.

Stuck states are made the way production makes them: a render topic that drops its tasks, an
outcome that is lost, a submit that crashes the function, a provider slower than the render
function waits. The FakeClock then moves past the lease. Every scenario ends with the books
balanced: nothing held, and the spend equal to what the jobs cost.
"""

from __future__ import annotations

import json
import threading

import pytest

from aiprod.bootstrap import HANDLERS
from aiprod.domain.policy import RetryPolicy
from aiprod.local.embedded import run_schedules
from aiprod.services.reconcile import ReconcileReport

TEXT = {"job_id": "t1", "prompt": "a paper boat in the rain"}
LEASE = 60.0


def attempts(job: dict) -> list[tuple[str, str]]:
    return [(a["backend"], a["state"]) for a in job["attempts"]]


def only(**counts: int) -> dict[str, int]:
    """A sweep's report: these counts, every other action zero."""
    return {**ReconcileReport().to_json(), **counts}


def drop(p, topic: str) -> list[bytes]:
    """From now on, messages on ``topic`` are lost (kept here for the test to look at)."""
    lost: list[bytes] = []
    p.bus.subscribe(topic, lambda data, attributes: lost.append(data))
    return lost


def deliver(p, topic: str, function: str) -> None:
    """Deliver ``topic`` to its function again."""
    p.bus.subscribe(topic, HANDLERS[function](p.app))


def sweep(p) -> dict[str, int]:
    """One reconciler run, then everything it set in motion."""
    report = p.app.reconciler.run()
    p.drain()
    return report.to_json()


def outcome_codes(p) -> list[str | None]:
    return [json.loads(m.data)["error_code"] for m in p.bus.published["render-outcomes"]]


# -- DISPATCHED: the task was lost ------------------------------------------------------------


def test_lost_task_is_published_again_and_the_job_completes(pipeline, clock):
    # GIVEN a job whose render task is lost on its way to runway
    p = pipeline(lease_s=LEASE)
    lost = drop(p, "render-runway")
    p.run(TEXT)
    job = p.job("t1")
    assert attempts(job) == [("runway", "DISPATCHED")]
    assert (job["lease_expires_at"], job["wall_deadline_at"]) == (clock() + LEASE, clock() + 3600)

    # WHEN the reconciler runs while the lease lives THEN it leaves the job alone
    assert sweep(p) == only()

    # WHEN it runs after the lease, with runway's subscription delivering again
    deliver(p, "render-runway", "render_runway")
    clock.advance(LEASE)
    report = sweep(p)

    # THEN the task was published once more and rendered, once
    assert report == only(redispatched=1)
    job = p.job("t1")
    assert attempts(job) == [("runway", "SUCCEEDED")]
    assert job["attempts"][0]["redispatched"] == 1
    assert (len(lost), len(p.submitted("runway"))) == (1, 1)
    assert (job["lease_expires_at"], job["wall_deadline_at"]) == (None, None)
    p.assert_books_balanced()


def test_task_lost_twice_times_out_and_the_job_falls_back(pipeline, clock):
    # GIVEN runway's render topic losing every task
    p = pipeline(lease_s=LEASE)
    lost = drop(p, "render-runway")
    p.run(TEXT)

    # WHEN the reconciler republishes it (lost again), then runs after the next lease
    clock.advance(LEASE)
    assert sweep(p) == only(redispatched=1)
    clock.advance(LEASE)
    report = sweep(p)

    # THEN the attempt timed out and the job completed on the next backend
    assert report == only(timed_out=1)
    job = p.job("t1")
    assert attempts(job) == [("runway", "FAILED"), ("replicate", "SUCCEEDED")]
    first = job["attempts"][0]
    assert (first["error_class"], first["error_code"]) == ("FALLBACK", "lease_expired")
    assert p.submitted("runway") == []
    # AND a lost process says nothing about runway's health
    assert p.store.get("backends", "runway") is None

    # WHEN the lost task finally arrives THEN it renders nothing (the attempt is closed)
    deliver(p, "render-runway", "render_runway")
    p.bus.publish("render-runway", lost[0])
    p.drain()
    assert p.submitted("runway") == []
    assert len(p.events("job.completed")) == 1
    p.assert_books_balanced()


# -- RUNNING: the render function went away -----------------------------------------------------


def slow_runway(latency_s: float, **settings):
    """Runway takes ``latency_s``; the render function gives up waiting after 10 s."""
    return {
        "lease_s": LEASE,
        "render_deadline_s": 10,
        "poll_interval_s": 5,
        "simulation": {"runway": {"latency_s": latency_s}},
        **settings,
    }


def test_finished_provider_task_is_collected_without_a_second_submit(pipeline, clock):
    # GIVEN a render that outlived its render function (its task id stored, outcome unknown)
    p = pipeline(**slow_runway(100))
    p.run(TEXT)
    job = p.job("t1")
    assert attempts(job) == [("runway", "RUNNING")]
    assert job["attempts"][0]["provider_task_id"] is not None
    assert p.ledger()["held_micros"] == 600_000

    # WHEN the reconciler runs after the lease, the provider having finished
    clock.advance(200)
    report = sweep(p)

    # THEN it polled the stored task, reported it, and the job completed: one submit, one charge
    assert report == only(reported=1)
    assert attempts(p.job("t1")) == [("runway", "SUCCEEDED")]
    assert len(p.submitted("runway")) == 1
    assert len(p.events("job.completed")) == 1
    assert p.ledger()["spent_micros"] == 600_000
    p.assert_books_balanced()


def test_provider_task_still_running_only_extends_the_lease(pipeline, clock):
    # GIVEN a render still running at the provider after its lease expired
    p = pipeline(**slow_runway(1000))
    p.run(TEXT)
    clock.advance(LEASE)
    published = {topic: len(messages) for topic, messages in p.bus.published.items()}

    # WHEN the reconciler runs
    report = sweep(p)

    # THEN it extended the lease and did nothing else: no publish, no submit, hold kept
    assert report == only(extended=1)
    job = p.job("t1")
    assert attempts(job) == [("runway", "RUNNING")]
    assert job["lease_expires_at"] == clock() + LEASE
    assert {t: len(m) for t, m in p.bus.published.items()} == published
    assert len(p.submitted("runway")) == 1
    assert p.ledger()["held_micros"] == 600_000
    # AND a second run at once finds nothing to do
    assert sweep(p) == only()

    # WHEN the provider finishes and the new lease expires THEN the job completes
    clock.advance(1000)
    assert sweep(p) == only(reported=1)
    assert attempts(p.job("t1")) == [("runway", "SUCCEEDED")]
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_render_that_died_before_storing_a_task_id_times_out_and_falls_back(
    pipeline, clock, monkeypatch
):
    # GIVEN runway's render function crashing at the submit (its redelivery finds a live lease)
    p = pipeline(lease_s=LEASE)

    def crash(task):
        raise RuntimeError("instance lost mid-submit")

    monkeypatch.setattr(p.app.backend("runway"), "submit", crash)
    p.run(TEXT)
    job = p.job("t1")
    assert attempts(job) == [("runway", "RUNNING")]
    assert job["attempts"][0]["provider_task_id"] is None

    # WHEN the reconciler runs after the lease
    clock.advance(LEASE)
    report = sweep(p)

    # THEN the attempt timed out (nothing to poll) and the job completed on replicate
    assert report == only(timed_out=1)
    job = p.job("t1")
    assert attempts(job) == [("runway", "FAILED"), ("replicate", "SUCCEEDED")]
    assert job["attempts"][0]["error_code"] == "lease_expired"
    assert p.store.get("backends", "runway") is None
    p.assert_books_balanced()


# -- REPORTED: the outcome was never applied ----------------------------------------------------


def test_outcome_never_applied_is_published_again_and_settled_once(pipeline, clock):
    # GIVEN a render whose outcome message is lost on its way to handle_outcome
    p = pipeline(lease_s=LEASE)
    lost = drop(p, "render-outcomes")
    p.run(TEXT)
    job = p.job("t1")
    assert attempts(job) == [("runway", "REPORTED")]
    assert job["lease_expires_at"] == clock() + LEASE
    p.assert_ledger_matches_attempts()  # the hold is still there

    # WHEN the reconciler runs after the lease, outcomes being delivered again
    deliver(p, "render-outcomes", "handle_outcome")
    clock.advance(LEASE)
    report = sweep(p)

    # THEN the stored outcome was published again and settled once, with no second render
    assert report == only(republished=1)
    assert len(lost) == 1
    assert attempts(p.job("t1")) == [("runway", "SUCCEEDED")]
    assert len(p.submitted("runway")) == 1
    assert len(p.events("job.completed")) == 1
    assert p.ledger()["spent_micros"] == 600_000
    p.assert_books_balanced()


# -- wall time ---------------------------------------------------------------------------------


def test_job_past_its_wall_time_fails_and_releases_its_hold(pipeline, clock):
    # GIVEN a job whose task was lost, and a 5-minute wall time (shorter than the lease)
    p = pipeline(lease_s=600, retry=RetryPolicy(max_wall_s=300))
    drop(p, "render-runway")
    p.run(TEXT)
    assert p.ledger()["held_micros"] == 600_000

    # WHEN the reconciler runs once the wall time has passed
    clock.advance(300)
    report = sweep(p)

    # THEN the job failed for good, the user heard why, and nothing is held
    assert report == only(overdue=1)
    job = p.job("t1")
    assert (job["status"], job["reason"]) == ("FAILED", "wall_time_exceeded")
    assert attempts(job) == [("runway", "FAILED")]
    assert job["attempts"][0]["error_class"] == "TERMINAL"
    [failed] = p.events("job.failed", "t1")
    assert failed["reason"] == "wall_time_exceeded"
    assert p.ledger()["held_micros"] == 0
    assert p.submitted("replicate") == []
    p.assert_books_balanced()


@pytest.mark.parametrize(
    ("latency_s", "status", "action"),
    [(1000, "FAILED", "overdue"), (50, "SUCCEEDED", "reported")],
    ids=["still rendering: failed", "finished: delivered and charged"],
)
def test_render_past_the_wall_time_is_judged_when_its_lease_expires(
    pipeline, clock, latency_s, status, action
):
    # GIVEN a render running at the provider, its job with a 30 s wall time
    p = pipeline(**slow_runway(latency_s, retry=RetryPolicy(max_wall_s=30)))
    p.run(TEXT)

    # WHEN the wall time passes while the lease lives THEN the render is not cut off
    clock.advance(25)
    assert clock() - clock.start > 30
    assert sweep(p) == only()

    # WHEN the lease expires too
    clock.advance(LEASE)
    report = sweep(p)

    # THEN a finished render is delivered and charged; one still running fails the job
    assert report == only(**{action: 1})
    assert p.job("t1")["status"] == status
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


# -- idempotent, concurrent, racing a render function -------------------------------------------


def test_two_sweeps_at_once_change_a_job_once(pipeline, clock):
    # GIVEN a lost task past its lease, and two reconcilers that both read it before either acts
    p = pipeline(lease_s=LEASE)
    lost = drop(p, "render-runway")
    p.run(TEXT)
    clock.advance(LEASE)
    both_read = threading.Barrier(2, timeout=10)
    query = p.store.query

    def query_then_wait(*args, **kwargs):
        found = query(*args, **kwargs)
        both_read.wait()
        return found

    p.store.query = query_then_wait
    reports: list[dict[str, int]] = []

    # WHEN they run concurrently
    threads = [threading.Thread(target=lambda: reports.append(sweep(p))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    p.store.query = query

    # THEN one republished the task and the other found it changed and did nothing
    assert sorted(r["redispatched"] for r in reports) == [0, 1]
    assert sorted(r["skipped"] for r in reports) == [0, 1]
    assert len(lost) == 2  # the original and one republish
    assert p.job("t1")["attempts"][0]["redispatched"] == 1
    # AND running it again changes nothing more
    assert sweep(p) == only()
    assert len(lost) == 2

    # WHEN the task is finally delivered THEN the job completes once
    deliver(p, "render-runway", "render_runway")
    p.bus.publish("render-runway", lost[-1])
    p.drain()
    assert attempts(p.job("t1")) == [("runway", "SUCCEEDED")]
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_attempt_claimed_after_the_sweep_read_it_is_not_timed_out(pipeline, clock):
    # GIVEN a task lost twice, so the next sweep would time its attempt out
    p = pipeline(lease_s=LEASE)
    lost = drop(p, "render-runway")
    p.run(TEXT)
    clock.advance(LEASE)
    assert sweep(p) == only(redispatched=1)
    clock.advance(LEASE)

    # WHEN the late task reaches runway's render function right after the sweep read the job
    deliver(p, "render-runway", "render_runway")
    query, late = p.store.query, list(lost)

    def query_then_render(*args, **kwargs):
        found = query(*args, **kwargs)
        while late:
            p.app.renderer("runway").handle(late.pop(), {})
        return found

    p.store.query = query_then_render
    report = sweep(p)
    p.store.query = query

    # THEN the sweep saw the attempt had changed and published no timeout
    assert report == only(skipped=1)
    assert "lease_expired" not in outcome_codes(p)
    # AND the render that claimed it completed the job on runway, once
    assert attempts(p.job("t1")) == [("runway", "SUCCEEDED")]
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_embedded_runtime_runs_the_scheduled_sweep(pipeline, clock):
    # GIVEN a lost task past its lease
    p = pipeline(lease_s=LEASE)
    drop(p, "render-runway")
    p.run(TEXT)
    deliver(p, "render-runway", "render_runway")
    clock.advance(LEASE)

    # WHEN the embedded runtime runs what Cloud Scheduler would this minute
    results = run_schedules(p.app)
    p.drain()

    # THEN the reconciler ran and the job completed
    assert results["reconcile"].to_json() == only(redispatched=1)
    assert p.job("t1")["status"] == "SUCCEEDED"
    p.assert_books_balanced()
