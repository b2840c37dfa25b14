"""Adversarial review of output QA's money paths (issue 14), on the live adapters against the
fakes: each test is a way a render's or a rating's cost was dropped or misfiled (now fixed).

The rule under test: a cost a provider reported, or may have incurred, is never dropped; the
spend audit compares with a provider only what that provider billed.
"""

from __future__ import annotations

from dataclasses import replace

from aiprod import faults
from aiprod.config import ProviderSettings
from aiprod.domain.catalog import default_catalog
from aiprod.domain.policy import RetryPolicy
from aiprod.domain.semantic_qa import SemanticQa, Usage, usage_cost, worst_case_micros
from aiprod.repositories import jobs
from aiprod.services.provider_calls import look
from aiprod.services.spend_audit import provider_cost
from fakes.base import Reply
from fakes.veo import RATING_OUTPUT_TOKENS, RATING_PROMPT_TOKENS
from support.live import live_backend, render_task
from support.stuck import sweep

MODEL = "gemini-2.5-flash"
RENDER = default_catalog().model("runway", "gen4.5").price_for("720p", 5) or 0
RATING = usage_cost(
    MODEL,
    Usage(sum(RATING_PROMPT_TOKENS.values()), RATING_OUTPUT_TOKENS, RATING_PROMPT_TOKENS["AUDIO"]),
)
JOB = {"job_id": "j1", "prompt": "a lantern at dusk", "backends": ["runway"]}


def _rated_pipeline(pipeline, live_env, **settings):
    providers = replace(
        ProviderSettings.from_env(live_env.get), semantic_qa=SemanticQa(mode="gemini")
    )
    return pipeline(workers=1, provider_mode="live", providers=providers, **settings)


def test_an_unparsable_gemini_answer_still_delivers_the_render_charged(live_env, fakes):
    # GIVEN semantic QA on, and Gemini's endpoint answering 200 with an HTML page
    fakes.veo.queue("rate", Reply(200, b"<html>upstream proxy</html>"))
    backend = live_backend(
        live_env, "runway", semantic_qa=SemanticQa(mode="gemini"), veo_project="proj-veo"
    )
    task = render_task("runway")
    task_id = backend.submit(task)

    # WHEN the render function looks at the finished task (as services/render.py does)
    result = look(backend, task_id, task)
    while not result.done:
        result = look(backend, task_id, task)

    # THEN the output is delivered on its technical verdict, charged the render (and what
    # the unreadable answer may have cost), saying why the rating is missing
    assert result.error_class is None, result.message
    assert result.output_uri and result.qa.semantic_error
    assert result.cost_micros >= RENDER
    # exactly: what Runway billed, and the rating's worst case (it ran and may have billed)
    estimate = worst_case_micros(MODEL, task.request.duration_s)
    assert result.qa.semantic_cost_micros == estimate
    assert result.cost_micros == fakes.runway.billed()[task_id] + estimate


def test_a_redelivered_render_task_does_not_drop_a_rating_cost(
    pipeline, live_env, fakes, monkeypatch, tmp_path
):
    # GIVEN the render function crashing once after the provider answered, before reporting
    monkeypatch.setenv("AIPROD_FAULTS", "render.after_provider=raise:1")
    monkeypatch.setenv("AIPROD_FAULTS_DIR", str(tmp_path))
    faults._plan.cache_clear()
    try:
        p = _rated_pipeline(pipeline, live_env)
        p.run(JOB)
    finally:
        faults._plan.cache_clear()

    # THEN every rating Gemini billed is on the books (or, better, it was asked once)
    job = p.job("j1")
    assert job["status"] == "SUCCEEDED"
    billed = len(fakes.veo.ratings()) * RATING
    assert job["cost_micros"] == RENDER + billed, (len(fakes.veo.ratings()), job["cost_micros"])
    assert len(fakes.veo.ratings()) == 1, "one provider task, one rating"
    assert job["cost_micros"] == fakes.runway.billed_total() + billed
    p.assert_books_balanced()


def test_a_late_tasks_output_is_not_rated_nor_its_rating_filed_under_the_provider(
    pipeline, live_env, fakes, clock
):
    # GIVEN a rated Runway render still running when its job passes its wall time
    fakes.runway.polls_before_done = 10**6
    p = _rated_pipeline(
        pipeline,
        live_env,
        lease_s=60,
        render_deadline_s=10,
        poll_interval_s=5,
        retry=RetryPolicy(max_wall_s=30),
    )
    p.run(JOB)
    clock.advance(25)
    sweep(p)  # overdue: the job fails, the task is kept as a late task
    assert p.job("j1")["status"] == "FAILED"

    # WHEN the task finishes and the reconciler charges it
    fakes.runway.finish_all()
    clock.advance(61)
    sweep(p)

    # THEN it is charged what Runway billed, as Runway's; no rating was bought for it
    attempt = jobs.load(p.store, "j1").attempts[0]
    assert attempt.late_task_lease is None, "charged"
    assert fakes.veo.ratings() == []
    assert provider_cost(attempt) == RENDER
    assert attempt.cost_micros == fakes.runway.billed_total()
    p.assert_books_balanced()
