"""The Runway adapter (real ``runwayml`` SDK) against the Runway fake: what it sends, and how
every answer ends (class, code, cost, output kept in the bucket)."""

from __future__ import annotations

import pytest

from aiprod.exceptions import ConfigError
from fakes.base import Reply
from support.live import live_backend, render, render_task

TASK_JSON = {"content-type": "application/json"}


@pytest.fixture
def runway(live_env):
    return live_backend(live_env, "runway")


def test_a_text_render_is_created_polled_kept_and_charged_its_reported_credits(
    runway, fakes, storage_emulator
):
    # GIVEN a task that runs for two looks
    fakes.runway.polls_before_done = 2

    # WHEN a 5 s text job renders on gen4.5
    done = render(runway, render_task("runway"))

    # THEN it succeeded after three looks, charged 60 credits = $0.60
    assert done.result.error_class is None, done.result
    assert (done.looks, done.result.cost_micros) == (3, 600_000)
    # AND the video is in the bucket under the job and attempt, with its metadata
    assert done.result.output_uri == f"gs://{fakes.bucket}/videos/job-1/attempt-1.mp4"
    blob = storage_emulator.blob(fakes.bucket, "videos/job-1/attempt-1.mp4")
    assert blob.content_type == "video/mp4"
    assert blob.metadata["job_id"] == "job-1" and blob.metadata["provider_task_id"] == done.task_id
    kept = storage_emulator.read(fakes.bucket, "videos/job-1/attempt-1.mp4")
    assert kept == fakes.runway.video(done.task_id)
    # AND it passed QA, recorded on the result and on the object
    assert done.result.qa.passed and blob.metadata["qa"] == "passed"


def test_the_requests_match_runways_wire_format(runway, fakes):
    # WHEN a text job and an image job render
    render(runway, render_task("runway", aspect_ratio="9:16", duration_s=7))
    render(runway, render_task("runway", image=True, job_id="job-2", aspect_ratio="1:1"))

    # THEN each create is a POST with the key, the API version and camelCase fields
    text, image = fakes.runway.calls("POST")
    assert (text.path, image.path) == ("/v1/text_to_video", "/v1/image_to_video")
    for call in (text, image):
        assert call.header("authorization") == f"Bearer {fakes.runway.api_key}"
        assert call.header("x-runway-version") == "2024-11-06"
        assert call.header("content-type") == "application/json"
    assert text.json() == {
        "model": "gen4.5",
        "promptText": "a paper boat in the rain",
        "ratio": "720:1280",
        "duration": 7,
    }
    assert image.json() == {
        "model": "gen4_turbo",
        "promptImage": "https://images.example.com/bottle.png",
        "promptText": "a paper boat in the rain",
        "ratio": "960:960",
        "duration": 5,
    }
    # AND polls are GETs of the task
    assert {c.path.split("/")[-2] for c in fakes.runway.calls("GET", "/v1/tasks/")} == {"tasks"}


@pytest.mark.parametrize(("headers", "wait"), [({"retry-after": "7"}, 7.0), ({}, None)])
def test_throttled_create_is_retry_same_and_sent_once(runway, fakes, headers, wait):
    # GIVEN Runway answering 429 (with and without Retry-After)
    fakes.runway.queue("create", Reply(429, {"error": "Too many requests"}, headers))

    done = render(runway, render_task("runway"))

    # THEN the SDK did not retry the POST (no idempotency key: a retry could pay twice)
    assert len(fakes.runway.calls("POST")) == 1
    assert (done.result.error_class, done.result.error_code) == ("RETRY_SAME", "throttled")
    assert done.result.cost_micros == 0
    # AND the wait Runway asked for is carried to the retry policy
    assert done.result.retry_after_s == wait


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_server_error_on_create_is_unconfirmed_and_sent_once(runway, fakes, status):
    # a 5xx may hide a created task (a gateway lost the answer): never sent again blindly
    fakes.runway.queue("create", Reply(status, {"error": "Internal server error"}))

    done = render(runway, render_task("runway"))

    assert len(fakes.runway.calls("POST")) == 1
    assert (done.result.error_class, done.result.error_code) == ("UNKNOWN", "submit_unconfirmed")


@pytest.mark.parametrize(
    ("status", "code"), [(400, "bad_request"), (401, "unauthorized"), (403, "forbidden")]
)
def test_rejected_requests_fall_back_with_the_providers_message(runway, fakes, status, code):
    fakes.runway.queue("create", Reply(status, {"error": "promptText is too long"}))

    done = render(runway, render_task("runway"))

    assert (done.result.error_class, done.result.error_code) == ("FALLBACK", code)
    assert "promptText is too long" in done.result.message


@pytest.mark.parametrize(
    ("policy", "expected"), [("terminal", "TERMINAL"), ("fallback", "FALLBACK")]
)
def test_moderation_is_content_policy_as_configured(live_env, fakes, policy, expected):
    # GIVEN a task that fails moderation
    fakes.runway.final, fakes.runway.failure_code = "FAILED", "SAFETY.INPUT.TEXT"
    runway = live_backend(live_env, "runway", content_policy=policy)

    done = render(runway, render_task("runway"))

    assert (done.result.error_class, done.result.error_code) == (expected, "content_policy")
    assert "SAFETY.INPUT.TEXT" in done.result.message
    assert done.result.cost_micros == 0 and done.result.output_uri is None


@pytest.mark.parametrize(
    ("failure_code", "code"),
    [("INTERNAL.BAD_OUTPUT.CODE01", "provider_failed"), ("ASSET.INVALID", "bad_request")],
)
def test_internal_and_asset_failures_fall_back(runway, fakes, failure_code, code):
    fakes.runway.final, fakes.runway.failure_code = "FAILED", failure_code

    done = render(runway, render_task("runway"))

    assert (done.result.error_class, done.result.error_code) == ("FALLBACK", code)


def test_a_cancelled_task_falls_back(runway, fakes):
    fakes.runway.final = "CANCELLED"
    done = render(runway, render_task("runway"))
    assert (done.result.error_class, done.result.error_code) == ("FALLBACK", "cancelled")


def test_garbled_create_answer_is_unknown_and_never_resent(runway, fakes):
    # GIVEN a 200 whose body is not JSON: a task may well exist
    fakes.runway.queue("create", Reply(200, b'{"id": "trunc', TASK_JSON))

    done = render(runway, render_task("runway"))

    assert (done.result.error_class, done.result.error_code) == ("UNKNOWN", "malformed_response")
    assert len(fakes.runway.calls("POST")) == 1


def test_a_garbled_or_failed_poll_is_just_looked_at_again(runway, fakes):
    # GIVEN the first two looks answered with garbage and a 503
    fakes.runway.polls_before_done = 0
    fakes.runway.queue("task", Reply(200, b"<html>proxy", TASK_JSON), Reply(503, {"error": "x"}))

    done = render(runway, render_task("runway"))

    # THEN the task is polled again (the SDK's GET retries may add looks) and succeeds
    assert done.result.error_class is None and done.result.cost_micros == 600_000
    assert len(fakes.runway.calls("POST")) == 1


def test_a_create_that_hangs_is_unknown_and_sent_once(live_env, fakes):
    # GIVEN Runway holding the create past the client's timeout
    fakes.runway.queue("create", Reply(200, {"id": "late"}, delay_s=2.0))
    runway = live_backend(live_env, "runway", timeout_s=0.3)

    done = render(runway, render_task("runway"))

    assert (done.result.error_class, done.result.error_code) == ("UNKNOWN", "submit_unconfirmed")
    assert len(fakes.runway.calls("POST")) == 1


def test_an_expired_output_url_falls_back_and_is_still_charged(runway, fakes):
    # GIVEN a task that succeeded but whose output URL is already gone
    fakes.runway.outputs_gone = True

    done = render(runway, render_task("runway"))

    assert (done.result.error_class, done.result.error_code) == ("FALLBACK", "output_unavailable")
    assert done.result.cost_micros == 600_000  # Runway rendered, and billed it


def test_a_missing_reported_cost_is_charged_at_the_catalog_price(runway, fakes):
    fakes.runway.report_cost = False
    done = render(runway, render_task("runway", duration_s=4))
    assert done.result.error_class is None and done.result.cost_micros == 480_000


def test_requests_runway_cannot_take_are_refused_before_sending(runway, fakes):
    # gen4.5 has no 1:1 for text; Runway fetches only https images
    square = render(runway, render_task("runway", aspect_ratio="1:1"))
    gs_image = render_task("runway", image=True, job_id="job-2")
    gs_image = gs_image.model_copy(
        update={"request": gs_image.request.model_copy(update={"image_uri": "gs://b/a.png"})}
    )
    refused = render(runway, gs_image)

    for done in (square, refused):
        assert (done.result.error_class, done.result.error_code) == ("FALLBACK", "bad_request")
    assert fakes.runway.requests == []


def test_a_missing_key_is_a_config_error_naming_the_variable(runway, fakes, monkeypatch):
    monkeypatch.delenv("RUNWAYML_API_SECRET")

    with pytest.raises(ConfigError, match="RUNWAYML_API_SECRET"):
        runway._inner.client()
    done = render(runway, render_task("runway"))

    assert (done.result.error_class, done.result.error_code) == ("FALLBACK", "misconfigured")
    assert "RUNWAYML_API_SECRET" in done.result.message
    assert fakes.runway.requests == []


def test_a_poll_that_hangs_is_looked_at_again(live_env, fakes):
    # GIVEN the first look at the task answered only after the client's timeout
    fakes.runway.polls_before_done = 0
    fakes.runway.queue("task", Reply(200, {"id": "slow"}, delay_s=2.0))
    runway = live_backend(live_env, "runway", timeout_s=0.3)

    done = render(runway, render_task("runway"))

    # THEN a later look (the SDK's GET retry, or the next poll) finds it done, created once
    assert done.result.error_class is None and done.result.cost_micros == 600_000
    assert len(fakes.runway.calls("POST")) == 1


def test_no_bucket_after_a_render_keeps_its_cost_and_blames_us(live_env, fakes):
    # GIVEN a finished task but no bucket configured to keep its output in
    runway = live_backend(live_env, "runway", output_bucket="")

    done = render(runway, render_task("runway"))

    # THEN the render is "unkept": not done (keeping is tried again, bounded), carrying the
    # cost the provider reported, on our side (not the provider's health), and no second render
    result = done.result
    assert (result.done, result.unkept) == (False, True)
    assert (result.error_code, result.cost_micros) == ("output_store_unavailable", 600_000)
    assert "AIPROD_OUTPUT_BUCKET" in result.message
    assert len(fakes.runway.calls("POST")) == 1
