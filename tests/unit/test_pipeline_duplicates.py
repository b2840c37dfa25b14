"""The real handlers on the embedded bus and store, with simulated providers: duplicates (a
job, task or outcome delivered again; a publish lost right after its commit).

Each scenario publishes JobRequests to ``jobs``, drains the bus, then reads what the system
recorded: job documents, ledger entries, circuit states, published events and provider
submissions. Every scenario ends with the books balanced: nothing held, and each budget
scope's spend equal to the cost of its jobs.
"""

from __future__ import annotations

from aiprod.domain.messages import JobRequest
from support.scenarios import TEXT, attempts


def test_duplicate_job_message_renders_and_charges_once(pipeline):
    # GIVEN the same job message delivered three times, one after the other. (Concurrently,
    # a duplicate outcome can land between the success's commit and its `announced` note and
    # publish job.completed twice: events are at least once, see effects.after_outcome.)
    p = pipeline(workers=1)
    p.run(TEXT, TEXT, TEXT)

    # THEN one render, one charge, one acceptance, one completion
    assert len(p.submitted("runway")) == 1
    assert len(p.jobs()) == 1
    assert p.job("t1")["cost_micros"] == 600_000
    assert p.ledger()["spent_micros"] == 600_000
    assert len(p.events("job.accepted")) == 1
    assert len(p.events("job.completed")) == 1

    # AND a redelivery after completion publishes nothing at all
    before = len(p.bus.published["job-events"])
    p.run(TEXT)
    assert len(p.bus.published["job-events"]) == before
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_reused_job_id_with_another_payload_is_a_conflict(pipeline):
    # GIVEN a completed job
    p = pipeline()
    p.run(TEXT)
    original = p.job("t1")

    # WHEN another request arrives under the same job_id
    p.run({**TEXT, "prompt": "something else entirely"})

    # THEN that message is refused with its own event type, carrying its payload's hash and
    # the job's status; nothing says the job failed, and the job is untouched
    [refused] = p.events("job.duplicate_rejected", "t1")
    assert (refused["reason"], refused["status"]) == ("conflict", "SUCCEEDED")
    other = JobRequest.model_validate({**TEXT, "prompt": "something else entirely"})
    assert refused["payload_hash"] == other.payload_hash() != original["payload_hash"]
    assert p.events("job.rejected") == p.events("job.failed") == []
    assert p.job("t1") == original
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_render_task_delivered_again_after_completion_does_not_render(pipeline):
    # GIVEN a completed job
    p = pipeline()
    p.run(TEXT)
    task = p.bus.published["render-runway"][0]
    job, ledger = p.job("t1"), p.ledger()

    # WHEN its render task is delivered again
    p.bus.publish("render-runway", task.data, task.attributes)
    p.drain()

    # THEN there is no second render, and nothing changed
    assert len(p.submitted("runway")) == 1
    assert (p.job("t1"), p.ledger()) == (job, ledger)
    assert len(p.bus.published["render-outcomes"]) == 1
    p.assert_books_balanced()


def test_outcome_delivered_again_is_settled_once(pipeline):
    # GIVEN a job that fell back from runway and completed on replicate
    p = pipeline(simulation={"runway": {"down": True}})
    p.run(TEXT)
    job, ledger = p.job("t1"), p.ledger()
    failure, success = p.bus.published["render-outcomes"]

    # WHEN both outcomes are delivered again
    for message in (failure, success):
        p.bus.publish("render-outcomes", message.data, message.attributes)
    p.drain()

    # THEN no second settlement, no second fallback, no second completion (the job notes
    # that job.completed is out, so a redelivery does not publish it again)
    assert (p.job("t1"), p.ledger()) == (job, ledger)
    assert p.job("t1")["announced"] is True
    assert len(p.submitted("replicate")) == 1
    assert len(p.events("job.completed")) == 1
    p.assert_books_balanced()


def _failing_once(p, topic: str, carrying: bytes = b"") -> list[str]:
    """Make the next publish to ``topic`` (of a message containing ``carrying``) fail, as a
    Pub/Sub outage right after a commit would."""
    failed: list[str] = []
    publish = p.bus.publish

    def flaky(name: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        if name == topic and carrying in data and not failed:
            failed.append(name)
            raise ConnectionError(f"publish to {name} failed")
        return publish(name, data, attributes)

    p.bus.publish = flaky
    return failed


def test_completion_event_lost_after_the_commit_is_published_by_the_redelivery(pipeline):
    # GIVEN job.completed failing to publish once, after handle_outcome committed the success
    p = pipeline()
    failed = _failing_once(p, "job-events", carrying=b'"job.completed"')

    # WHEN the job runs (the outcome handler raises, Pub/Sub redelivers the outcome)
    p.run(TEXT)

    # THEN job.completed reaches users once the redelivery publishes it, charged once
    assert failed == ["job-events"]
    assert p.job("t1")["status"] == "SUCCEEDED"
    assert len(p.events("job.completed")) == 1
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_next_task_lost_after_the_fallback_commit_is_published_by_the_redelivery(pipeline):
    # GIVEN runway down, and the fallback task's first publish failing after the commit
    p = pipeline(simulation={"runway": {"down": True}})
    failed = _failing_once(p, "render-replicate")

    # WHEN the job runs
    p.run(TEXT)

    # THEN the redelivered failure outcome publishes the task again, the job completes on
    # replicate without waiting for the lease, rendered and charged once
    assert failed == ["render-replicate"]
    assert p.job("t1")["status"] == "SUCCEEDED"
    assert attempts(p.job("t1")) == [("runway", "FAILED"), ("replicate", "SUCCEEDED")]
    assert len(p.submitted("replicate")) == 1
    assert len(p.events("job.completed")) == 1
    p.assert_books_balanced()
