"""A poll that raises, and a job document that does not decode (issue 10, fault path 4):
classified, counted and logged; never a crash loop, never a sweep stopped, and the job still
ends (at the latest at its wall time) with its hold settled."""

from __future__ import annotations

from aiprod.domain.policy import RetryPolicy
from aiprod.repositories import jobs as job_records
from support.scenarios import attempts
from support.stuck import LEASE, TEXT, only, sweep


def _poll_raises(p, backend: str = "runway") -> list[str]:
    """From now on every poll of ``backend`` raises an error no adapter classified."""
    calls: list[str] = []

    def broken(task_id, task):
        calls.append(task_id)
        raise RuntimeError("an answer nobody expected")

    p.app.backend(backend).poll = broken
    return calls


def test_a_poll_that_raises_is_unknown_and_the_job_ends_at_its_wall_time(pipeline, clock):
    # GIVEN runway's polls raising an unclassified error, and a 10-minute wall time
    p = pipeline(lease_s=LEASE, retry=RetryPolicy(max_wall_s=600))
    calls = _poll_raises(p)

    # WHEN a job renders on runway
    p.run(TEXT)

    # THEN the render function did not raise: the attempt keeps its task and its hold,
    # marked UNKNOWN poll_failed (the stored task is looked at again later)
    job = p.job("t1")
    assert calls and attempts(job) == [("runway", "RUNNING")]
    assert job["attempts"][0]["error_code"] == "poll_failed"
    assert job["attempts"][0]["provider_task_id"] is not None
    assert p.ledger()["held_micros"] == 600_000

    # WHEN the reconciler sweeps once the wall time has passed, the poll still raising
    clock.advance(600)
    report = sweep(p)

    # THEN the sweep had no error: the job, past its wall time, failed and released its hold
    assert report == only(overdue=1)
    job = p.job("t1")
    assert (job["status"], job["reason"]) == ("FAILED", "wall_time_exceeded")
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_a_poll_that_raises_before_the_wall_time_only_extends_the_lease(pipeline, clock):
    # GIVEN a stuck render whose polls raise, well inside its wall time
    p = pipeline(lease_s=LEASE, retry=RetryPolicy(max_wall_s=3600))
    _poll_raises(p)
    p.run(TEXT)

    # WHEN the reconciler sweeps after the lease
    clock.advance(LEASE)
    report = sweep(p)

    # THEN it looked again, counted no error, and gave the attempt a fresh lease
    assert report == only(extended=1)
    assert attempts(p.job("t1")) == [("runway", "RUNNING")]


def test_an_unreadable_job_document_is_skipped_and_the_sweep_goes_on(pipeline, clock):
    # GIVEN two stuck jobs, one of whose documents no longer decodes
    p = pipeline(lease_s=LEASE)
    p.app.backend("runway").poll = lambda task_id, task: (_ for _ in ()).throw(RuntimeError())
    p.run(TEXT, {**TEXT, "job_id": "t2"})
    broken = {**p.job("t2"), "attempts": "garbled"}
    p.store.set(job_records.COLLECTION, "t2", broken)

    # WHEN the reconciler sweeps after the lease
    clock.advance(LEASE)
    report = sweep(p)

    # THEN the unreadable one was counted and skipped, the other one handled
    assert report == only(unreadable=1, extended=1)
    assert p.job("t2")["attempts"] == "garbled"
