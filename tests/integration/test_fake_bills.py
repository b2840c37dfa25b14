"""The wire fakes keep a bill (``billed()``): what each provider charges for the tasks it
created. The fault matrix and the spend audit compare aiprod's books with it, so it must
agree with what the pipeline charges for a plain success, and charge nothing for a render
the provider reports as failed."""

from __future__ import annotations

import pytest

from aiprod.config import ProviderSettings
from fakes.runway import Task

JOBS = {
    "runway": {"backends": ["runway"]},
    "veo": {"backends": ["veo"], "duration_s": 8},
    "replicate": {"backends": ["replicate"]},
}
FAILED = {"runway": "FAILED", "veo": "ERROR", "replicate": "failed"}


def _run(pipeline, live_env, name: str):
    providers = ProviderSettings.from_env(live_env.get)
    p = pipeline(workers=1, provider_mode="live", providers=providers)
    p.run({"job_id": "j1", "prompt": "a lantern at dusk", **JOBS[name]})
    return p


@pytest.mark.parametrize("name", list(JOBS))
def test_a_success_is_billed_exactly_what_the_pipeline_charged(pipeline, live_env, fakes, name):
    # GIVEN a provider that renders the job
    fake = getattr(fakes, name)

    # WHEN one job runs on it
    p = _run(pipeline, live_env, name)

    # THEN its one task is billed what the job was charged, and nothing else is
    job = p.job("j1")
    assert job["status"] == "SUCCEEDED"
    task_id = job["attempts"][0]["provider_task_id"]
    assert fake.billed() == {task_id: job["cost_micros"]}
    assert fake.billed_total() == job["cost_micros"] > 0


@pytest.mark.parametrize("name", list(JOBS))
def test_a_failed_render_is_billed_nothing(pipeline, live_env, fakes, name):
    # GIVEN a provider whose renders fail
    fake = getattr(fakes, name)
    fake.final = FAILED[name]

    # WHEN one job runs on it
    p = _run(pipeline, live_env, name)

    # THEN its task is on the bill at 0, as the job's charge is
    job = p.job("j1")
    assert job["status"] == "FAILED"
    assert fake.billed() == {job["attempts"][0]["provider_task_id"]: 0}
    assert job["cost_micros"] == 0


def test_a_task_nobody_polled_is_billed_as_if_it_finished(fakes):
    # GIVEN a Runway task created on the fake and never polled
    fake = fakes.runway
    fake.started["t"] = Task("t", "gen4_turbo", 10, polls_left=5)

    # THEN it bills as a finished one would: 5 credits/s for 10 s
    assert fake.billed() == {"t": 500_000}
