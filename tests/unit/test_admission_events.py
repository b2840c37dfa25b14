"""Events a subscriber can trust (issue 12, part 1): a conflicting duplicate gets its own
event type and never ``job.rejected``; a duplicate job message does not announce the job
again; a redelivery after a lost publish still does. On the embedded pipeline."""

from __future__ import annotations

from aiprod import topology
from aiprod.domain.catalog import default_catalog
from aiprod.domain.messages import JobRequest
from aiprod.exceptions import TransientError
from aiprod.repositories import jobs as job_records
from aiprod.services.capacity_admin import set_capacity
from support.scenarios import TEXT, attempts, runway_job
from support.stuck import drop

FAILURE_TYPES = ("job.rejected", "job.failed")
STALLED = {"simulation": {"runway": {"latency_s": 10_000}}, "render_deadline_s": 5}


def test_a_conflict_on_a_running_job_is_refused_with_its_own_event(pipeline):
    # GIVEN a job whose task is still unclaimed (its render topic loses tasks)
    p = pipeline()
    drop(p, "render-runway")
    p.run(TEXT)
    original = p.job("t1")

    # WHEN a message reuses its job_id for another request, of another tenant
    other = {**TEXT, "prompt": "another prompt", "tenant": "acme", "metadata": {"k": "v"}}
    p.run(other)

    # THEN that message gets job.duplicate_rejected: the job's status, the refused payload's
    # hash, the sender's tenant and metadata; no event of a failure type, the job untouched
    [refused] = p.events("job.duplicate_rejected", "t1")
    assert (refused["status"], refused["reason"]) == ("RUNNING", "conflict")
    assert refused["payload_hash"] == JobRequest.model_validate(other).payload_hash()
    assert (refused["tenant"], refused["metadata"]) == ("acme", {"k": "v"})
    assert [e for e in p.events() if e["type"] in FAILURE_TYPES] == []
    assert p.job("t1") == original


def test_a_conflict_on_a_rejected_job_does_not_announce_the_rejection_again(pipeline):
    # GIVEN a job rejected over budget
    p = pipeline(global_limit_micros=1)
    p.run(TEXT)
    assert len(p.events("job.rejected", "t1")) == 1

    # WHEN another request reuses its job_id
    p.run({**TEXT, "prompt": "another prompt"})

    # THEN only the refusal is published, carrying the original's status
    [refused] = p.events("job.duplicate_rejected", "t1")
    assert refused["status"] == "REJECTED"
    assert len(p.events("job.rejected", "t1")) == 1


def test_a_duplicate_of_an_unclaimed_job_republishes_its_task_not_job_accepted(pipeline):
    # GIVEN a job whose attempt 1 is unclaimed (its render topic loses tasks)
    p = pipeline()
    lost = drop(p, "render-runway")
    p.run(TEXT)
    assert p.job("t1")["accepted_announced"] is True

    # WHEN the same job message is delivered twice more
    p.run(TEXT, TEXT)

    # THEN the task goes out again (only one delivery can claim it), job.accepted does not
    assert len(lost) == 3
    assert len(p.events("job.accepted", "t1")) == 1
    assert attempts(p.job("t1")) == [("runway", "DISPATCHED")]


def test_a_duplicate_of_a_queued_job_announces_nothing_again(pipeline):
    # GIVEN runway limited to 1 render, taken, and a second job waiting for the slot
    p = pipeline(workers=1, **STALLED)
    set_capacity(p.store, default_catalog(), "runway", 1)
    p.run(runway_job(1), runway_job(2))
    assert attempts(p.job("q2")) == [("runway", "QUEUED")]
    before = len(p.events())

    # WHEN the waiting job's message is delivered again
    p.run(runway_job(2))

    # THEN nothing is published: job.accepted and job.queued went out once each
    assert len(p.events()) == before
    assert [e["type"] for e in p.events(job_id="q2")] == ["job.accepted", "job.queued"]


def test_a_duplicate_of_a_rejected_job_announces_the_rejection_once(pipeline):
    # GIVEN a job rejected over budget, its rejection noted out
    p = pipeline(global_limit_micros=1)
    p.run(TEXT)
    assert p.job("t1")["announced"] is True

    # WHEN its message is delivered again
    p.run(TEXT)

    # THEN job.rejected is not published again
    assert len(p.events("job.rejected", "t1")) == 1


def test_a_rejection_lost_before_its_publish_is_published_by_the_redelivery(pipeline):
    # GIVEN job.rejected failing to publish once, after the rejected job was committed
    p = pipeline(global_limit_micros=1)
    failed: list[str] = []
    publish = p.bus.publish

    def flaky(name, data, attributes=None):
        if name == topology.JOB_EVENTS and not failed:
            failed.append(name)
            raise ConnectionError("publish failed (injected)")
        return publish(name, data, attributes)

    p.bus.publish = flaky

    # WHEN the job arrives (route_job raises, Pub/Sub redelivers)
    p.run(TEXT)

    # THEN the redelivery publishes it, once
    assert failed == [topology.JOB_EVENTS]
    assert len(p.events("job.rejected", "t1")) == 1
    assert p.job("t1")["announced"] is True


def test_a_duplicate_after_the_note_failed_announces_again_at_least_once(pipeline, monkeypatch):
    # GIVEN the note that job.accepted is out failing (the jobs document unwritable), and a
    # job whose task is unclaimed
    p = pipeline()
    drop(p, "render-runway")

    def unavailable(store, job_id):
        raise TransientError("firestore unavailable (injected)")

    monkeypatch.setattr(job_records, "note_accepted", unavailable)
    p.run(TEXT)
    assert p.job("t1")["accepted_announced"] is False

    # WHEN the job message is delivered again THEN job.accepted is published again: the
    # system cannot tell it went out (events are at least once)
    p.run(TEXT)
    assert len(p.events("job.accepted", "t1")) == 2
