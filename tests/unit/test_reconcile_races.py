"""The reconciler on the embedded pipeline: idempotent, safe with two sweeps at once, and
racing a render function that claims an attempt after the sweep read it.

Stuck states are made the way production makes them: a render topic that drops its tasks, an
outcome that is lost, a submit that crashes the function, a provider slower than the render
function waits. The FakeClock then moves past the lease. Every scenario ends with the books
balanced: nothing held, and the spend equal to what the jobs cost.
"""

from __future__ import annotations

import json
import threading

from aiprod_tools.embedded import run_schedules
from support.scenarios import attempts
from support.stuck import LEASE, TEXT, deliver, drop, only, sweep


def outcome_codes(p) -> list[str | None]:
    return [json.loads(m.data)["error_code"] for m in p.bus.published["render-outcomes"]]


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
