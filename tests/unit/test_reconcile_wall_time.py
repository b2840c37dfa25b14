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
from support.stuck import LEASE, TEXT, drop, only, slow_runway, sweep


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
