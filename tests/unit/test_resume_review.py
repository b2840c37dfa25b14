"""Review of issue 10 paths 4 and 5: a redelivered task resumes polling under a live lease, a
second poller reports nothing, every poll is classified (``provider_calls.look``), and an
unreadable job document is set aside by the reconciler.

The tests under "findings" failed on the first version of that change and hold since its
fixes (path 3's, the submit intent, came last); those under "verified behaviour" pin
down what the change relies on that no other test covers."""

from __future__ import annotations

import pytest

from aiprod.exceptions import StoreUnavailableError
from aiprod.repositories import jobs as job_records
from aiprod.services.reconcile import Reconciler
from support.scenarios import attempts
from support.stuck import LEASE, TEXT, drop, only, slow_runway, sweep

OUTCOMES = "render-outcomes"


def _outcomes(p) -> int:
    return len(p.bus.published[OUTCOMES])


def _task_id_store_down(p) -> None:
    """Every attempt to store a provider task id fails, as with the store down for all tries."""

    def store_down(tx, task, task_id):
        raise StoreUnavailableError("firestore unavailable")

    p.app.renderer("runway")._submitter._record = store_down


def _stopped_render(p, clock) -> object:
    """A job whose render function gave up waiting (RUNNING, task id stored, lease live) and
    whose provider task has since finished; returns the render task's message."""
    p.run(TEXT)
    job = p.job("t1")
    assert attempts(job) == [("runway", "RUNNING")]
    assert job["attempts"][0]["provider_task_id"] is not None
    [task] = p.bus.published["render-runway"]
    clock.advance(20)
    return task


# -- findings (fail on the reviewed change) --------------------------------------------------


def test_one_flaky_poll_does_not_park_the_job_for_a_whole_lease(pipeline, clock):
    # GIVEN a 15 s runway render, a render function that waits up to 60 s, a 10-minute lease,
    # and a poll that raises an unclassified error once (a reset connection, say), then answers
    p = pipeline(
        lease_s=600,
        render_deadline_s=60,
        poll_interval_s=5,
        simulation={"runway": {"latency_s": 15}},
    )
    backend = p.app.backend("runway")
    real_poll, calls = backend.poll, []

    def flaky(task_id, task):
        calls.append(task_id)
        if len(calls) == 1:
            raise RuntimeError("connection reset while reading the answer")
        return real_poll(task_id, task)

    backend.poll = flaky

    # WHEN the job runs (no reconciler sweep: well inside the lease)
    p.run(TEXT)

    # THEN the render function kept looking until its own deadline, as it does for a poll
    # that says "not done", and delivered the render: a single glitch must not turn into
    # UNKNOWN poll_failed, an acknowledged message and a 10-minute wait for the reconciler
    job = p.job("t1")
    assert len(calls) > 1, "the render function stopped polling after the first glitch"
    assert attempts(job) == [("runway", "SUCCEEDED")]
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_unreadable_documents_do_not_starve_readable_stuck_jobs(pipeline, clock):
    # GIVEN two stuck jobs whose leases ran out, the older one's document no longer decoding,
    # and a sweep batch of 1 (production: 200 per field; the same holds with 200 bad ones)
    p = pipeline(lease_s=LEASE)
    drop(p, "render-runway")
    p.run(TEXT)
    clock.advance(1)
    p.run({**TEXT, "job_id": "t2"})
    p.store.set(job_records.COLLECTION, "t1", {**p.job("t1"), "attempts": "garbled"})
    app = p.app
    reconciler = Reconciler(app.store, app.outbox, app.settings, app.backend, app.clock, batch=1)

    # WHEN the reconciler sweeps, sweep after sweep, long after the lease and the wall time
    clock.advance(4000)
    reports = []
    for _ in range(3):
        reports.append(reconciler.run().to_json())
        p.drain()

    # THEN the readable job was reached: the bad document was counted once and quarantined
    # (out of the due window), so it did not keep taking the batch slot a readable job needs
    assert [r["unreadable"] for r in reports] == [1, 0, 0]
    assert p.store.get(job_records.COLLECTION, "t1")["quarantined_at"] == clock.now
    assert sum(r["overdue"] for r in reports) == 1, reports
    assert p.job("t2")["status"] == "FAILED"
    assert p.ledger()["held_micros"] == 600_000  # only t1's hold (unreadable) is left


def test_every_unreadable_document_is_counted(pipeline, clock):
    # GIVEN two stuck jobs whose documents both lost their job_id (and so do not decode)
    p = pipeline(lease_s=LEASE)
    drop(p, "render-runway")
    p.run(TEXT, {**TEXT, "job_id": "t2"})
    for job_id in ("t1", "t2"):
        broken = {k: v for k, v in p.job(job_id).items() if k != "job_id"}
        p.store.set(job_records.COLLECTION, job_id, broken)

    # WHEN the reconciler sweeps after the lease
    clock.advance(LEASE)
    report = sweep(p)

    # THEN both are counted (and logged) as unreadable: an operator must learn of each one;
    # today both are keyed "None" in jobs.due, so one of them silently disappears
    assert report["unreadable"] == 2, report


def test_a_render_whose_task_id_could_not_be_stored_is_not_freed_for_free(pipeline, clock):
    # GIVEN a render whose create succeeded but whose task id could not be stored (the store
    # was down for every try), so the invocation failed and Pub/Sub redelivered the task
    p = pipeline(**slow_runway(5))
    _task_id_store_down(p)

    # WHEN the job runs: the redelivery finds RUNNING, no task id, a live lease (BUSY, acked)
    p.run(TEXT)
    job = p.job("t1")
    assert attempts(job) == [("runway", "RUNNING")]
    assert job["attempts"][0]["provider_task_id"] is None
    assert len(p.submitted("runway")) == 1  # paid for at the provider

    # WHEN the lease runs out and the reconciler sweeps
    clock.advance(LEASE)
    sweep(p)

    # THEN the attempt, whose create certainly reached the provider, is closed charging its
    # hold (as an unconfirmed create is, leases.possible_charge), not for free while a
    # second render is bought on the next backend
    runway = p.job("t1")["attempts"][0]
    assert runway["cost_micros"] == runway["hold_micros"], runway
    p.assert_books_balanced()


def test_a_resumed_render_reports_the_time_since_its_first_claim(pipeline, clock):
    # GIVEN a render claimed at t0 whose worker stopped after storing the task id
    p = pipeline(**slow_runway(15))
    p.run(TEXT)
    first_claim = p.job("t1")["attempts"][0]["claimed_at"]
    [task] = p.bus.published["render-runway"]
    clock.advance(20)

    # WHEN the task is redelivered and RESUMEs (under the live lease) and finishes
    p.bus.publish("render-runway", task.data, task.attributes)
    p.drain()

    # THEN the outcome (and so the render-duration metric) counts from the first claim;
    # today RESUME overwrites claimed_at and the render function counts from its own start,
    # so a 35 s render is reported as a few seconds
    job = p.job("t1")
    assert attempts(job) == [("runway", "SUCCEEDED")]
    outcome = job["attempts"][0]["outcome"]
    assert outcome["started_at"] == first_claim, (outcome["started_at"], first_claim)
    assert job["attempts"][0]["claimed_at"] == first_claim


# -- verified behaviour (passes) -------------------------------------------------------------


def test_an_outcome_reported_by_a_crashed_poller_is_published_by_the_reconciler(pipeline, clock):
    # GIVEN a finished provider task polled by two deliveries of its render task at once
    p = pipeline(workers=1, **slow_runway(15))
    task = _stopped_render(p, clock)
    renderer, backend = p.app.renderer("runway"), p.app.backend("runway")
    real_poll, nested, crashed = backend.poll, [], []
    outbox = p.app.outbox
    real_send = outbox.send

    def send_then_crash(effects):
        effects = list(effects)
        if effects and not crashed:
            crashed.append(effects)
            raise StoreUnavailableError("instance lost before publishing")
        real_send(effects)

    def poll_while_another_reports_and_crashes(task_id, render_task):
        if not nested:
            nested.append(True)
            outbox.send = send_then_crash
            with pytest.raises(StoreUnavailableError):
                renderer.handle(task.data, task.attributes)  # the first poller
            outbox.send = real_send
        return real_poll(task_id, render_task)

    backend.poll = poll_while_another_reports_and_crashes
    before = _outcomes(p)

    # WHEN the first poller stores the outcome and dies before publishing it, and the second
    # poller's report finds the attempt already REPORTED (it acknowledges the message, so
    # Pub/Sub does not redeliver it)
    renderer.handle(task.data, task.attributes)
    p.drain()

    # THEN nothing was published yet, but the outcome is stored on the attempt
    assert crashed and _outcomes(p) == before
    job = p.job("t1")
    assert attempts(job) == [("runway", "REPORTED")]
    assert job["attempts"][0]["outcome"]["succeeded"] is True

    # WHEN the REPORTED lease runs out THEN the reconciler publishes it: never lost, once
    clock.advance(LEASE)
    assert sweep(p) == only(republished=1)
    assert attempts(p.job("t1")) == [("runway", "SUCCEEDED")]
    assert len(p.events("job.completed")) == 1
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_a_resume_racing_the_reconcilers_poll_wins_and_the_sweep_skips(pipeline, clock):
    # GIVEN a finished provider task whose lease has run out
    p = pipeline(workers=1, **slow_runway(15))
    task = _stopped_render(p, clock)
    clock.advance(LEASE)
    renderer, backend = p.app.renderer("runway"), p.app.backend("runway")
    real_poll, nested = backend.poll, []

    def poll_while_the_task_is_redelivered(task_id, render_task):
        if not nested:  # the reconciler's poll: meanwhile the render task is redelivered
            nested.append(True)
            renderer.handle(task.data, task.attributes)
        return real_poll(task_id, render_task)

    backend.poll = poll_while_the_task_is_redelivered
    before = _outcomes(p)

    # WHEN the reconciler polls while a redelivery RESUMEs, polls and reports
    report = sweep(p)

    # THEN the sweep's conditioned change was skipped: one outcome, applied once
    assert report == only(skipped=1)
    assert _outcomes(p) == before + 1
    assert attempts(p.job("t1")) == [("runway", "SUCCEEDED")]
    assert len(p.events("job.completed")) == 1
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_a_resume_finishing_after_the_attempt_failed_over_changes_nothing(pipeline, clock):
    # GIVEN a runway render that fails (FALLBACK), polled by two deliveries of its task
    p = pipeline(
        workers=1, **slow_runway(15, simulation={"runway": {"latency_s": 15, "failure_rate": 1.0}})
    )
    task = _stopped_render(p, clock)
    renderer, backend = p.app.renderer("runway"), p.app.backend("runway")
    real_poll, nested = backend.poll, []

    def poll_while_another_reports_and_it_is_applied(task_id, render_task):
        if not nested:
            nested.append(True)
            renderer.handle(task.data, task.attributes)
            p.drain()  # handle_outcome closed attempt 1 and the fallback ran to its end
        return real_poll(task_id, render_task)

    backend.poll = poll_while_another_reports_and_it_is_applied

    # WHEN the slower poller, RESUMEd before the attempt closed, finishes its poll
    renderer.handle(task.data, task.attributes)
    p.drain()

    # THEN its report is a no-op: attempt 1 was closed once, its hold released once,
    # and the fallback's job is not touched
    job = p.job("t1")
    assert attempts(job)[0] == ("runway", "FAILED")
    assert job["status"] == "SUCCEEDED"
    first = [o for o in p.bus.published[OUTCOMES] if b'"attempt":1' in o.data]
    assert len({o.data for o in first}) == len(first)  # no duplicate publication
    assert sum(1 for o in first if b'"render_failed"' in o.data) == 1
    assert len(p.submitted("runway")) == 1
    assert len(p.events("job.completed")) == 1
    p.assert_books_balanced()


def test_repeated_poll_failures_keep_the_hold_until_the_poll_answers(pipeline, clock):
    # GIVEN a render whose polls raise for a while, inside a long wall time
    p = pipeline(**slow_runway(15))
    backend = p.app.backend("runway")
    real_poll, broken = backend.poll, [True]

    def poll(task_id, task):
        if broken:
            raise RuntimeError("an answer nobody expected")
        return real_poll(task_id, task)

    backend.poll = poll
    p.run(TEXT)

    # WHEN the reconciler sweeps several leases in a row, the poll still raising
    for _ in range(3):
        clock.advance(LEASE)
        assert sweep(p) == only(extended=1)
        job = p.job("t1")
        # THEN each time the attempt keeps its hold and its task: nothing applied, no resubmit
        assert attempts(job) == [("runway", "RUNNING")]
        assert job["attempts"][0]["error_code"] == "poll_failed"
        assert p.ledger()["held_micros"] == 600_000
        assert p.events("job.completed") == p.events("job.failed") == []

    # WHEN the poll answers again THEN the render is delivered and charged, once
    broken.clear()
    clock.advance(LEASE)
    assert sweep(p) == only(reported=1)
    assert attempts(p.job("t1")) == [("runway", "SUCCEEDED")]
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_without_a_task_id_a_redelivery_stays_busy_and_never_submits_again(pipeline, clock):
    # GIVEN a render whose task id could not be stored (the invocation failed)
    p = pipeline(**slow_runway(5))
    _task_id_store_down(p)

    # WHEN Pub/Sub redelivers the task under the live lease
    p.run(TEXT)

    # THEN it is BUSY (acknowledged): no second create, the hold kept
    assert len(p.submitted("runway")) == 1
    assert attempts(p.job("t1")) == [("runway", "RUNNING")]
    assert p.ledger()["held_micros"] == 600_000
    assert p.bus.published["dead-letter"] == []


def test_a_job_whose_sweep_step_keeps_failing_does_not_starve_the_others(pipeline, clock):
    # GIVEN two stuck jobs (their tasks lost, leases run out), a sweep batch of 1, and the
    # older one's step failing every time it is tried (say its backend cannot be built)
    p = pipeline(lease_s=LEASE)
    drop(p, "render-runway")
    p.run(TEXT)
    clock.advance(1)
    p.run({**TEXT, "job_id": "t2"})
    app = p.app
    reconciler = Reconciler(app.store, app.outbox, app.settings, app.backend, app.clock, batch=1)
    real_redispatch = reconciler._redispatch

    def failing_for_t1(job, now):
        if job.job_id == "t1":
            raise RuntimeError("cannot reach the backend of t1")
        return real_redispatch(job, now)

    reconciler._steps[next(k for k, v in reconciler._steps.items() if v == real_redispatch)] = (
        failing_for_t1
    )

    # WHEN the reconciler sweeps twice after the lease
    clock.advance(LEASE)
    first = reconciler.run().to_json()
    second = reconciler.run().to_json()
    p.drain()

    # THEN the failing job was pushed behind the other, which the second sweep reached
    assert (first["errors"], second["redispatched"]) == (1, 1), (first, second)
    assert p.job("t1")["lease_expires_at"] > clock.now  # looked at again in a few sweeps
