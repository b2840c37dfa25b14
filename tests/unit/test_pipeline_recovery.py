"""The real handlers on the embedded bus and store, with simulated providers: lost messages,
timeouts, budget days and store outages.

Each scenario publishes JobRequests to ``jobs``, drains the bus, then reads what the system
recorded: job documents, ledger entries, circuit states, published events and provider
submissions. Every scenario ends with the books balanced: nothing held, and each budget
scope's spend equal to the cost of its jobs.
"""

from __future__ import annotations

import json

from aiprod.exceptions import TransientError
from support.scenarios import IMAGE, TEXT, attempts


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

    def submitting(task, before_send=None):
        task_id = submit(task, before_send)
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
