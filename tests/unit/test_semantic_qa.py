"""The semantic rating's pure rules: settings, the rubric and schema, reading the model's
answer, what a rating costs and holds, and how it changes the QA report."""

from __future__ import annotations

import pytest

from aiprod.config import Settings
from aiprod.domain.budget import BudgetTotals, Thresholds
from aiprod.domain.catalog import default_catalog
from aiprod.domain.messages import JobRequest
from aiprod.domain.qa_report import QaCheck, QaReport
from aiprod.domain.selection import candidates, plan_route
from aiprod.domain.semantic_qa import (
    BELOW_THRESHOLD,
    PRICES,
    RESPONSE_SCHEMA,
    Rating,
    RatingFormatError,
    SemanticQa,
    Usage,
    parse_answer,
    qa_hold_micros,
    rated,
    rubric_for,
    usage_cost,
    with_semantic,
    worst_case_micros,
)
from aiprod.exceptions import ConfigError

PASSED = QaReport(passed=True, checks=[QaCheck(name="decodes", passed=True)], score=1.0)
ON = SemanticQa(mode="gemini", policy="fallback")
CATALOG = default_catalog()


def test_semantic_qa_is_off_unless_configured_and_flags_by_default():
    qa = Settings.from_env({}).providers.semantic_qa
    assert (qa.on, qa.model, qa.threshold, qa.policy) == (False, "gemini-2.5-flash", 0.5, "flag")


def test_the_settings_are_read_from_the_environment():
    env = {
        "AIPROD_QA_SEMANTIC": "Gemini",
        "AIPROD_QA_SEMANTIC_MODEL": "gemini-2.5-flash-lite",
        "AIPROD_QA_SEMANTIC_MIN": "0.7",
        "AIPROD_QA_POLICY": "fallback",
    }
    qa = Settings.from_env(env).providers.semantic_qa
    assert qa == SemanticQa("gemini", "gemini-2.5-flash-lite", 0.7, "fallback")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AIPROD_QA_SEMANTIC", "gpt"),
        ("AIPROD_QA_SEMANTIC_MODEL", "gemini-unpriced"),
        ("AIPROD_QA_SEMANTIC_MIN", "1.5"),
        ("AIPROD_QA_SEMANTIC_MIN", "high"),
        ("AIPROD_QA_POLICY", "drop"),
    ],
)
def test_a_bad_setting_is_refused_at_start_up_naming_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"AIPROD_QA_SEMANTIC": "gemini", name: value})


def test_the_rubric_carries_the_prompt_between_markers_and_the_scale():
    text = rubric_for("a paper boat in the rain")
    assert "<<<PROMPT\na paper boat in the rain\nPROMPT>>>" in text
    assert all(mark in text for mark in ("- 1:", "- 0.5:", "- 0:"))
    assert RESPONSE_SCHEMA["required"] == ["score", "reasons"]


def test_an_answer_is_read_as_score_and_reasons():
    assert parse_answer('{"score": 0.8, "reasons": "boat, rain"}') == (0.8, "boat, rain")
    assert parse_answer('{"score": 1, "reasons": "ok"}') == (1.0, "ok")


@pytest.mark.parametrize(
    "text",
    ["", "not json", "[0.5]", '{"reasons": "x"}', '{"score": "high"}', '{"score": true}',
     '{"score": 7}', '{"score": -0.1}', '{"score": NaN}'],
)  # fmt: skip
def test_a_malformed_or_out_of_range_answer_is_refused(text):
    with pytest.raises(RatingFormatError):
        parse_answer(text)


def test_usage_is_priced_per_modality_and_rounded_up():
    # 2,000 video/text tokens at $0.30/M, 256 audio at $1/M, 40 out at $2.50/M
    cost = usage_cost("gemini-2.5-flash", Usage(2_256, 40, audio_tokens=256))
    assert cost == 600 + 256 + 100


def test_usage_without_a_breakdown_is_priced_as_the_dearest_input():
    assert usage_cost("gemini-2.5-flash", Usage(1_000, 0)) == 1_000  # all at $1/M


def test_the_worst_case_bounds_every_frame_audio_the_text_and_the_answer():
    price = PRICES["gemini-2.5-flash"]
    seconds = 13  # an 8 s clip, half as long again, plus one second
    estimate = worst_case_micros("gemini-2.5-flash", 8)
    floor = seconds * (258 * price.input_micros + 32 * price.audio_micros) / 1e6
    assert floor + 512 * price.output_micros / 1e6 < estimate < 10_000  # under a cent
    assert worst_case_micros("gemini-2.5-flash", 4) < estimate


def test_the_hold_adds_the_estimate_only_when_semantic_qa_is_on():
    assert qa_hold_micros(SemanticQa(), 8) == 0
    assert qa_hold_micros(ON, 8) == worst_case_micros("gemini-2.5-flash", 8)


def test_a_good_score_becomes_the_measured_quality():
    report = with_semantic(PASSED, 0.9, "gemini-2.5-flash", 900, 0.5, "fallback")
    assert (report.passed, report.score, report.flagged) == (True, 0.9, False)
    assert (report.semantic_score, report.semantic_cost_micros) == (0.9, 900)


def test_a_low_score_under_fallback_fails_the_output():
    report = with_semantic(PASSED, 0.2, "gemini-2.5-flash", 900, 0.5, "fallback")
    assert (report.passed, report.reason, report.flagged) == (False, BELOW_THRESHOLD, False)
    assert report.semantic_score == 0.2


def test_a_low_score_under_flag_is_delivered_flagged():
    report = with_semantic(PASSED, 0.2, "gemini-2.5-flash", 900, 0.5, "flag")
    assert (report.passed, report.flagged, report.score) == (True, True, 0.2)


def test_a_failed_rating_keeps_the_technical_verdict_and_says_why():
    failed = Rating(None, 3_000, "gemini-2.5-flash", error="gemini HTTP 500")
    report = rated(PASSED, failed, ON)
    assert (report.passed, report.score, report.semantic_score) == (True, 1.0, None)
    assert (report.semantic_error, report.semantic_cost_micros) == ("gemini HTTP 500", 3_000)


def test_every_step_of_the_chain_holds_the_render_price_plus_the_rating():
    # GIVEN semantic QA on, and an 8 s job
    request = JobRequest(job_id="j", prompt="p", duration_s=8)
    extra = qa_hold_micros(ON, 8)
    budget = [BudgetTotals("global", "2027-01-15", 100_000_000)]

    # WHEN its route is planned with the rating's hold
    plan = plan_route(request, CATALOG, {}, budget, Thresholds(), 0.0, qa_hold=extra)

    # THEN each step (and so each fallback attempt) holds its render price plus the estimate
    assert plan.chain and plan.first is not None
    for step in plan.chain:
        price = CATALOG.model(step.backend, step.model).price_for("720p", 8)
        assert step.hold_micros == price + extra


def test_max_cost_covers_the_rating_too():
    # GIVEN a cap exactly at the cheapest render's price: affordable without QA, not with it
    plain = candidates(JobRequest(job_id="j", prompt="p"), CATALOG)
    cheapest = min(plain, key=lambda c: c.hold_micros)
    request = JobRequest(job_id="j", prompt="p", max_cost_usd=cheapest.hold_micros / 1e6)
    model = (cheapest.backend, cheapest.model)

    # THEN that model is a candidate without the rating, and not once its estimate is held
    assert model in [(c.backend, c.model) for c in candidates(request, CATALOG)]
    rated_too = candidates(request, CATALOG, qa_hold=qa_hold_micros(ON, 5))
    assert model not in [(c.backend, c.model) for c in rated_too]
