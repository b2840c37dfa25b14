"""Validation that names the field (issue 12, part 2): unknown backend names are ``invalid``;
an invalid job that names a usable job_id leaves a REJECTED document that ``aiprod status``
explains; its job_id is spent like any other. On the embedded pipeline."""

from __future__ import annotations

import json

from aiprod.config import Settings
from aiprod.domain.catalog import default_catalog
from aiprod.domain.messages import JobRequest, RejectReason
from aiprod.domain.selection import plan_route
from aiprod.repositories.ledger import SHARDS
from aiprod_tools import cli
from aiprod_tools.cli import context
from support.scenarios import TEXT

BAD = {"job_id": "bad-1", "prompt": "", "tenant": "acme"}


def test_an_unknown_backend_name_is_invalid_naming_the_field():
    # GIVEN a request allowing one known and one unknown backend
    request = JobRequest(job_id="j1", prompt="a cat", backends=["runway", "midjourney"])

    # WHEN it is planned THEN it is refused invalid, the message naming the field and value
    plan = plan_route(request, default_catalog(), {}, [], Settings().thresholds, 0.0)
    assert (plan.rejection, plan.first) == (RejectReason.INVALID, None)
    assert plan.message == "backends: unknown backend 'midjourney' (known: replicate, runway, veo)"


def test_a_job_naming_an_unknown_backend_is_rejected_invalid(pipeline):
    # WHEN a job allows only a backend the catalog does not have
    p = pipeline()
    p.run({**TEXT, "backends": ["midjourney"]})

    # THEN the job is REJECTED invalid with a message naming the field, and so is its event
    job = p.job("t1")
    assert (job["status"], job["reason"]) == ("REJECTED", "invalid")
    assert job["message"].startswith("backends: unknown backend 'midjourney'")
    [event] = p.events("job.rejected", "t1")
    assert (event["reason"], event["message"]) == ("invalid", job["message"])
    assert p.submitted("runway") == []
    p.assert_books_balanced()


def test_an_invalid_job_leaves_a_rejected_document_that_status_explains(
    pipeline, monkeypatch, capsys
):
    # WHEN an invalid job arrives, with a usable job_id and tenant
    p = pipeline()
    p.run(BAD)

    # THEN its document says REJECTED invalid and why, and its event says the same to the tenant
    job = p.job("bad-1")
    assert (job["status"], job["reason"], job["tenant"]) == ("REJECTED", "invalid", "acme")
    assert job["message"].startswith("prompt: ")
    assert job["payload_hash"].startswith("raw:")
    [event] = p.events("job.rejected", "bad-1")
    assert (event["reason"], event["message"], event["tenant"]) == (
        "invalid",
        job["message"],
        "acme",
    )
    assert p.store.list(SHARDS) == []

    # AND aiprod status explains it
    monkeypatch.setattr(context, "make_app", lambda: p.app)
    assert cli.main(["status", "bad-1"]) == 0
    out = capsys.readouterr().out
    assert "REJECTED" in out and f"reason invalid: {job['message']}" in out


def test_an_invalid_job_delivered_again_is_answered_once(pipeline):
    # GIVEN an invalid job, rejected
    p = pipeline()
    p.run(BAD)
    job = p.job("bad-1")

    # WHEN the same message is delivered again THEN nothing more is published or changed
    p.run(BAD)
    assert len(p.events()) == 1
    assert p.job("bad-1") == job


def test_a_corrected_request_under_an_invalid_jobs_id_is_a_conflict(pipeline):
    # GIVEN an invalid job, rejected
    p = pipeline()
    p.run(BAD)
    job = p.job("bad-1")

    # WHEN a valid request reuses its job_id
    p.run({**BAD, "prompt": "a cat"})

    # THEN it is refused as a duplicate (a job_id is spent once used), the document kept
    [refused] = p.events("job.duplicate_rejected", "bad-1")
    assert (refused["status"], refused["reason"]) == ("REJECTED", "conflict")
    assert p.job("bad-1") == job
    assert len(p.events("job.rejected")) == 1


def test_an_invalid_message_reusing_a_jobs_id_never_says_the_job_failed(pipeline):
    # GIVEN a completed job
    p = pipeline()
    p.run(TEXT)
    original = p.job("t1")

    # WHEN an invalid message arrives under its job_id
    p.run({**TEXT, "duration_s": "long"})

    # THEN that message is refused as a duplicate, saying it is invalid too; the job untouched
    [refused] = p.events("job.duplicate_rejected", "t1")
    assert refused["status"] == "SUCCEEDED"
    assert "duration_s" in refused["message"]
    assert p.events("job.rejected") == []
    assert p.job("t1") == original


def test_a_message_with_no_usable_job_id_leaves_no_document(pipeline):
    # WHEN an invalid message names no usable job_id
    p = pipeline()
    p.run(json.dumps({"job_id": "../x", "prompt": ""}).encode())

    # THEN it is dead-lettered, with no event and no document
    assert p.jobs() == []
    assert p.events() == []
    assert [m.attributes["reason"] for m in p.bus.published["dead-letter"]] == ["invalid"]
