"""The reconciler on the embedded pipeline: each stuck state a lost message or a dead process
leaves, found by its expired lease (or passed wall time) and finished the normal way.

Stuck states are made the way production makes them: a render topic that drops its tasks, an
outcome that is lost, a submit that crashes the function, a provider slower than the render
function waits. The FakeClock then moves past the lease. Every scenario ends with the books
balanced: nothing held, and the spend equal to what the jobs cost.
"""

from __future__ import annotations

from support.scenarios import attempts
from support.stuck import LEASE, TEXT, deliver, drop, only, slow_runway, sweep

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


def test_a_render_lost_before_sending_anything_starts_again_on_the_same_backend(
    pipeline, clock, monkeypatch
):
    # GIVEN runway's render function crashing before its create was sent (no submit intent)
    p = pipeline(lease_s=LEASE)
    backend = p.app.backend("runway")
    real_submit = backend.submit

    def crash(task, before_send=None):
        raise RuntimeError("instance lost while preparing the request")

    monkeypatch.setattr(backend, "submit", crash)
    p.run(TEXT)
    job = p.job("t1")
    assert attempts(job) == [("runway", "RUNNING")]
    assert job["attempts"][0]["submitting_at"] is None

    # WHEN the instance is healthy again and the reconciler runs after the submit window
    monkeypatch.setattr(backend, "submit", real_submit)
    clock.advance(LEASE)
    report = sweep(p)

    # THEN the same attempt was dispatched again (our crash is not the provider's failure:
    # no new attempt, no fallback, no circuit count) and rendered once, charged once
    assert report == only(restarted=1)
    job = p.job("t1")
    assert attempts(job) == [("runway", "SUCCEEDED")]
    assert job["attempts"][0]["restarts"] == 1
    assert len(p.submitted("runway")) == 1
    assert p.store.get("backends", "runway") is None
    p.assert_books_balanced()


def test_a_render_lost_after_its_submit_intent_is_charged_its_hold_and_falls_back(
    pipeline, clock, monkeypatch
):
    # GIVEN runway's render function lost right after writing its submit intent (the create
    # may have reached the provider; no task id came back)
    p = pipeline(lease_s=LEASE)

    def crash(task, before_send=None):
        before_send()
        raise RuntimeError("instance lost mid-create")

    monkeypatch.setattr(p.app.backend("runway"), "submit", crash)
    p.run(TEXT)
    job = p.job("t1")
    assert job["attempts"][0]["submitting_at"] is not None
    hold = job["attempts"][0]["hold_micros"]

    # WHEN the reconciler runs after the submit window
    clock.advance(LEASE)
    report = sweep(p)

    # THEN the attempt closed charging its hold (an estimate: a paid render nobody can look
    # up may exist), not against runway's circuit, and the job completed on replicate
    assert report == only(timed_out=1)
    job = p.job("t1")
    assert attempts(job) == [("runway", "FAILED"), ("replicate", "SUCCEEDED")]
    first = job["attempts"][0]
    assert (first["error_code"], first["cost_micros"], first["cost_estimated"]) == (
        "lease_expired",
        hold,
        True,
    )
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
