"""Our output bucket failing is ours, not the provider's (issue 10, path 1): a finished
render whose output the bucket refuses is charged what the provider reported, the output
store's circuit counts it (never the provider's), and once that circuit opens new jobs are
rejected ``output_store_unavailable`` before any provider is paid."""

from __future__ import annotations

import pytest

from aiprod.config import ProviderSettings
from aiprod.domain.health import OUTPUT_STORE


@pytest.fixture
def missing_bucket(pipeline, live_env):
    providers = ProviderSettings.from_env(
        {**live_env, "AIPROD_OUTPUT_BUCKET": "aiprod-no-such-bucket"}.get
    )
    return pipeline(workers=1, provider_mode="live", providers=providers, poll_interval_s=1)


def test_a_failing_bucket_is_charged_opens_its_own_circuit_and_stops_new_jobs(
    missing_bucket, fakes
):
    p = missing_bucket

    # WHEN three runway jobs finish at the provider but their outputs cannot be kept
    p.run(*[{"job_id": f"j{i}", "prompt": "a lantern", "backends": ["runway"]} for i in range(3)])

    # THEN each attempt closed after its bounded tries, charged what runway reported
    for i in range(3):
        [attempt] = p.job(f"j{i}")["attempts"]
        assert (attempt["error_code"], attempt["cost_micros"]) == (
            "output_store_unavailable",
            600_000,
        )
        assert attempt["keep_failures"] >= 1 and attempt["known_cost_micros"] == 600_000
    assert len(fakes.runway.calls("POST", "/v1/text_to_video")) == 3

    # AND the output store's circuit opened, runway's did not (the fault is ours)
    assert p.store.get("backends", OUTPUT_STORE)["state"] == "open"
    assert p.store.get("backends", "runway") is None

    # WHEN another job arrives THEN it is rejected before any provider is paid
    p.run({"job_id": "j9", "prompt": "a lantern", "backends": ["runway"]})
    job = p.job("j9")
    assert (job["status"], job["reason"]) == ("REJECTED", "output_store_unavailable")
    assert len(fakes.runway.calls("POST", "/v1/text_to_video")) == 3
    assert p.events("job.rejected", "j9")[0]["reason"] == "output_store_unavailable"
    p.assert_books_balanced()
