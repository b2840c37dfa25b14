"""Each provider's answers through the whole embedded pipeline with the live adapters: the
job outcome, the attempts and the money (hold kept, released or settled to the real cost).

Every job is pinned to one backend (``backends``), so what happens is that provider's doing:
throttling and 5xx retry the same backend (twice, then the chain is exhausted), moderation
ends the job, an UNKNOWN outcome keeps the hold and is never rendered twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from aiprod.config import ProviderSettings
from aiprod.domain import metric_set as m
from aiprod.domain.policy import RetryPolicy
from aiprod_tools.embedded import run_schedules
from fakes.base import Reply
from fakes.veo import error_body as veo_error


@dataclass(frozen=True)
class Provider:
    name: str
    request: dict[str, Any]
    cost: int  # what a successful job is charged
    errors: dict[int, Any] = field(default_factory=dict)  # HTTP status → error body

    def fake(self, fakes) -> Any:
        return getattr(fakes, self.name)

    def job(self, job_id: str = "j1", **extra: Any) -> dict[str, Any]:
        return {"job_id": job_id, "prompt": "a lantern at dusk", **self.request, **extra}


RUNWAY = Provider(
    "runway", {"backends": ["runway"]}, 600_000, {429: {"error": "x"}, 500: {"error": "x"}}
)
VEO = Provider(
    "veo",
    {"backends": ["veo"], "duration_s": 8},
    800_000,
    {429: veo_error(429, "RESOURCE_EXHAUSTED", "x"), 500: veo_error(500, "INTERNAL", "x")},
)
REPLICATE = Provider(
    "replicate",
    {"backends": ["replicate"]},
    100_000,
    {429: {"title": "x", "status": 429}, 500: {"title": "x", "status": 500}},
)
PROVIDERS = [pytest.param(p, id=p.name) for p in (RUNWAY, VEO, REPLICATE)]
MODERATE = {
    "runway": {"final": "FAILED", "failure_code": "SAFETY.INPUT.TEXT"},
    "veo": {"final": "RAI_FILTERED"},
    "replicate": {"final": "failed", "error": "NSFW content detected"},
}


@pytest.fixture
def live(pipeline, live_env):
    def build(providers: ProviderSettings | None = None, **settings: Any):
        providers = providers or ProviderSettings.from_env(live_env.get)
        return pipeline(workers=1, provider_mode="live", providers=providers, **settings)

    return build


def attempts(job: dict) -> list[tuple[str, str, str | None]]:
    return [(a["backend"], a["state"], a.get("error_code")) for a in job["attempts"]]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_success_keeps_the_video_and_charges_the_real_cost(live, fakes, provider):
    p = live()
    p.run(provider.job())

    job = p.job("j1")
    assert job["status"] == "SUCCEEDED", attempts(job)
    assert job["output_uri"].startswith(f"gs://{fakes.bucket}/videos/j1/attempt-1")
    done = p.events("job.completed")[0]
    assert (done["output_uri"], done["cost_micros"]) == (job["output_uri"], provider.cost)
    p.assert_books_balanced()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_throttling_retries_the_same_backend_then_the_chain_ends(live, fakes, provider):
    # GIVEN every create answered with 429 (a refusal at the door: no task was made)
    fake = provider.fake(fakes)
    fake.queue("create", *[Reply(429, provider.errors[429])] * 5)
    p = live(retry=_quick_retries())

    p.run(provider.job())

    # THEN the same backend was tried three times (two retries), each sent exactly once
    job = p.job("j1")
    assert job["status"] == "FAILED"
    assert attempts(job) == [(provider.name, "FAILED", "throttled")] * 3
    assert creates(provider, fakes) == 3 and job["cost_micros"] == 0
    p.assert_books_balanced()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_5xx_create_is_never_sent_again_and_is_charged_its_hold(live, fakes, clock, provider):
    # GIVEN a create answered 500 (a task may exist behind it: nothing proves otherwise)
    fake = provider.fake(fakes)
    fake.queue("create", Reply(500, provider.errors[500]))
    p = live(retry=_quick_retries(), lease_s=60)

    p.run(provider.job())

    # THEN the attempt waits, UNKNOWN submit_unconfirmed, its hold kept, nothing resent
    job = p.job("j1")
    assert attempts(job) == [(provider.name, "RUNNING", "submit_unconfirmed")]
    hold = job["attempts"][0]["hold_micros"]

    # WHEN the reconciler finds the submit window over and no task can be found
    # THEN the attempt is closed charging its hold (an estimate), and the create was sent
    # once: the pinned job ends, never rendered twice
    job = _closed_charging_the_hold(p, provider, fakes, clock, hold)
    assert job["attempts"][0]["cost_estimated"] is True


@pytest.mark.parametrize("provider", PROVIDERS)
def test_moderation_ends_the_job_with_the_providers_reason(live, fakes, provider):
    for name, value in MODERATE[provider.name].items():
        setattr(provider.fake(fakes), name, value)
    p = live()

    p.run(provider.job())

    job = p.job("j1")
    assert job["status"] == "FAILED"
    assert [(a["error_class"], a["error_code"]) for a in job["attempts"]] == [
        ("TERMINAL", "content_policy")
    ]
    assert p.events("job.failed")[0]["cost_micros"] == 0
    p.assert_books_balanced()


def test_moderation_falls_back_when_configured(live, fakes, live_env):
    # GIVEN runway refusing on moderation and the policy set to fall back
    fakes.runway.final, fakes.runway.failure_code = "FAILED", "SAFETY.OUTPUT.VIDEO"
    providers = ProviderSettings.from_env({**live_env, "AIPROD_CONTENT_POLICY": "fallback"}.get)
    p = live(providers)

    p.run({"job_id": "j1", "prompt": "a lantern", "duration_s": 8, "backends": ["runway", "veo"]})

    job = p.job("j1")
    assert job["status"] == "SUCCEEDED"
    assert [a["backend"] for a in job["attempts"]] == ["runway", "veo"]
    assert job["attempts"][0]["error_code"] == "content_policy"
    p.assert_books_balanced()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_render_past_the_deadline_is_unknown_then_polled_again_and_rendered_once(
    live, fakes, clock, provider
):
    # GIVEN a render slower than the renderer's deadline
    fake = provider.fake(fakes)
    fake.polls_before_done = 10**6
    p = live(render_deadline_s=15, poll_interval_s=5, lease_s=60)

    p.run(provider.job())

    # THEN the outcome is unknown: the job runs on, its hold kept, its task id stored
    job = p.job("j1")
    assert job["status"] == "RUNNING"
    assert job["attempts"][0]["provider_task_id"] in fake.started
    assert p.ledger()["held_micros"] > 0

    # WHEN the render finishes and the task is delivered again after the lease
    fake.finish_all()
    clock.advance(120)
    p.bus.publish(f"render-{provider.name}", p.bus.published[f"render-{provider.name}"][0].data)
    p.drain()

    # THEN the stored task was polled, never submitted again, and charged once
    assert creates(provider, fakes) == 1
    assert p.job("j1")["status"] == "SUCCEEDED"
    assert p.ledger()["spent_micros"] == provider.cost
    p.assert_books_balanced()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_garbled_create_answer_keeps_the_hold_and_is_never_sent_again(
    live, fakes, clock, provider
):
    fake = provider.fake(fakes)
    status = 201 if provider.name == "replicate" else 200
    fake.queue("create", Reply(status, b'{"id": "tru', {"content-type": "application/json"}))
    p = live(lease_s=60)

    p.run(provider.job())
    clock.advance(120)
    p.bus.publish(f"render-{provider.name}", p.bus.published[f"render-{provider.name}"][0].data)
    p.drain()

    job = p.job("j1")
    assert job["status"] == "RUNNING" and job["attempts"][0]["error_code"] == "malformed_response"
    assert p.ledger()["held_micros"] > 0  # a task may exist: its worst case stays held
    assert creates(provider, fakes) == 1
    hold = job["attempts"][0]["hold_micros"]

    # WHEN the reconciler finds its lease expired, with no task id to poll
    # THEN the attempt is closed charging its hold (the create may have started a paid
    # render nobody can look up), nothing stays held, and nothing was sent again
    job = _closed_charging_the_hold(p, provider, fakes, clock, hold)
    assert "never confirmed" in job["attempts"][0]["reason"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_output_gone_before_it_was_kept_fails_the_attempt_but_is_charged(live, fakes, provider):
    fake = provider.fake(fakes)
    if provider.name == "veo":
        fake.final = "NO_OBJECT"  # reported in the bucket, not there
    else:
        fake.outputs_gone = True
    p = live()

    p.run(provider.job())

    job = p.job("j1")
    assert job["status"] == "FAILED"
    assert attempts(job) == [(provider.name, "FAILED", "output_unavailable")]
    assert job["cost_micros"] == provider.cost  # the provider rendered, and billed
    p.assert_books_balanced()


@pytest.mark.parametrize("provider", [RUNWAY, REPLICATE], ids=["runway", "replicate"])
def test_a_download_broken_half_way_is_fetched_again_not_kept_truncated(live, fakes, provider):
    # GIVEN the provider's output URL breaking off half-way on the first download
    fake = provider.fake(fakes)
    fake.outputs_truncated = 1
    p = live()

    p.run(provider.job())

    # THEN the render function looked again, and the whole video was kept, rendered once
    job = p.job("j1")
    assert job["status"] == "SUCCEEDED", attempts(job)
    assert len(fake.calls("GET", "/outputs/")) == 2
    name = job["output_uri"].removeprefix(f"gs://{fakes.bucket}/")
    task_id = job["attempts"][-1]["provider_task_id"]
    assert fakes.storage.read(fakes.bucket, name) == fake.video(task_id)
    assert creates(provider, fakes) == 1 and job["cost_micros"] == provider.cost
    p.assert_books_balanced()


def _closed_charging_the_hold(p, provider: Provider, fakes, clock, hold: int) -> dict:
    """A sweep after the lease: an unconfirmed create is closed FAILED charging its hold,
    sent once, the books balanced. Returns the job for the caller's own checks."""
    clock.advance(120)
    run_schedules(p.app)
    p.drain()
    job = p.job("j1")
    assert job["status"] == "FAILED"
    assert attempts(job) == [(provider.name, "FAILED", "submit_unconfirmed")]
    assert job["cost_micros"] == hold
    assert creates(provider, fakes) == 1
    p.assert_books_balanced()
    return job


def _quick_retries() -> RetryPolicy:
    return RetryPolicy(base_backoff_s=0.01, max_backoff_s=0.01)


def creates(provider: Provider, fakes) -> int:
    """How many create calls a provider's fake received (Veo's polls are POSTs too, and so is
    Runway's usage report, which the reconciler's hourly spend audit reads)."""
    calls = provider.fake(fakes).calls("POST")
    reads = (":fetchPredictOperation", "/v1/organization/usage")
    return len([c for c in calls if not c.path.endswith(reads)])


def test_a_throttled_create_is_retried_no_sooner_than_runway_asked(live, fakes):
    # GIVEN Runway throttling the first create and asking for 20 s
    fakes.runway.queue("create", Reply(429, {"error": "Too many requests"}, {"retry-after": "20"}))
    p = live()

    p.run(RUNWAY.job())

    # THEN the retry on runway was dispatched to start 20 s after the throttled attempt
    # (the default backoff would be 2 s), and the job completed on it, charged once
    job = p.job("j1")
    first, retry = job["attempts"]
    assert (retry["backend"], retry["state"]) == ("runway", "SUCCEEDED")
    assert retry["not_before"] - first["outcome"]["finished_at"] >= 20
    assert creates(RUNWAY, fakes) == 2 and job["cost_micros"] == RUNWAY.cost
    p.assert_books_balanced()


def test_a_replicate_create_whose_answer_a_gateway_lost_is_found_at_once(live, fakes):
    # GIVEN Replicate creating the prediction, then a gateway answering 502 instead of it
    gateway = Reply(502, b"<html>502 Bad Gateway</html>", {"content-type": "text/html"})
    fakes.replicate.queue("create", Reply(**{**gateway.__dict__, "lost_answer": True}))
    p = live()

    # WHEN the job runs (no reconciler sweep)
    p.run(REPLICATE.job())

    # THEN the render function looked the prediction up, adopted it and delivered it:
    # one create, charged once, exactly what Replicate bills
    job = p.job("j1")
    assert attempts(job) == [("replicate", "SUCCEEDED", None)]
    assert creates(REPLICATE, fakes) == 1
    assert job["attempts"][0]["provider_task_id"] in fakes.replicate.started
    assert job["cost_micros"] == fakes.replicate.billed_total()
    p.assert_books_balanced()


def test_time_in_runways_queue_is_measured_apart_from_render_time(live, fakes):
    # GIVEN Runway holding the task THROTTLED (its queue past our tier's concurrency) for
    # three looks before it renders
    fakes.runway.throttled_polls = 3
    p = live(poll_interval_s=5)

    # WHEN the job runs
    p.run(RUNWAY.job())

    # THEN it succeeded (queueing at the provider is not a failure), the time queued is on
    # the outcome, and the render-time metric leaves it out
    job = p.job("j1")
    assert attempts(job) == [("runway", "SUCCEEDED", None)]
    outcome = job["attempts"][0]["outcome"]
    assert outcome["provider_queue_s"] >= 10
    queued = p.app.metrics.values(m.PROVIDER_QUEUE, backend="runway")
    assert queued == [outcome["provider_queue_s"]]
    [render_s] = p.app.metrics.values(m.RENDER_DURATION, backend="runway", status="succeeded")
    total = outcome["finished_at"] - outcome["started_at"]
    assert render_s == pytest.approx(total - outcome["provider_queue_s"])
