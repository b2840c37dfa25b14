"""The reconciler on the embedded pipeline: a job past its wall time fails and releases
its hold, and a render past it is judged when its lease expires.

Stuck states are made the way production makes them: a render topic that drops its tasks, an
outcome that is lost, a submit that crashes the function, a provider slower than the render
function waits. The FakeClock then moves past the lease. Every scenario ends with the books
balanced: nothing held, and the spend equal to what the jobs cost.
"""

from __future__ import annotations

import pytest

from aiprod.domain.policy import RetryPolicy
from support.scenarios import attempts
from support.stuck import TEXT, drop, only, slow_runway, sweep


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
    [(1000, "FAILED", "overdue"), (20, "SUCCEEDED", "reported")],
    ids=["still rendering: failed", "finished: delivered and charged"],
)
def test_a_render_nobody_watches_is_judged_at_the_next_sweep(
    pipeline, clock, latency_s, status, action
):
    # GIVEN a render running at the provider whose render function stopped waiting after
    # 10 s (its lease ended with it), its job with a 30 s wall time
    p = pipeline(**slow_runway(latency_s, retry=RetryPolicy(max_wall_s=30)))
    p.run(TEXT)

    # WHEN the reconciler sweeps past the wall time
    clock.advance(25)
    assert clock() - clock.start > 30
    report = sweep(p)

    # THEN a finished render is delivered and charged; one still running fails the job and
    # is kept as a late task (charged when it finishes: test_money_review)
    assert report == only(**{action: 1})
    job = p.job("t1")
    assert job["status"] == status
    if status == "FAILED":
        assert job["attempts"][0]["late_task_lease"] is not None
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_a_watched_render_is_not_cut_off_by_the_wall_time(pipeline, clock):
    # GIVEN a render whose render function is still watching it (a live lease), past the
    # job's wall time
    p = pipeline(**slow_runway(1000, retry=RetryPolicy(max_wall_s=30)))
    p.run(TEXT)
    watched = p.job("t1")
    attempt = watched["attempts"][0]
    leased = {**attempt, "lease_expires_at": clock.now + 300, "error_code": None, "reason": None}
    p.store.set("jobs", "t1", {**watched, "attempts": [leased]})

    # WHEN the reconciler sweeps past the wall time THEN it leaves the live render alone
    clock.advance(25)
    assert sweep(p) == only()
    assert p.job("t1")["status"] == "RUNNING"
