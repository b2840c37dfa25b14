"""The real handlers on the embedded bus and store, with simulated providers: provider
failures (fallback, retries on the same backend, circuits, terminal errors, caps, overruns).

Each scenario publishes JobRequests to ``jobs``, drains the bus, then reads what the system
recorded: job documents, ledger entries, circuit states, published events and provider
submissions. Every scenario ends with the books balanced: nothing held, and each budget
scope's spend equal to the cost of its jobs.
"""

from __future__ import annotations

import logging

import pytest

from aiprod.domain.policy import RetryPolicy
from support.scenarios import CLOSED, IMAGE, TEXT, attempts


def test_runway_down_falls_back_and_completes(pipeline):
    # GIVEN runway refusing every submit
    p = pipeline(simulation={"runway": {"down": True}})

    # WHEN a text job and an image job arrive
    p.run(TEXT, IMAGE)

    # THEN both completed on replicate after one failed runway attempt, paying only replicate
    for job_id in ("t1", "i1"):
        job = p.job(job_id)
        assert job["status"] == "SUCCEEDED"
        assert attempts(job) == [("runway", "FAILED"), ("replicate", "SUCCEEDED")]
        assert job["attempts"][0]["error_code"] == "unavailable"
        assert job["cost_micros"] == 100_000
        assert p.events("job.completed", job_id)[0]["backends_tried"] == ["runway", "replicate"]
    assert p.submitted("runway") == []
    assert len(p.submitted("replicate")) == 2
    p.assert_books_balanced()


def test_retry_same_error_is_retried_on_the_same_backend_after_a_backoff(pipeline, clock):
    # GIVEN runway throttling the first submit only
    throttle = {"outage_after": 0, "outage_count": 1, "error_class": "RETRY_SAME"}
    p = pipeline(simulation={"runway": {**throttle, "error_code": "throttled"}})

    # WHEN a job arrives
    p.run(TEXT)

    # THEN the second runway attempt, sent with a 2 s backoff, rendered it
    job = p.job("t1")
    assert attempts(job) == [("runway", "FAILED"), ("runway", "SUCCEEDED")]
    assert job["attempts"][1]["not_before"] == clock.start + 2
    assert clock() >= clock.start + 2
    assert job["cost_micros"] == 600_000
    p.assert_books_balanced()


def test_retry_same_gives_up_after_two_retries_and_falls_back(pipeline):
    # GIVEN runway throttling every submit
    p = pipeline(simulation={"runway": {"down": True, "error_class": "RETRY_SAME"}})

    # WHEN a job arrives
    p.run(TEXT)

    # THEN runway was tried three times (1 + 2 retries), then replicate rendered it
    job = p.job("t1")
    assert attempts(job) == [("runway", "FAILED")] * 3 + [("replicate", "SUCCEEDED")]
    assert [a["error_class"] for a in job["attempts"][:3]] == ["RETRY_SAME"] * 3
    # AND the three consecutive failures opened runway's circuit
    assert p.store.get("backends", "runway")["state"] == "open"
    p.assert_books_balanced()


def test_retry_is_not_sent_to_a_backend_whose_circuit_opened(pipeline):
    # GIVEN runway throttling everything, one failure short of opening its circuit
    p = pipeline(simulation={"runway": {"down": True, "error_class": "RETRY_SAME"}})
    p.store.set("backends", "runway", {**CLOSED, "consecutive_failures": 2})

    # WHEN a job's first attempt fails (opening the circuit) and so does its retry, which was
    # dispatched before the circuit opened
    p.run(TEXT)

    # THEN no third attempt goes to the open circuit: the job falls back instead
    assert p.store.get("backends", "runway")["state"] == "open"
    job = p.job("t1")
    assert attempts(job) == [("runway", "FAILED"), ("runway", "FAILED"), ("replicate", "SUCCEEDED")]
    p.assert_books_balanced()


def test_failed_half_open_probe_is_not_retried_and_reopens_for_longer(pipeline, clock):
    # GIVEN runway's circuit open once before, its 60 s cooldown over, and runway throttling
    p = pipeline(simulation={"runway": {"down": True, "error_class": "RETRY_SAME"}})
    tripped = {"state": "open", "consecutive_failures": 3, "trips": 1}
    p.store.set("backends", "runway", {**CLOSED, **tripped, "open_until": clock() - 1})

    # WHEN a job is routed to runway as the half-open probe, and the probe fails
    p.run(TEXT)

    # THEN the job falls back at once instead of retrying the failed probe
    assert attempts(p.job("t1")) == [("runway", "FAILED"), ("replicate", "SUCCEEDED")]
    # AND the circuit reopened with a doubled cooldown
    circuit = p.store.get("backends", "runway")
    assert (circuit["state"], circuit["trips"]) == ("open", 2)
    assert circuit["open_until"] == clock() + 120
    p.assert_books_balanced()


def test_terminal_error_fails_at_once_without_fallback(pipeline):
    # GIVEN runway rejecting the request itself
    bad = {"down": True, "error_class": "TERMINAL", "error_code": "bad_request"}
    p = pipeline(simulation={"runway": bad})

    # WHEN a job arrives
    p.run(TEXT)

    # THEN it failed after the one attempt, and the failure event says why
    job = p.job("t1")
    assert (job["status"], job["reason"]) == ("FAILED", "terminal")
    assert attempts(job) == [("runway", "FAILED")]
    failed = p.events("job.failed", "t1")
    assert len(failed) == 1
    [attempt] = failed[0]["attempts"]
    assert (attempt["backend"], attempt["error_class"], attempt["error_code"]) == (
        "runway",
        "TERMINAL",
        "bad_request",
    )
    assert (failed[0]["reason"], failed[0]["cost_usd"]) == ("terminal", "0.000000")
    assert p.submitted("replicate") == []
    # AND a bad request says nothing about runway's health
    assert p.store.get("backends", "runway") is None
    p.assert_books_balanced()


def test_every_backend_down_exhausts_the_chain(pipeline):
    p = pipeline(simulation={"runway": {"down": True}, "replicate": {"down": True}})
    p.run(TEXT)

    job = p.job("t1")
    assert (job["status"], job["reason"]) == ("FAILED", "chain_exhausted")
    assert attempts(job) == [("runway", "FAILED"), ("replicate", "FAILED")]
    assert p.events("job.failed", "t1")[0]["backends_tried"] == ["runway", "replicate"]
    p.assert_books_balanced()


@pytest.mark.parametrize(
    "policy",
    [RetryPolicy(max_attempts=2), RetryPolicy(max_wall_s=1.0)],
    ids=["attempt cap", "wall-time cap"],
)
def test_caps_fail_the_job_as_attempts_exhausted(pipeline, policy):
    # GIVEN runway throttling every submit, and a cap on attempts or on the job's wall time
    p = pipeline(retry=policy, simulation={"runway": {"down": True, "error_class": "RETRY_SAME"}})

    # WHEN a job arrives (its retry waits a 2 s backoff)
    p.run(TEXT)

    # THEN the second failure hits the cap and the job fails without falling back
    job = p.job("t1")
    assert (job["status"], job["reason"]) == ("FAILED", "attempts_exhausted")
    assert attempts(job) == [("runway", "FAILED"), ("runway", "FAILED")]
    assert p.events("job.failed", "t1")[0]["reason"] == "attempts_exhausted"
    assert p.submitted("replicate") == []
    p.assert_books_balanced()


def test_provider_overrun_is_charged_and_noted(pipeline, caplog):
    # GIVEN replicate reporting 1.5x the worst case we held
    p = pipeline(simulation={"replicate": {"cost_ratio": 1.5}})

    # WHEN a job renders there
    with caplog.at_level(logging.WARNING, logger="aiprod.services.outcome"):
        p.run({**TEXT, "priority": "cost"})

    # THEN the real cost is charged, and the overrun is on the ledger, the attempt and the job
    job = p.job("t1")
    assert job["cost_micros"] == 150_000
    assert (job["overrun_micros"], job["attempts"][0]["overrun_micros"]) == (50_000, 50_000)
    assert (p.ledger()["spent_micros"], p.ledger()["overrun_micros"]) == (150_000, 50_000)
    # AND one warning says so, with the numbers as fields (the hook for a metric)
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "cost_overrun"]
    assert line.levelno == logging.WARNING
    assert (line.job_id, line.backend) == ("t1", "replicate")
    assert (line.hold_micros, line.cost_micros, line.overrun_micros) == (100_000, 150_000, 50_000)
    p.assert_books_balanced()
