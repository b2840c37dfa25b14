"""Adversarial review of job cancel (issue 12, part 3) on the embedded pipeline: the races
and failure paths a cancel must hold (five of them were bugs the review found, fixed since:
a slot given back twice, a finished render thrown away, a lost create never looked up, a
second refusal for one request, a refused create left charged)."""

from __future__ import annotations

import pytest

from aiprod.adapters.provider_common import error
from aiprod.domain import taxonomy
from aiprod.domain.catalog import default_catalog
from aiprod.domain.policy import RetryPolicy
from aiprod.repositories import slots as slot_records
from aiprod.services.capacity_admin import set_capacity
from support.cancels import (
    cancel,
    cancel_during_create,
    lost_answer_then_findable,
    outcomes_of,
    price,
)
from support.scenarios import TEXT, attempts, runway_job
from support.stuck import LEASE, deliver, drop, sweep

LONG = {"runway": {"latency_s": 10_000}}  # a render far longer than the render deadline


# --- create in flight ------------------------------------------------------------------


@pytest.mark.parametrize("apply_outcome", [False, True], ids=["settled after", "settled first"])
def test_a_cancel_while_the_create_is_in_flight_charges_the_late_task_once(
    pipeline, clock, monkeypatch, apply_outcome
):
    p = pipeline(workers=1, simulation=LONG, render_deadline_s=5, lease_s=LEASE)
    cancel_during_create(p, monkeypatch, "t1", apply_outcome)
    p.run({**TEXT, "backends": ["runway"]})
    clock.advance(LEASE)
    sweep(p)  # the late task (stopped at once, 0 ran) is charged, if not charged already

    job = p.job("t1")
    assert (job["status"], job["reason"]) == ("CANCELLED", "cancel_requested")
    [first] = job["attempts"]
    assert (first["state"], first["error_code"]) == ("FAILED", "cancel_requested")
    assert first["provider_task_id"] == p.submitted("runway")[0]
    assert p.app.backend("runway").cancelled == [first["provider_task_id"]]
    assert (first["cost_micros"], first["cost_estimated"], first["late_task_lease"]) == (
        0,
        False,
        None,
    )
    assert len(p.events("job.cancelled", "t1")) == 1
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_a_cancel_during_the_create_gives_its_render_slot_back_once(pipeline, monkeypatch):
    # GIVEN runway limited to one render at a time, q2 queued behind q1, and q1 cancelled
    # while its create is in flight, the cancel settled before the create answers
    p = pipeline(workers=1, simulation=LONG, render_deadline_s=5, lease_s=LEASE)
    set_capacity(p.store, default_catalog(), "runway", 1)
    cancel_during_create(p, monkeypatch, "q1", apply_outcome=True)

    # WHEN both run (q1's create answers late; q2 starts in the slot q1 gave back)
    p.run(runway_job(1), runway_job(2))

    # THEN q1 is cancelled, its late task charged; q2 renders, holding the one slot
    assert p.job("q1")["status"] == "CANCELLED"
    assert p.job("q1")["attempts"][0]["late_task_lease"] is None
    assert p.job("q2")["status"] == "RUNNING"
    assert p.job("q2")["attempts"][0]["provider_task_id"] is not None
    assert slot_records.in_use(p.store, "runway") == 1  # observed: 0 (given back twice)

    # and a third job must wait for it, not start beside it
    p.run(runway_job(3))
    assert p.job("q3")["attempts"][0]["state"] == "QUEUED"


# --- a provider task running ------------------------------------------------------------


def _running(pipeline, clock, ran_s: float, **settings):
    """q1 rendering on runway (its render function gave up watching after 5 s), q2 queued
    behind it for runway's one slot; ``ran_s`` of q1's 10,000 s render has run."""
    settings.setdefault("retry", RetryPolicy(max_wall_s=50_000))
    p = pipeline(workers=1, simulation=LONG, render_deadline_s=5, lease_s=LEASE, **settings)
    set_capacity(p.store, default_catalog(), "runway", 1)
    p.run(runway_job(1), runway_job(2))
    assert p.job("q1")["attempts"][0]["provider_task_id"] is not None
    assert p.job("q2")["attempts"][0]["state"] == "QUEUED"
    clock.advance(ran_s - 5)
    return p


def test_a_stopped_task_is_charged_its_share_once_and_the_queued_job_starts(pipeline, clock):
    # GIVEN q1 a tenth of the way through its render, q2 waiting for the slot
    p = _running(pipeline, clock, ran_s=1_000)
    hold = price(p, "q1")

    # WHEN the cancel is delivered three times, and the reconciler sweeps
    for _ in range(3):
        cancel(p, "q1")
    sweep(p)
    cancel(p, "q1")

    # THEN q1 is CANCELLED charged a tenth of its price (the provider's own cancelled end),
    # announced once, never retried; q2 took the slot and renders
    job = p.job("q1")
    assert (job["status"], job["cost_micros"]) == ("CANCELLED", hold // 10)
    assert [(a["state"], a["error_code"]) for a in job["attempts"]] == [("FAILED", "cancelled")]
    assert len(p.events("job.cancelled", "q1")) == 1
    assert p.events("job.cancel_refused", "q1") == []
    # the first delivery ended it (a render function watched the stopped task at once):
    # the redeliveries find it cancelled and ask the provider nothing more
    assert len(p.app.backend("runway").cancelled) == 1
    assert p.job("q2")["attempts"][0]["state"] == "RUNNING"
    assert slot_records.in_use(p.store, "runway") == 1
    assert p.ledger()["spent_micros"] == hold // 10
    assert p.ledger()["held_micros"] == price(p, "q2")


@pytest.mark.parametrize("refusal", ["raises", "false"])
def test_a_refused_stop_closes_at_once_and_the_late_task_is_charged_its_full_price(
    pipeline, clock, monkeypatch, refusal
):
    # GIVEN q1 rendering, and runway's cancel failing (a 5xx) or refusing (False)
    p = _running(pipeline, clock, ran_s=100)
    hold = price(p, "q1")
    sim = p.app.backend("runway")

    def stop(task_id, task):
        sim.cancelled.append(task_id)
        if refusal == "raises":
            raise error(taxonomy.cancel_status(503), "cancel: 503")
        return False

    monkeypatch.setattr(sim, "cancel", stop)

    # WHEN it is cancelled: the job ends at once, the task runs on
    cancel(p, "q1")
    job = p.job("q1")
    assert (job["status"], job["cost_micros"]) == ("CANCELLED", 0)
    assert job["attempts"][0]["late_task_lease"] is not None
    assert slot_records.in_use(p.store, "runway") == 1  # the late task keeps the slot
    assert p.job("q2")["attempts"][0]["state"] == "QUEUED"

    # and the reconciler follows the late task until it ends, asking it to stop each time
    clock.advance(LEASE)
    sweep(p)
    assert p.job("q1")["cost_micros"] == 0
    clock.advance(10_000)
    sweep(p)

    # THEN its full price is charged, its slot given back, and q2 starts
    job = p.job("q1")
    assert (job["status"], job["cost_micros"]) == ("CANCELLED", hold)
    assert job["attempts"][0]["late_task_lease"] is None
    assert len(p.events("job.cancelled", "q1")) == 1
    assert len(sim.cancelled) == 2  # the cancel, then the look that found it running
    assert p.job("q2")["attempts"][0]["state"] == "RUNNING"
    assert slot_records.in_use(p.store, "runway") == 1
    assert p.ledger()["spent_micros"] == hold


def test_a_render_finished_at_a_provider_that_cannot_stop_it_wins_over_the_cancel(
    pipeline, clock, monkeypatch
):
    # GIVEN q1's render finished at its provider (nobody has polled it since), and the
    # provider has no cancel (Veo's case)
    p = _running(pipeline, clock, ran_s=10_001)
    hold = price(p, "q1")
    monkeypatch.setattr(p.app.backend("runway"), "can_cancel", False)

    # WHEN it is cancelled, and the reconciler runs
    cancel(p, "q1")
    sweep(p)

    # THEN the render finished first: delivered, charged, the refusal saying so
    job = p.job("q1")
    assert (job["status"], job["cost_micros"]) == ("SUCCEEDED", hold)
    [refused] = p.events("job.cancel_refused", "q1")
    assert refused["reason"] == "finished_first"
    assert p.events("job.cancelled", "q1") == []
    # q1's render is charged once; q2, which took its slot, still renders (and holds)
    p.assert_ledger_matches_attempts()
    assert p.ledger()["spent_micros"] == hold


# --- between attempts, and before anything was sent ---------------------------------------


def test_a_cancel_during_a_retry_backoff_ends_the_job_and_its_retry_task_does_nothing(pipeline):
    # GIVEN runway's first render failed RETRY_SAME: attempt 2 waits out its backoff,
    # its task published but not yet run
    p = pipeline(simulation={"runway": {"failure_rate": 1.0, "error_class": "RETRY_SAME"}})
    outcomes = drop(p, "render-outcomes")
    p.run({**TEXT, "backends": ["runway"]})
    tasks = drop(p, "render-runway")
    deliver(p, "render-outcomes", "handle_outcome")
    for data in outcomes:
        p.app.outcomes.handle(data, {})
    p.drain()
    job = p.job("t1")
    assert attempts(job) == [("runway", "FAILED"), ("runway", "DISPATCHED")]
    assert job["attempts"][1]["not_before"] > job["attempts"][0]["finished_at"]

    # WHEN it is cancelled, then the retry's task arrives
    cancel(p, "t1")
    deliver(p, "render-runway", "render_runway")
    for data in tasks:
        p.app.renderer("runway").handle(data, {})
    p.drain()

    # THEN nothing more was rendered; one job.cancelled; the retry's hold released
    job = p.job("t1")
    assert job["status"] == "CANCELLED"
    assert attempts(job) == [("runway", "FAILED"), ("runway", "FAILED")]
    assert job["attempts"][1]["error_code"] == "cancel_requested"
    assert len(p.submitted("runway")) == 1
    assert len(p.events("job.cancelled", "t1")) == 1
    assert p.events("job.failed", "t1") == []
    p.assert_books_balanced()


def test_a_cancel_after_the_claim_and_before_the_create_sends_nothing(pipeline, monkeypatch):
    # GIVEN a render function that has claimed the attempt and is about to create the task
    p = pipeline(workers=1)
    sim = p.app.backend("runway")
    submit = sim.submit

    def cancelled_first(task, before_send=None):
        cancel(p, task.job_id, drain=False)  # arrives before the submit intent is written
        return submit(task, before_send)

    monkeypatch.setattr(sim, "submit", cancelled_first)

    # WHEN it runs
    p.run({**TEXT, "backends": ["runway", "replicate"]})

    # THEN no create was sent, nothing is charged, nothing fell back
    job = p.job("t1")
    assert (job["status"], job["cost_micros"]) == ("CANCELLED", 0)
    assert attempts(job) == [("runway", "FAILED")]
    assert p.submitted("runway") == [] and p.submitted("replicate") == []
    assert len(p.events("job.cancelled", "t1")) == 1
    p.assert_books_balanced()


def test_a_cancel_after_a_fallback_stops_the_second_backends_task(pipeline, clock):
    # GIVEN runway failed and the job fell back to replicate, rendering (its function gave
    # up watching after 5 s)
    p = pipeline(
        workers=1,
        simulation={"runway": {"failure_rate": 1.0}, "replicate": {"latency_s": 10_000}},
        render_deadline_s=5,
        lease_s=LEASE,
    )
    p.run(TEXT)
    assert attempts(p.job("t1")) == [("runway", "FAILED"), ("replicate", "RUNNING")]
    hold = price(p, "t1", 2)
    clock.advance(2_495)  # a quarter of replicate's render has run

    # WHEN it is cancelled and the reconciler polls the stopped task
    cancel(p, "t1")
    sweep(p)

    # THEN the replicate task was stopped and charged its quarter, and nothing else ran
    job = p.job("t1")
    assert (job["status"], job["cost_micros"]) == ("CANCELLED", hold // 4)
    assert attempts(job) == [("runway", "FAILED"), ("replicate", "FAILED")]
    assert len(p.app.backend("replicate").cancelled) == 1
    assert len(p.events("job.cancelled", "t1")) == 1
    p.assert_books_balanced()


def test_a_redelivered_job_message_after_a_cancel_adds_nothing(pipeline):
    # GIVEN a job admitted, its task not yet delivered, and cancelled
    p = pipeline()
    drop(p, "render-runway")
    request = {**TEXT, "backends": ["runway"]}
    p.run(request)
    cancel(p, "t1")

    # WHEN its job message is delivered again
    p.run(request)

    # THEN it stays cancelled, announced once, with no new attempt and no new hold
    job = p.job("t1")
    assert job["status"] == "CANCELLED" and len(job["attempts"]) == 1
    assert len(p.events("job.accepted", "t1")) == 1
    assert len(p.events("job.cancelled", "t1")) == 1
    assert p.events("job.duplicate_rejected", "t1") == []
    p.assert_books_balanced()


# --- the reconciler meanwhile --------------------------------------------------------------


def test_a_stop_taken_but_not_honoured_past_the_wall_time_ends_cancelled_and_charges_the_task(
    pipeline, clock, monkeypatch
):
    # GIVEN q1 rendering, its provider taking the stop but rendering on
    p = _running(pipeline, clock, ran_s=100, retry=RetryPolicy(max_wall_s=3_600))
    hold = price(p, "q1")
    sim = p.app.backend("runway")
    monkeypatch.setattr(sim, "cancel", lambda task_id, task: sim.cancelled.append(task_id) or True)

    # WHEN it is cancelled, and the reconciler sweeps past its wall time, then after the end
    cancel(p, "q1")
    clock.advance(3_600)
    sweep(p)
    job = p.job("q1")
    assert (job["status"], job["reason"], job["cost_micros"]) == (
        "CANCELLED",
        "cancel_requested",
        0,
    )
    clock.advance(10_000)
    sweep(p)

    # THEN it ended CANCELLED (not FAILED), announced once, and the task's price is charged
    job = p.job("q1")
    assert (job["status"], job["cost_micros"]) == ("CANCELLED", hold)
    assert job["attempts"][0]["error_code"] == "wall_time_exceeded"
    assert len(p.events("job.cancelled", "q1")) == 1
    assert p.events("job.failed", "q1") == []
    assert p.ledger()["spent_micros"] == hold


def test_a_lost_cancel_outcome_is_published_again_by_a_redelivered_cancel_and_the_sweep(
    pipeline, clock
):
    # GIVEN a dispatched job whose cancel's outcome is lost
    p = pipeline(lease_s=LEASE)
    drop(p, "render-runway")
    p.run({**TEXT, "backends": ["runway"]})
    lost = drop(p, "render-outcomes")
    cancel(p, "t1")
    assert p.job("t1")["attempts"][0]["state"] == "REPORTED"

    # WHEN the cancel is delivered again (still lost), then the outcome flows, and the
    # reconciler republishes it once the lease runs out
    cancel(p, "t1")
    assert len(lost) == 2
    deliver(p, "render-outcomes", "handle_outcome")
    clock.advance(LEASE)
    sweep(p)
    for data in lost:
        p.app.outcomes.handle(data, {})
    p.drain()
    cancel(p, "t1")

    # THEN the job is cancelled once, nothing charged
    job = p.job("t1")
    assert (job["status"], job["cost_micros"]) == ("CANCELLED", 0)
    assert len(p.events("job.cancelled", "t1")) == 1
    assert p.events("job.cancel_refused", "t1") == []
    p.assert_books_balanced()


def test_a_tenant_job_cancelled_mid_render_balances_the_tenant_books(pipeline, clock):
    p = pipeline(
        workers=1,
        simulation=LONG,
        render_deadline_s=5,
        lease_s=LEASE,
        tenant_limit_micros=50_000_000,
    )
    p.run({**TEXT, "backends": ["runway"], "tenant": "acme"})
    hold = price(p, "t1")
    clock.advance(4_995)  # half of the render has run
    cancel(p, "t1")
    sweep(p)
    assert (p.job("t1")["status"], p.job("t1")["cost_micros"]) == ("CANCELLED", hold // 2)
    assert p.ledger("tenant:acme")["spent_micros"] == hold // 2
    assert p.ledger("tenant:acme")["held_micros"] == 0
    p.assert_books_balanced()


# --- a create whose answer was lost ----------------------------------------------------------


def test_a_cancel_of_a_create_whose_answer_was_lost_finds_and_stops_the_task(
    pipeline, clock, monkeypatch
):
    # GIVEN a replicate job whose create answer was lost (the task exists, running 10,000 s)
    p = pipeline(
        workers=1,
        simulation={"replicate": {"latency_s": 10_000}},
        render_deadline_s=5,
        lease_s=LEASE,
    )
    created = lost_answer_then_findable(p, monkeypatch)
    p.run({**TEXT, "backends": ["replicate"]})
    first = p.job("t1")["attempts"][0]
    assert (first["state"], first["error_code"], first["provider_task_id"]) == (
        "RUNNING",
        "submit_unconfirmed",
        None,
    )
    hold = first["hold_micros"]

    # WHEN it is cancelled, and the reconciler sweeps until the task would have ended
    cancel(p, "t1")
    for _ in range(3):
        clock.advance(LEASE)
        sweep(p)
    clock.advance(10_000)
    sweep(p)

    # THEN the task was found and asked to stop, and what it ran is charged, not the hold
    job = p.job("t1")
    assert job["status"] == "CANCELLED"
    assert p.app.backend("replicate").cancelled == created  # observed: [] (never stopped)
    assert job["attempts"][0]["provider_task_id"] == created[0]
    assert job["cost_micros"] < hold  # observed: the hold, as an estimate, for good
    assert job["attempts"][0]["cost_estimated"] is False
    p.assert_books_balanced()


# --- a cancel that came too late -------------------------------------------------------------


def test_a_redelivered_cancel_that_came_too_late_is_refused_once(pipeline):
    # GIVEN a render that finished, its outcome stored but not yet applied
    p = pipeline()
    lost = drop(p, "render-outcomes")
    p.run(TEXT)

    # WHEN it is cancelled, the outcome applied, and the same cancel delivered again
    cancel(p, "t1")
    deliver(p, "render-outcomes", "handle_outcome")
    for data in lost:
        p.app.outcomes.handle(data, {})
    p.drain()
    cancel(p, "t1")

    # THEN the job succeeded, and the one request was refused once, finished_first
    assert p.job("t1")["status"] == "SUCCEEDED"
    refused = [e["reason"] for e in p.events("job.cancel_refused", "t1")]
    assert refused == ["finished_first"]  # observed: ["finished_first", "already_finished"]
    assert len(p.events("job.completed", "t1")) == 1
    p.assert_books_balanced()


def test_a_finished_render_republished_by_the_sweep_after_a_cancel_succeeds_once(pipeline, clock):
    # GIVEN a render that finished, its outcome lost, and the job cancelled meanwhile
    p = pipeline(lease_s=LEASE)
    drop(p, "render-outcomes")
    p.run(TEXT)
    cancel(p, "t1")
    deliver(p, "render-outcomes", "handle_outcome")

    # WHEN the reconciler republishes the stored outcome (twice: two sweeps past the lease)
    clock.advance(LEASE)
    sweep(p)
    clock.advance(LEASE)
    sweep(p)

    # THEN delivered and charged once, the refusal before the completion, each once
    job = p.job("t1")
    assert job["status"] == "SUCCEEDED" and job["cost_micros"] == price(p, "t1")
    types = [e["type"] for e in p.events(job_id="t1")]
    assert types[-2:] == ["job.cancel_refused", "job.completed"]
    assert types.count("job.cancel_refused") == 1 and types.count("job.completed") == 1
    p.assert_books_balanced()


# --- aiprod cancel ---------------------------------------------------------------------------


def _cli(p, monkeypatch, job_id: str, sleep=lambda s: None) -> int:
    from aiprod_tools.cli import context, parser
    from aiprod_tools.cli import main as cli_main
    from aiprod_tools.cli.cancel import cancel as cancel_command

    monkeypatch.setattr(context, "make_app", lambda: p.app)
    if sleep is None:
        return cli_main(["cancel", job_id, "--reason", "pulled", "--timeout", "5"])
    args = parser().parse_args(["cancel", job_id, "--timeout", "5"])
    return cancel_command(args, sleep=sleep)


def test_aiprod_cancel_exit_statuses(pipeline, monkeypatch):
    # a queued job: cancelled, 0; again: cancelled already, 0; an unknown job: 1
    p = pipeline(workers=1, simulation=LONG, render_deadline_s=5)
    set_capacity(p.store, default_catalog(), "runway", 1)
    p.run(runway_job(1), runway_job(2))
    assert _cli(p, monkeypatch, "q2", sleep=lambda s: p.drain()) == 0
    assert p.job("q2")["status"] == "CANCELLED"
    assert _cli(p, monkeypatch, "q2", sleep=None) == 0
    assert _cli(p, monkeypatch, "nobody", sleep=None) == 1

    # a render that finished before the cancel reached it: 3, the job succeeded
    lost = drop(p, "render-outcomes")
    p.run({**TEXT, "backends": ["replicate"]})
    assert p.job("t1")["attempts"][0]["state"] == "REPORTED"
    deliver(p, "render-outcomes", "handle_outcome")

    def outcome_arrives(_s: float) -> None:
        p.drain()
        for data in lost:
            p.app.outcomes.handle(data, {})
        p.drain()

    assert _cli(p, monkeypatch, "t1", sleep=outcome_arrives) == 3
    assert p.job("t1")["status"] == "SUCCEEDED"
    # over already: 1
    assert _cli(p, monkeypatch, "t1", sleep=None) == 1


def test_a_cancel_noted_while_a_timeout_is_pending_ends_the_job_without_a_fallback(
    pipeline, clock, monkeypatch
):
    # GIVEN a render function lost right after writing its submit intent (a create may
    # have gone out), and the reconciler's timeout stored on the attempt, not yet applied
    p = pipeline(lease_s=LEASE)
    sim = p.app.backend("runway")

    def lost(task, before_send=None):
        before_send()
        raise RuntimeError("worker lost")

    monkeypatch.setattr(sim, "submit", lost)
    drop(p, "render-runway")  # the redelivered task is lost too
    p.run(TEXT)
    job = p.job("t1")
    assert job["attempts"][0]["state"] == "DISPATCHED"
    task = p.bus.published["render-runway"][0].data
    with pytest.raises(RuntimeError):
        p.app.renderer("runway").handle(task, {})
    assert p.job("t1")["attempts"][0]["submitting_at"] is not None
    hold = price(p, "t1")
    lost_outcomes = drop(p, "render-outcomes")
    clock.advance(LEASE)
    assert sweep(p)["timed_out"] == 1
    assert p.job("t1")["attempts"][0]["state"] == "REPORTED"

    # WHEN it is cancelled, then the timeout's outcome is applied
    cancel(p, "t1")
    deliver(p, "render-outcomes", "handle_outcome")
    for data in lost_outcomes:
        p.app.outcomes.handle(data, {})
    p.drain()

    # THEN it ended CANCELLED charging the unconfirmed create's hold; no fallback
    job = p.job("t1")
    assert (job["status"], job["cost_micros"]) == ("CANCELLED", hold)
    assert attempts(job) == [("runway", "FAILED")]
    assert p.submitted("replicate") == []
    assert len(p.events("job.cancelled", "t1")) == 1
    p.assert_books_balanced()


def test_a_cancelled_job_that_spilled_to_another_backend_releases_the_hold_it_spilled_with(
    pipeline, clock
):
    # GIVEN runway's one slot busy, q2 (speed) queued for it and spilled to replicate
    p = pipeline(
        workers=1,
        simulation={"runway": {"latency_s": 10_000}, "replicate": {"latency_s": 10_000}},
        render_deadline_s=5,
        lease_s=LEASE,
        tenant_limit_micros=50_000_000,
    )
    set_capacity(p.store, default_catalog(), "runway", 1)
    set_capacity(p.store, default_catalog(), "replicate", 1)
    p.run(runway_job(1), {**TEXT, "job_id": "r1", "backends": ["replicate"]})
    speed = {
        "job_id": "q2",
        "prompt": "a paper boat 2",
        "backends": ["runway", "replicate"],
        "priority": "speed",
        "tenant": "acme",
    }
    p.run(speed)
    assert len(p.events("job.queued", "q2")) == 1  # it waits for runway
    cancel(p, "r1")
    sweep(p)  # r1's stopped task ends: its replicate slot frees, q2 spills there
    [a] = p.job("q2")["attempts"]
    assert a["backend"] == "replicate" and a["state"] == "RUNNING", a

    # WHEN it is cancelled half way through, and the stopped task is polled
    clock.advance(4_995)
    cancel(p, "q2")
    sweep(p)

    # THEN it is charged half of replicate's price on both scopes; nothing else held for it
    job = p.job("q2")
    assert (job["status"], job["cost_micros"]) == ("CANCELLED", a["hold_micros"] // 2)
    assert p.ledger("tenant:acme")["spent_micros"] == a["hold_micros"] // 2
    assert p.ledger("tenant:acme")["held_micros"] == 0
    assert slot_records.in_use(p.store, "replicate") == 0
    assert p.job("r1")["status"] == "CANCELLED"


@pytest.mark.parametrize("settled_first", [False, True], ids=["settled after", "settled first"])
def test_a_cancel_during_a_create_the_provider_refuses_charges_nothing(
    pipeline, clock, monkeypatch, settled_first
):
    # GIVEN runway answering the create with a 429 (nothing created), the job cancelled
    # between the submit intent and that answer
    p = pipeline(workers=1, lease_s=LEASE)
    sim = p.app.backend("runway")

    def refused(task, before_send=None):
        before_send()
        cancel(p, task.job_id, drain=False)
        if settled_first:
            for data in outcomes_of(p, task.job_id):
                p.app.outcomes.handle(data, {})
        raise error(taxonomy.THROTTLED, "429 too many requests")

    monkeypatch.setattr(sim, "submit", refused)

    # WHEN it runs, and the reconciler sweeps later
    p.run({**TEXT, "backends": ["runway"]})
    clock.advance(LEASE)
    sweep(p)

    # THEN it is cancelled, and nothing is charged: the provider said it created nothing
    job = p.job("t1")
    assert job["status"] == "CANCELLED"
    assert (job["cost_micros"], job["attempts"][0]["cost_estimated"]) == (0, False)
    assert p.ledger()["spent_micros"] == 0  # observed: the whole hold
    p.assert_books_balanced()
