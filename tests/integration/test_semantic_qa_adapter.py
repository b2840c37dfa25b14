"""The semantic rating (real ``google-genai`` SDK, Vertex mode, ``v1``) against the Vertex AI
fake's ``generateContent``: a Runway render is kept and checked, then Gemini reads it from the
bucket and rates it; the rating's cost is charged with the render's."""

from __future__ import annotations

import pytest

from aiprod.domain.semantic_qa import SemanticQa, Usage, usage_cost, worst_case_micros
from fakes.base import Reply
from fakes.veo import RATING_OUTPUT_TOKENS, RATING_PROMPT_TOKENS, TOKEN, error_body
from support.live import live_backend, render, render_task

MODEL = "gemini-2.5-flash"
RATE = f"/v1/projects/proj-veo/locations/us-central1/publishers/google/models/{MODEL}"
RENDER_COST = 600_000  # Runway gen4.5, 5 s
RATING_COST = usage_cost(
    MODEL,
    Usage(sum(RATING_PROMPT_TOKENS.values()), RATING_OUTPUT_TOKENS, RATING_PROMPT_TOKENS["AUDIO"]),
)
ESTIMATE = worst_case_micros(MODEL, 5)


def rated_runway(live_env, policy: str = "flag"):
    qa = SemanticQa(mode="gemini", policy=policy)
    return live_backend(live_env, "runway", semantic_qa=qa, veo_project="proj-veo")


def test_a_good_rating_is_delivered_and_charged_with_the_render(live_env, fakes):
    # GIVEN semantic QA on and Gemini rating the clip 0.9
    fakes.veo.semantic_score = 0.9

    # WHEN a render finishes
    done = render(rated_runway(live_env), render_task("runway"))

    # THEN it is delivered with the score, charged render + what Gemini reported using
    result = done.result
    assert result.error_class is None, result
    assert result.qa.semantic_score == 0.9 and result.qa.score == 0.9
    assert (result.qa.semantic_model, result.qa.flagged) == (MODEL, False)
    assert result.qa.semantic_cost_micros == RATING_COST
    assert result.cost_micros == RENDER_COST + RATING_COST


def test_the_rating_request_sends_the_kept_video_the_rubric_and_the_schema(live_env, fakes):
    done = render(rated_runway(live_env), render_task("runway"))

    [rating] = fakes.veo.ratings()
    assert rating.path == f"{RATE}:generateContent"
    assert rating.header("authorization") == f"Bearer {TOKEN}"  # the same ADC as Veo
    body = rating.json()
    video, rubric = body["contents"][0]["parts"]
    # google-genai spells the fields inside fileData in snake_case (Vertex's JSON parser
    # takes either spelling, as proto3 JSON does)
    uri = done.result.output_uri
    assert video["fileData"] == {"file_uri": uri, "mime_type": "video/mp4"}
    assert done.result.output_uri.startswith(f"gs://{fakes.bucket}/")
    assert "<<<PROMPT\na paper boat in the rain\nPROMPT>>>" in rubric["text"]
    config = body["generationConfig"]
    assert (config["responseMimeType"], config["temperature"]) == ("application/json", 0)
    assert config["responseSchema"]["required"] == ["score", "reasons"]
    assert config["responseSchema"]["properties"]["score"]["type"] == "NUMBER"
    assert config["maxOutputTokens"] == 512  # bounds the output part of the estimate


def test_a_low_rating_under_fallback_fails_the_attempt_charged(live_env, fakes):
    fakes.veo.semantic_score = 0.2

    done = render(rated_runway(live_env, "fallback"), render_task("runway"))

    result = done.result
    assert (result.error_class, result.error_code) == ("FALLBACK", "qa_failed")
    assert (result.qa.passed, result.qa.reason) == (False, "semantic_below_threshold")
    assert result.cost_micros == RENDER_COST + RATING_COST


def test_a_low_rating_under_flag_is_delivered_flagged(live_env, fakes):
    fakes.veo.semantic_score = 0.2

    done = render(rated_runway(live_env, "flag"), render_task("runway"))

    result = done.result
    assert result.error_class is None and result.output_uri
    assert (result.qa.passed, result.qa.flagged, result.qa.semantic_score) == (True, True, 0.2)


@pytest.mark.parametrize(
    ("status", "charged"), [(500, ESTIMATE), (503, ESTIMATE), (400, 0), (429, 0)]
)
def test_a_failed_rating_delivers_on_the_technical_result(live_env, fakes, status, charged):
    # GIVEN Gemini answering an error: a 5xx may have run (billed), a 4xx refused it
    fakes.veo.queue("rate", Reply(status, error_body(status, "X", "rating failed")))

    done = render(rated_runway(live_env), render_task("runway"))

    # THEN the output is delivered without a score, saying why, charged what it may cost
    result = done.result
    assert result.error_class is None and result.output_uri
    assert result.qa.semantic_score is None and str(status) in result.qa.semantic_error
    assert (result.qa.passed, result.qa.score) == (True, 1.0)
    assert result.cost_micros == RENDER_COST + charged
    assert result.qa.semantic_cost_micros == charged


def test_a_lost_answer_is_charged_the_estimate(live_env, fakes):
    # GIVEN Gemini answering only after the client's timeout (2 s in the fakes' settings)
    fakes.veo.queue("rate", Reply(200, {}, delay_s=3.0))

    done = render(rated_runway(live_env), render_task("runway"))

    assert done.result.error_class is None
    assert "lost" in done.result.qa.semantic_error
    assert done.result.cost_micros == RENDER_COST + ESTIMATE


@pytest.mark.parametrize(
    ("usage", "charged"), [(True, RATING_COST), (False, ESTIMATE)], ids=["usage", "no-usage"]
)
def test_an_unreadable_answer_is_charged_its_usage_else_the_estimate(
    live_env, fakes, usage, charged
):
    fakes.veo.rating_text, fakes.veo.rating_usage = '{"score": 7}', usage

    done = render(rated_runway(live_env), render_task("runway"))

    assert done.result.error_class is None
    assert "unreadable" in done.result.qa.semantic_error
    assert done.result.cost_micros == RENDER_COST + charged


def test_semantic_qa_off_never_calls_gemini(live_env, fakes):
    done = render(live_backend(live_env, "runway"), render_task("runway"))

    assert done.result.error_class is None and done.result.qa.semantic_score is None
    assert fakes.veo.ratings() == [] and done.result.cost_micros == RENDER_COST
