"""Review of the outbox refactor (99ba4f7 -> 171b2d4), which was meant to change no behaviour.

Each scenario runs the real handlers on the embedded bus and store, and makes a publish fail
right after a commit the way a Pub/Sub outage would (the handler raises, the message is
redelivered). What must hold is what held before the refactor: every message owed by a commit
is published again by the redelivery, nothing is published twice that was not before, dead
letters name the same reason and source, metrics count each job once, and money is read as
before.

Tests named ``..._regression`` fail on 171b2d4 and pass on 99ba4f7: they are the findings.
One more finding is older than the refactor (its docstring says PRE-EXISTING). The others pin
down behaviour the refactor kept and no other test covered.
"""

from __future__ import annotations

import copy
import json

from aiprod import topology
from aiprod.adapters.local_metrics import MemorySink
from aiprod.config import Settings
from aiprod.domain import metric_set as m
from aiprod.domain.catalog import default_catalog
from aiprod.domain.ledger import Pool, Shard
from aiprod.domain.messages import JobRequest
from aiprod.domain.selection import candidates
from aiprod.exceptions import TransientError
from aiprod.repositories import jobs as job_records
from aiprod.services.budget_admin import DayBooks
from aiprod.services.budget_audit import Discrepancy, Expected, check
from support.scenarios import attempts
from support.stuck import drop

TEXT = {"job_id": "t1", "prompt": "a paper boat in the rain", "metadata": {"campaign": "x"}}
LEASE = 60.0
DAY = "2027-01-15"


def failing(p, topic: str, carrying: bytes = b"", times: int = 1) -> list[bytes]:
    """Make the next ``times`` publishes to ``topic`` (of messages containing ``carrying``) fail,
    as a Pub/Sub outage right after a commit would; returns what failed to go out."""
    failed: list[bytes] = []
    publish = p.bus.publish

    def flaky(name: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        if name == topic and carrying in data and len(failed) < times:
            failed.append(bytes(data))
            raise ConnectionError(f"publish to {name} failed (injected)")
        return publish(name, data, attributes)

    p.bus.publish = flaky
    return failed


def total(p, metric: m.Metric, **labels: str) -> float:
    sink = p.app.metrics
    assert isinstance(sink, MemorySink)
    return sum(sink.values(metric, **labels))


def redeliver(p, topic: str, index: int = 0) -> None:
    message = p.bus.published[topic][index]
    p.bus.publish(topic, message.data, message.attributes)
    p.drain()


# -- findings: metrics lost or doubled when a publish fails after the commit --------------------


def test_completed_job_is_counted_once_when_its_event_publish_failed_once_regression(pipeline):
    """Before: handle_outcome counted the finished job, then published job.completed. Now the
    outbox publishes first; when that publish fails, the redelivery is a duplicate (applied
    already) and only publishes, so the job is never counted: jobs/finished, the pipeline
    duration and the job cost lose it for good."""
    # GIVEN job.completed failing to publish once, after the success was committed
    p = pipeline()
    failed = failing(p, topology.JOB_EVENTS, carrying=b'"job.completed"')

    # WHEN the job runs (handle_outcome raises, Pub/Sub redelivers the outcome)
    p.run(TEXT)

    # THEN the event reached users once (the redelivery published it) ...
    assert len(failed) == 1
    assert p.job("t1")["status"] == "SUCCEEDED"
    assert len(p.events("job.completed")) == 1
    # ... AND the finished job is in the SLO counter and the cost distribution, once
    assert total(p, m.JOBS_FINISHED, status="completed") == 1
    assert len(p.app.metrics.values(m.JOB_COST)) == 1
    p.assert_books_balanced()


def test_failed_job_is_counted_once_when_its_event_publish_failed_once_regression(pipeline):
    """As above for job.failed: before, the failure was counted before its event was published."""
    # GIVEN runway rejecting the request itself, and job.failed failing to publish once
    bad = {"down": True, "error_class": "TERMINAL", "error_code": "bad_request"}
    p = pipeline(simulation={"runway": bad})
    failed = failing(p, topology.JOB_EVENTS, carrying=b'"job.failed"')

    # WHEN the job runs
    p.run(TEXT)

    # THEN job.failed reached users once, and the failed job was counted once
    assert len(failed) == 1
    assert p.job("t1")["status"] == "FAILED"
    assert len(p.events("job.failed")) == 1
    assert total(p, m.JOBS_FINISHED, status="failed", reason="terminal") == 1
    p.assert_books_balanced()


def test_rejected_job_is_counted_once_when_its_event_publish_failed_once_regression(pipeline):
    """Before: route_job counted a rejection it created, then published job.rejected; the
    redelivery (the job exists: not created) published again without counting. Now the count
    comes after the publish, so a failed publish means the rejection is never counted."""
    # GIVEN a budget too small for any hold, and job.rejected failing to publish once
    p = pipeline(global_limit_micros=10_000)
    failed = failing(p, topology.JOB_EVENTS, carrying=b'"job.rejected"')

    # WHEN a job arrives (route_job raises after the commit, Pub/Sub redelivers it)
    p.run(TEXT)

    # THEN it was rejected, users heard so once, and the rejection was counted once
    assert len(failed) == 1
    assert p.job("t1")["status"] == "REJECTED"
    assert len(p.events("job.rejected", "t1")) == 1
    assert total(p, m.JOBS_REJECTED) == 1


def test_undecodable_job_is_counted_once_when_its_dead_letter_publish_failed_once_regression(
    pipeline,
):
    """Before: an undecodable job message was counted as rejected after its dead letter went
    out. Now it is counted before the publish, so each failed publish (and its redelivery)
    counts it again."""
    # GIVEN the dead-letter publish failing once
    p = pipeline()
    failed = failing(p, topology.DEAD_LETTER)

    # WHEN an undecodable job message arrives
    p.run(b"not json at all")

    # THEN it was dead-lettered once and counted once as an invalid rejection
    assert len(failed) == 1
    assert len(p.bus.published[topology.DEAD_LETTER]) == 1
    assert total(p, m.JOBS_REJECTED, reason="invalid") == 1


# -- finding: max_cost_usd is no longer read as before -----------------------------------------


def test_a_cap_finer_than_a_micro_is_rounded_down():
    """Before: ``round(max_cost_usd * 1_000_000)``, whose float product decided a half micro
    either way. Now the cap's decimal form is rounded down: a hold is an integer, so it fits
    the rounded cap exactly when it fits the caller's own."""
    # GIVEN caps of 7 decimal places, valid JobRequests (0 < max_cost_usd <= 10 000)
    before = {
        "0.1299995": 129_999,
        "0.5199995": 519_999,
        "129.2678575": 129_267_857,
        "0.0001255": 125,
        "8558.1431305": 8_558_143_130,  # round() of the float product gave 131: over the cap
    }

    # WHEN they are read as micro-USD
    read = {
        text: JobRequest(job_id="m1", prompt="x", max_cost_usd=float(text)).max_cost_micros
        for text in before
    }

    # THEN each is the whole micro-USD at or below it
    assert read == before


def test_a_hold_above_the_callers_cap_is_not_a_candidate_regression():
    """The rounding above decides admission: a $0.13 hold under a $0.1299995 cap was refused
    before (cap read as 129 999) and is offered now (cap read as 130 000), over the caller's
    own limit."""
    # GIVEN a replicate model holding exactly $0.13 for a 5 s 480p video (on a copy: the
    # shipped catalog is cached for the whole process)
    catalog = copy.deepcopy(default_catalog())
    for spec in catalog.backends["replicate"].models.values():
        spec.price_micros_per_s["480p"] = 26_000
    request = JobRequest(
        job_id="m1",
        prompt="x",
        resolution="480p",
        backends=["replicate"],
        max_cost_usd=0.1299995,
    )

    # WHEN the candidates are chosen THEN none holds more than the caller allows
    assert [c.hold_micros for c in candidates(request, catalog)] == []


def test_max_cost_examples_are_read_as_before():
    # GIVEN the floats whose binary product is not the decimal one
    # WHEN read as micro-USD THEN each is what round(x * 1e6) gave
    examples = {0.1: 100_000, 1e-6: 1, 2.675: 2_675_000, 1234.5678905: 1_234_567_890, 0.3: 300_000}
    for amount, micros in examples.items():
        assert JobRequest(job_id="m1", prompt="x", max_cost_usd=amount).max_cost_micros == micros


# -- finding: audit findings come out in another order ----------------------------------------


def test_audit_lists_each_shards_findings_together_as_before_regression():
    """Before: ``check`` walked the shards once and, for each, listed its held / spent /
    overrun differences and then its allotment overflow. Now the allotment overflows of all
    shards come after every shard's differences, so ``aiprod budget audit`` prints the same
    findings in another order (the table no longer groups a shard's rows)."""
    # GIVEN two shards of one day: #000 holding more than the attempts say and past its
    # allotment, #001 holding more than the attempts say
    first = Shard("global", DAY, 0, allot_micros=100, held_micros=150)
    second = Shard("global", DAY, 1, allot_micros=100, held_micros=50)
    pool = Pool("global", DAY, limit_micros=1_000, unallotted_micros=800)
    books = DayBooks(DAY, {"global": [first, second]}, {"global": pool}, {})
    expected = Expected(held={}, spent={}, overrun={}, attempts=0)

    # WHEN the books are checked
    found = check(books, expected, Settings())

    # THEN the findings are listed shard by shard, as before the refactor
    assert found == [
        Discrepancy(first.key, "held", 150, 0),
        Discrepancy(first.key, "allotment", 150, 100),
        Discrepancy(second.key, "held", 50, 0),
    ]


# -- kept: what a failed publish leaves owed ---------------------------------------------------


def test_completion_event_lost_is_owed_again_then_noted_announced(pipeline):
    # GIVEN job.completed failing to publish once, after the success was committed
    p = pipeline()
    failed = failing(p, topology.JOB_EVENTS, carrying=b'"job.completed"')

    # WHEN the job runs, and its outcome is delivered once more afterwards
    p.run(TEXT)
    assert p.job("t1")["announced"] is True
    redeliver(p, topology.RENDER_OUTCOMES)

    # THEN the first redelivery published job.completed and noted it out, so the second
    # published nothing: one event, one render, one charge
    assert len(failed) == 1
    assert [e["type"] for e in p.events(job_id="t1")] == ["job.accepted", "job.completed"]
    assert p.events("job.completed")[0]["cost_usd"] == "0.600000"
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_failure_event_lost_is_owed_again_then_noted_announced(pipeline):
    # GIVEN every backend down, and job.failed failing to publish twice
    p = pipeline(simulation={"runway": {"down": True}, "replicate": {"down": True}})
    failed = failing(p, topology.JOB_EVENTS, carrying=b'"job.failed"', times=2)

    # WHEN the job runs (the last outcome is redelivered until the event is out)
    p.run(TEXT)

    # THEN job.failed went out once, with the reason, and the job notes it
    assert len(failed) == 2
    job = p.job("t1")
    assert (job["status"], job["reason"], job["announced"]) == ("FAILED", "chain_exhausted", True)
    [event] = p.events("job.failed", "t1")
    assert event["backends_tried"] == ["runway", "replicate"]
    p.assert_books_balanced()


def test_announcement_note_failing_keeps_the_event_and_a_redelivery_repeats_it(
    pipeline, monkeypatch
):
    # GIVEN the note that job.completed is out failing (the jobs document unwritable)
    p = pipeline()
    notes: list[str] = []

    def unavailable(store, job_id):
        notes.append(job_id)
        raise TransientError("firestore unavailable (injected)")

    monkeypatch.setattr(job_records, "note_announced", unavailable)

    # WHEN the job runs
    p.run(TEXT)

    # THEN the invocation still succeeded: the event is out once, the job not noted
    assert notes == ["t1"]
    assert len(p.events("job.completed")) == 1
    assert p.job("t1")["announced"] is False

    # WHEN the outcome is delivered again THEN job.completed is published again (at least once)
    redeliver(p, topology.RENDER_OUTCOMES)
    assert len(p.events("job.completed")) == 2
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_first_task_lost_at_admission_is_sent_with_the_accepted_event_by_the_redelivery(pipeline):
    # GIVEN the first render task failing to publish once, after the hold was committed
    p = pipeline()
    failed = failing(p, "render-runway")

    # WHEN a job arrives (route_job raises, Pub/Sub redelivers the job message)
    p.run(TEXT)

    # THEN the redelivery sent the task, not job.accepted again (the job noted it out before
    # the task's publish failed): rendered once, completed, charged once
    assert len(failed) == 1
    assert len(p.bus.published["render-runway"]) == 1
    kinds = [e["type"] for e in p.events(job_id="t1")]
    assert kinds == ["job.accepted", "job.completed"]
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_accepted_event_lost_while_the_task_is_unclaimed_is_sent_again(pipeline):
    # GIVEN runway's render topic losing its tasks, and job.accepted failing to publish once
    p = pipeline(lease_s=LEASE)
    lost = drop(p, "render-runway")
    failed = failing(p, topology.JOB_EVENTS, carrying=b'"job.accepted"')

    # WHEN a job arrives (the redelivery finds attempt 1 still unclaimed)
    p.run(TEXT)

    # THEN the failed try sent nothing (job.accepted goes first), the redelivery sent
    # job.accepted and the task, and nothing else changed
    assert len(failed) == 1
    assert len(p.events("job.accepted", "t1")) == 1
    assert len(lost) == 1
    assert attempts(p.job("t1")) == [("runway", "DISPATCHED")]
    p.assert_ledger_matches_attempts()


def test_accepted_event_lost_after_the_task_was_claimed_is_still_published(pipeline):
    """Found in review, older than the outbox: route_job published the task, then
    job.accepted; when only job.accepted failed, the task could be claimed before the job
    message was redelivered, which then owed nothing, so job.accepted was never published.
    ``effects.after_admission`` now owes job.accepted first."""
    # GIVEN one worker (the task is handled before the redelivered job message), and
    # job.accepted failing to publish once
    p = pipeline(workers=1)
    failed = failing(p, topology.JOB_EVENTS, carrying=b'"job.accepted"')

    # WHEN a job arrives and runs
    p.run(TEXT)

    # THEN users heard it accepted, then completed
    assert len(failed) == 1
    assert p.job("t1")["status"] == "SUCCEEDED"
    assert [e["type"] for e in p.events(job_id="t1")] == ["job.accepted", "job.completed"]


def test_rejection_lost_is_published_by_the_redelivery(pipeline):
    # GIVEN a budget too small for any hold, and job.rejected failing to publish once
    p = pipeline(global_limit_micros=10_000)
    failed = failing(p, topology.JOB_EVENTS, carrying=b'"job.rejected"')

    # WHEN a job arrives THEN users hear job.rejected once, with its reason
    p.run({**TEXT, "tenant": "acme"})
    assert len(failed) == 1
    [event] = p.bus.published[topology.JOB_EVENTS]
    body = json.loads(event.data)
    assert (body["type"], body["reason"]) == ("job.rejected", "over_budget")
    assert event.attributes == {"type": "job.rejected", "job_id": "t1", "tenant": "acme"}
    assert p.job("t1")["status"] == "REJECTED"


def test_conflict_rejection_lost_is_published_by_the_redelivery_with_the_new_tenant(pipeline):
    # GIVEN a completed job, and the conflict's job.duplicate_rejected failing to publish once
    p = pipeline()
    p.run(TEXT)
    original = p.job("t1")
    failed = failing(p, topology.JOB_EVENTS, carrying=b'"job.duplicate_rejected"')

    # WHEN the job_id is reused for another request, of another tenant
    p.run({**TEXT, "prompt": "another prompt", "tenant": "other"})

    # THEN one conflict refusal, addressed to the tenant that sent it; the job is untouched
    assert len(failed) == 1
    kind = b'"job.duplicate_rejected"'
    [message] = [m for m in p.bus.published[topology.JOB_EVENTS] if kind in m.data]
    assert json.loads(message.data)["reason"] == "conflict"
    assert message.attributes == {
        "type": "job.duplicate_rejected",
        "job_id": "t1",
        "tenant": "other",
    }
    assert p.job("t1") == original
    assert len(p.submitted("runway")) == 1


def test_retry_task_lost_after_the_commit_is_sent_again_by_the_redelivered_outcome(pipeline, clock):
    # GIVEN runway throttling its first submit, and the retry's task failing to publish once
    throttle = {"outage_after": 0, "outage_count": 1, "error_class": "RETRY_SAME"}
    p = pipeline(simulation={"runway": {**throttle, "error_code": "throttled"}})
    failed = failing(p, "render-runway", carrying=b'"attempt":2')

    # WHEN the job runs
    p.run(TEXT)

    # THEN the redelivered failure outcome sent attempt 2 (with its backoff), which rendered
    assert len(failed) == 1
    job = p.job("t1")
    assert attempts(job) == [("runway", "FAILED"), ("runway", "SUCCEEDED")]
    [retry] = [json.loads(m.data) for m in p.bus.published["render-runway"][1:]]
    assert (retry["attempt"], retry["not_before"]) == (2, clock.start + 2)
    assert len(p.events("job.completed")) == 1
    p.assert_books_balanced()


def test_next_task_already_claimed_is_not_sent_again_by_a_redelivered_outcome(pipeline):
    # GIVEN a job that fell back from runway to replicate and completed
    p = pipeline(simulation={"runway": {"down": True}})
    p.run(TEXT)
    before = {topic: len(messages) for topic, messages in p.bus.published.items()}

    # WHEN runway's failure outcome is delivered again
    redeliver(p, topology.RENDER_OUTCOMES, index=0)

    # THEN nothing is published: the next task was claimed, the job's final event is out
    after = {topic: len(messages) for topic, messages in p.bus.published.items()}
    assert after == {**before, topology.RENDER_OUTCOMES: before[topology.RENDER_OUTCOMES] + 1}
    assert len(p.submitted("replicate")) == 1


def test_render_republish_claim_sends_the_stored_outcome(pipeline):
    # GIVEN the first outcome lost on its way to handle_outcome (the attempt is REPORTED)
    p = pipeline()
    lost: list[bytes] = []
    deliver = p.app.outcomes.handle

    def lossy(data: bytes, attributes: dict[str, str]) -> None:
        if not lost:
            lost.append(data)
        else:
            deliver(data, attributes)

    p.bus.subscribe(topology.RENDER_OUTCOMES, lossy)
    p.run(TEXT)
    stored = p.job("t1")["attempts"][0]["outcome"]

    # WHEN the render task is delivered again
    redeliver(p, "render-runway")

    # THEN the stored outcome itself is published again, with its attributes, and applied
    first, again = p.bus.published[topology.RENDER_OUTCOMES]
    assert json.loads(again.data) == json.loads(first.data) == stored
    assert again.attributes == {"job_id": "t1", "attempt": "1"}
    assert len(p.submitted("runway")) == 1
    assert p.job("t1")["status"] == "SUCCEEDED"
    p.assert_books_balanced()


def test_unknown_outcome_publishes_no_event_and_no_task(pipeline):
    # GIVEN runway slower than the render function waits (the outcome is UNKNOWN)
    slow = {"runway": {"latency_s": 100}}
    p = pipeline(render_deadline_s=10, lease_s=LEASE, poll_interval_s=5, simulation=slow)

    # WHEN the job runs, and its UNKNOWN outcome is delivered once more
    p.run(TEXT)
    redeliver(p, topology.RENDER_OUTCOMES)

    # THEN only job.accepted is out: no final event, no second task, the hold kept
    assert [e["type"] for e in p.events()] == ["job.accepted"]
    assert len(p.bus.published["render-runway"]) == 1
    assert p.job("t1")["announced"] is False
    assert p.ledger()["held_micros"] == 600_000


# -- kept: the reconciler's publishes, lost and repeated ---------------------------------------


def test_timeout_outcome_lost_is_republished_after_its_lease_and_the_job_falls_back(
    pipeline, clock
):
    # GIVEN runway's render topic losing every task, redispatched once already
    p = pipeline(lease_s=LEASE)
    drop(p, "render-runway")
    p.run(TEXT)
    clock.advance(LEASE)
    assert p.app.reconciler.run().redispatched == 1
    p.drain()

    # WHEN the attempt times out but publishing its outcome fails
    failed = failing(p, topology.RENDER_OUTCOMES)
    clock.advance(LEASE)
    report = p.app.reconciler.run()
    p.drain()

    # THEN the sweep counts an error and the timeout is stored (REPORTED), the hold kept
    assert (report.errors, report.timed_out, len(failed)) == (1, 0, 1)
    job = p.job("t1")
    assert attempts(job) == [("runway", "REPORTED")]
    assert job["attempts"][0]["outcome"]["error_code"] == "lease_expired"
    assert p.ledger()["held_micros"] == 600_000

    # WHEN the next sweep runs after the reported lease
    clock.advance(LEASE)
    report = p.app.reconciler.run()
    p.drain()

    # THEN the stored timeout is published again and the job falls back and completes
    assert report.republished == 1
    [outcome] = [json.loads(m.data) for m in p.bus.published[topology.RENDER_OUTCOMES]][:1]
    assert (outcome["attempt"], outcome["error_code"]) == (1, "lease_expired")
    assert attempts(p.job("t1")) == [("runway", "FAILED"), ("replicate", "SUCCEEDED")]
    assert len(p.events("job.completed")) == 1
    p.assert_books_balanced()


def test_redispatch_publish_failing_is_an_error_and_the_attempt_then_times_out(pipeline, clock):
    # GIVEN a job whose first task was lost, and the reconciler's republish failing
    p = pipeline(lease_s=LEASE)
    drop(p, "render-runway")
    p.run(TEXT)
    failed = failing(p, "render-runway")

    # WHEN the reconciler runs after the lease, then once more after the next one
    clock.advance(LEASE)
    first = p.app.reconciler.run()
    p.drain()
    clock.advance(LEASE)
    second = p.app.reconciler.run()
    p.drain()

    # THEN the failed republish was counted as an error (its redispatch stays counted on the
    # attempt), and the attempt timed out the next time: the job completes on replicate
    assert (first.errors, first.redispatched, len(failed)) == (1, 0, 1)
    assert second.timed_out == 1
    job = p.job("t1")
    assert job["attempts"][0]["redispatched"] == 1
    assert attempts(job) == [("runway", "FAILED"), ("replicate", "SUCCEEDED")]
    p.assert_books_balanced()


# -- kept: dead letters name their reason and source -------------------------------------------


def test_dead_letters_from_the_handlers_carry_the_same_reason_and_source(pipeline):
    # GIVEN a running pipeline with a completed job (so there is a real task to misroute)
    p = pipeline()
    p.run(TEXT)
    task = p.bus.published["render-runway"][0]

    # WHEN each handler receives a message it cannot use
    p.bus.publish(topology.JOBS, b"\xff not json")
    p.bus.publish(topology.RENDER_OUTCOMES, b"{}")
    p.bus.publish("render-veo", b"[1, 2]")
    p.bus.publish("render-replicate", task.data, task.attributes)
    p.drain()

    # THEN each went to the dead-letter topic as it was, saying why and where from
    dead = {(m.data, tuple(sorted(m.attributes.items()))) for m in p.bus.published["dead-letter"]}
    assert dead == {
        (b"\xff not json", (("reason", "invalid"), ("source", "jobs"))),
        (b"{}", (("reason", "invalid"), ("source", "render-outcomes"))),
        (b"[1, 2]", (("reason", "invalid"), ("source", "render-veo"))),
        (task.data, (("reason", "wrong_backend"), ("source", "render-replicate"))),
    }
    assert p.submitted("replicate") == []
    p.assert_books_balanced()
