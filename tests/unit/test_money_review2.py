"""Second review of the money paths (lost creates looked up at once, UNKNOWN ending a lease,
submit_unconfirmed on the circuit, the output store's circuit, the spend audit's estimates):
each test is a money bug a reviewer found in them (written as a strict xfail first, each
failing for its stated reason), and holds since its fix."""

from __future__ import annotations

from aiprod.adapters.provider_common import error, unkept
from aiprod.domain import taxonomy
from aiprod.domain.health import OUTPUT_STORE, Circuit, CircuitState
from aiprod.domain.spend_audit import ProviderTask
from aiprod.repositories import circuits as circuit_records
from support.stuck import LEASE, TEXT, deliver, drop, sweep

HOUR = 3600.0


def _lose_creates(p, monkeypatch, backend: str) -> None:
    """``backend``'s creates reach the provider but their answer is lost (a gateway 503)."""
    sim = p.app.backend(backend)

    def lost(task, before_send=None):
        before_send()
        raise error(taxonomy.SUBMIT_UNCONFIRMED, "503 from the gateway")

    monkeypatch.setattr(sim, "submit", lost)


def _estimated_job(pipeline, clock, monkeypatch, job_id: str = "t1"):
    """A job whose replicate create answered 503 and could not be looked up: the reconciler
    closes it submit_unconfirmed charging its hold as an estimate (no task id)."""
    p = pipeline(lease_s=LEASE)
    _lose_creates(p, monkeypatch, "replicate")
    p.run({**TEXT, "job_id": job_id, "backends": ["replicate"]})
    sweep(p)
    job = p.job(job_id)
    first = job["attempts"][0]
    assert (first["backend"], first["error_code"]) == ("replicate", "submit_unconfirmed")
    assert first["cost_estimated"] and first["provider_task_id"] is None
    assert first["cost_micros"] == first["hold_micros"] > 0
    assert job["status"] == "FAILED" and first["late_task_lease"] is None
    return p, first


def _orphan(task_id: str, model: str, cost: int) -> ProviderTask:
    return ProviderTask(task_id, task_id, model, "succeeded", True, cost)


def test_an_estimate_of_yesterday_does_not_absorb_an_orphan_of_today(pipeline, clock, monkeypatch):
    # GIVEN a replicate create lost at 23:30 on day D, closed charging its hold (an estimate)
    clock.advance(15.5 * HOUR)  # T0 is 08:00 UTC
    p, first = _estimated_job(pipeline, clock, monkeypatch)
    day_d = p.day()
    source = p.app.spend_sources["replicate"]

    # AND day D's audit sees that very create as an orphan and lets the estimate cover it
    clock.advance(HOUR)
    source.tasks[:] = [_orphan("pred-lost", first["model"], first["hold_micros"])]
    p.app.spend_audit.run(day_d)
    spent_d = p.ledger(day=day_d)["spent_micros"]

    # WHEN on day D+1 replicate shows another prediction of the same model nobody recorded
    # (a crash between a create and storing its id, say) and D+1 is audited
    clock.advance(9 * HOUR)
    day_e = p.day()
    assert day_e != day_d
    source.tasks[:] = [_orphan("pred-other", first["model"], first["hold_micros"])]
    report = p.app.spend_audit.run(day_e)

    # THEN the D+1 orphan is charged: D's one estimate stood for one create, already matched
    assert p.ledger(day=day_d)["spent_micros"] == spent_d
    assert report.charged_micros == first["hold_micros"]


def test_an_estimate_does_not_absorb_an_orphan_that_cost_more_than_it(pipeline, clock, monkeypatch):
    # GIVEN a lost replicate create closed charging its hold H as an estimate
    p, first = _estimated_job(pipeline, clock, monkeypatch)
    hold = first["hold_micros"]

    # WHEN replicate shows one orphan prediction of that model that it billed 3 H (another,
    # longer render; or this very create, overrunning its hold: either way billed 3 H)
    clock.advance(HOUR)
    p.app.spend_sources["replicate"].tasks[:] = [_orphan("pred-long", first["model"], 3 * hold)]
    p.app.spend_audit.run(p.day())

    # THEN the books hold at least what replicate billed for its renders
    replicate_recorded = sum(
        a["cost_micros"] for a in p.job("t1")["attempts"] if a["backend"] == "replicate"
    )
    unattributed = p.ledger()["spent_micros"] - p.job("t1")["cost_micros"]
    assert replicate_recorded + unattributed >= 3 * hold


def test_no_fallback_render_is_paid_while_the_output_store_circuit_is_open(
    pipeline, clock, monkeypatch
):
    # GIVEN a job admitted on runway (its render task held back for now), every provider's
    # output refused by our bucket, and the output store's circuit opened meanwhile by
    # other jobs' failures
    p = pipeline(lease_s=LEASE)
    lost = drop(p, "render-runway")
    p.run(TEXT)
    for name in ("runway", "veo", "replicate"):
        sim = p.app.backend(name)
        poll = sim.poll

        def refused(task_id, task, poll=poll):
            result = poll(task_id, task)
            if not result.done or result.error_class is not None:
                return result
            verdict = taxonomy.OUTPUT_STORE_UNAVAILABLE
            return unkept(verdict, "bucket: 403 Forbidden", result.cost_micros)

        monkeypatch.setattr(sim, "poll", refused)
    opened = Circuit(OUTPUT_STORE, CircuitState.OPEN, 3, 1, clock() + HOUR, None, "x")
    p.store.run_transaction(lambda tx: circuit_records.save(tx, opened))

    # WHEN its render task arrives and the runway render's output cannot be kept
    deliver(p, "render-runway", "render_runway")
    p.bus.publish("render-runway", lost[0])
    p.drain()

    # THEN the job stops there (charged runway's cost): no other provider is paid for a
    # render our bucket is known to refuse
    job = p.job("t1")
    assert job["attempts"][0]["error_code"] == "output_store_unavailable"
    assert p.submitted("veo") == [] and p.submitted("replicate") == []


def test_a_job_whose_poll_keeps_failing_still_ends_at_its_wall_time(pipeline, clock):
    # GIVEN a runway render that outlives its render function (its task id stored, the
    # function's UNKNOWN report ended the lease) in a job with a 30 s wall time
    from aiprod.domain.policy import RetryPolicy
    from support.stuck import slow_runway

    p = pipeline(**slow_runway(1000, retry=RetryPolicy(max_wall_s=30)))
    p.run(TEXT)
    [attempt] = p.job("t1")["attempts"]
    assert attempt["provider_task_id"] is not None and attempt["state"] == "RUNNING"

    # AND the reconciler's poll step for it keeps raising (any persistent step error: here
    # runway's client cannot be built; a request that no longer validates does the same)
    def unreachable(name):
        raise RuntimeError(f"{name}: API key secret not found")

    p.app.reconciler._backend = unreachable

    # WHEN the reconciler sweeps for twenty minutes past the wall time
    for _ in range(5):
        clock.advance(300)
        sweep(p)

    # THEN the job ended at its wall time (its task kept as a late task) and holds nothing
    job = p.job("t1")
    assert (job["status"], job["reason"]) == ("FAILED", "wall_time_exceeded")
    assert p.ledger()["held_micros"] == 0
