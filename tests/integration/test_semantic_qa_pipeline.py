"""Semantic QA through the embedded pipeline with the live adapters: each attempt holds its
render price plus the rating's worst case, the job is charged render + rating on its scopes,
the books balance, and the spend audit compares the provider's part only."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aiprod.config import ProviderSettings
from aiprod.domain.catalog import default_catalog
from aiprod.domain.jobs import Job
from aiprod.domain.semantic_qa import SemanticQa, Usage, usage_cost, worst_case_micros
from aiprod.repositories import unattributed
from aiprod.services.spend_audit import provider_cost
from aiprod_tools import cli
from aiprod_tools.cli import context
from fakes.veo import RATING_OUTPUT_TOKENS, RATING_PROMPT_TOKENS

MODEL = "gemini-2.5-flash"
RENDER = default_catalog().model("runway", "gen4.5").price_for("720p", 5) or 0
USAGE = Usage(
    sum(RATING_PROMPT_TOKENS.values()), RATING_OUTPUT_TOKENS, RATING_PROMPT_TOKENS["AUDIO"]
)
RATING = usage_cost(MODEL, USAGE)
GRACE_S = 700  # past a lease, as the spend audit waits before it judges a task


@pytest.fixture
def live(pipeline, live_env, monkeypatch):
    def build(policy: str = "flag"):
        providers = replace(
            ProviderSettings.from_env(live_env.get),
            semantic_qa=SemanticQa(mode="gemini", policy=policy),
        )
        p = pipeline(workers=1, provider_mode="live", providers=providers)
        monkeypatch.setattr(context, "make_app", lambda: p.app)
        return p

    return build


def test_the_hold_includes_the_rating_and_the_job_is_charged_render_plus_rating(live, fakes):
    p = live()

    p.run({"job_id": "j1", "prompt": "a lantern at dusk", "backends": ["runway"]})

    job = p.job("j1")
    assert job["status"] == "SUCCEEDED", job["attempts"]
    [attempt] = job["attempts"]
    assert attempt["hold_micros"] == RENDER + worst_case_micros(MODEL, 5)
    assert job["cost_micros"] == attempt["cost_micros"] == RENDER + RATING
    done = p.events("job.completed")[0]
    assert done["cost_micros"] == RENDER + RATING and done["qa"]["semantic_score"] == 0.9
    assert done["qa"]["semantic_cost_micros"] == RATING
    assert p.ledger("global")["spent_micros"] == RENDER + RATING
    p.assert_books_balanced()


def test_a_low_rating_under_fallback_falls_back_charged_and_the_books_balance(live, fakes):
    # GIVEN every rating low, and a job that may fall back from Runway to Replicate
    fakes.veo.semantic_score = 0.1
    p = live("fallback")

    p.run({"job_id": "j1", "prompt": "a lantern", "backends": ["runway", "replicate"]})

    # THEN both attempts fail qa_failed, each charged its render and its rating
    job = p.job("j1")
    codes = [(a["backend"], a.get("error_code")) for a in job["attempts"]]
    assert job["status"] == "FAILED" and codes == [
        ("runway", "qa_failed"),
        ("replicate", "qa_failed"),
    ]
    replicate = default_catalog().model("replicate", "wan-video/wan-2.2-t2v-fast")
    assert job["cost_micros"] == RENDER + (replicate.price_for("720p", 5) or 0) + 2 * RATING
    p.assert_books_balanced()


def test_the_spend_audit_compares_the_render_part_only(live, fakes, clock):
    # GIVEN a rated Runway job (Runway reports a daily total: its renders only)
    p = live()
    p.run({"job_id": "j1", "prompt": "a lantern", "backends": ["runway"]})
    clock.advance(GRACE_S)

    # WHEN the operator audits today
    status = cli.main(["spend", "audit"])

    # THEN the attempt's provider part is the render, and nothing is unattributed
    attempt = Job.model_validate(p.job("j1")).attempts[0]
    assert provider_cost(attempt) == RENDER and attempt.cost_micros == RENDER + RATING
    assert status == 0 and unattributed.of_day(p.store, p.day()) == []
    p.assert_books_balanced()
