"""The spend audit through the embedded pipeline with the live adapters on the wire fakes: a
render the provider ran with no attempt behind it (created straight on the fake) is charged
once to the global budget as unattributed, reported (``aiprod spend audit``, the metric, the
``unattributed`` line of ``aiprod budget audit``), and never charged again, whether the
operator or the reconciler's hourly pass runs the audit, once or many times."""

from __future__ import annotations

import time

import httpx
import pytest

from aiprod.config import ProviderSettings
from aiprod.domain import metric_set as m
from aiprod.domain.catalog import default_catalog
from aiprod.domain.money import as_usd, money
from aiprod.domain.spend_audit import worst_case
from aiprod.repositories import unattributed
from aiprod_tools import cli
from aiprod_tools.cli import context
from aiprod_tools.embedded import run_schedules
from fakes.runway import API_VERSION

WAN = "wan-video/wan-2.2-t2v-fast"
GRACE_S = 700  # past a lease: a render that young may not have stored its task id yet


@pytest.fixture
def live(pipeline, live_env, monkeypatch):
    def build(**settings):
        providers = ProviderSettings.from_env(live_env.get)
        p = pipeline(workers=1, provider_mode="live", providers=providers, **settings)
        monkeypatch.setattr(context, "make_app", lambda: p.app)
        return p

    return build


def replicate_orphan(fakes) -> str:
    url = f"{fakes.replicate.url}/v1/models/{WAN}/predictions"
    auth = {"Authorization": f"Bearer {fakes.replicate.token}"}
    return httpx.post(url, json={"input": {"prompt": "x"}}, headers=auth).json()["id"]


def runway_orphan(fakes) -> str:
    headers = {"Authorization": f"Bearer {fakes.runway.api_key}", "X-Runway-Version": API_VERSION}
    body = {"model": "gen4.5", "promptText": "x", "ratio": "1280:720", "duration": 5}
    url = f"{fakes.runway.url}/v1/text_to_video"
    return httpx.post(url, json=body, headers=headers).json()["id"]


def global_spent(p) -> int:
    return p.ledger("global").get("spent_micros", 0)


def job_costs(p) -> int:
    return sum(j["cost_micros"] for j in p.jobs())


def test_a_replicate_orphan_is_charged_once_unattributed_and_reported(live, fakes, clock, capsys):
    # GIVEN a recorded job, and a prediction made with our token that no attempt knows
    p = live()
    p.run({"job_id": "j1", "prompt": "a lantern", "backends": ["replicate"]})
    orphan = replicate_orphan(fakes)
    fakes.replicate.finish_all()
    clock.advance(GRACE_S)

    # WHEN the operator audits today
    status = cli.main(["spend", "audit"])

    # THEN the orphan is charged its worst case (the provider gives no cost for it), once
    charged = worst_case(default_catalog(), "replicate", WAN)
    out = capsys.readouterr().out
    assert status == 1 and orphan in out and "orphan" in out
    [record] = unattributed.of_day(p.store, p.day())
    assert (record.provider, record.amount_micros, record.provider_ids) == (
        "replicate",
        charged,
        [orphan],
    )
    assert record.scope == "global" and record.unattributed and record.reason == "orphan"
    assert global_spent(p) == job_costs(p) + charged
    assert p.app.metrics.values(m.SPEND_UNRECORDED, backend="replicate") == [as_usd(charged)]

    # AND again: nothing more is charged, and the audit says so
    assert cli.main(["spend", "audit"]) == 0
    assert len(unattributed.of_day(p.store, p.day())) == 1
    assert global_spent(p) == job_costs(p) + charged

    # AND the books still balance, with the unattributed line
    capsys.readouterr()
    assert cli.main(["budget", "audit"]) == 0
    out = capsys.readouterr().out
    assert "the books balance" in out and f"unattributed: {money(charged)} in 1 charges" in out
    p.assert_ledger_matches_attempts()


def test_the_reconcilers_hourly_pass_charges_an_orphan_once(live, fakes, clock):
    # GIVEN an orphan prediction, old enough to be audited
    p = live()
    orphan = replicate_orphan(fakes)
    fakes.replicate.finish_all()
    clock.advance(GRACE_S)

    # WHEN the reconciler sweeps three times in one hour, then once the next hour
    for _ in range(3):
        run_schedules(p.app)
    clock.advance(3600)
    run_schedules(p.app)

    # THEN two audits ran (one per hour), and the orphan was charged once
    lists = [r for r in fakes.replicate.calls("GET", "/v1/predictions") if "?" not in r.path]
    assert len([r for r in lists if r.path == "/v1/predictions"]) == 2
    [record] = unattributed.of_day(p.store, p.day())
    assert record.provider_ids == [orphan]
    assert global_spent(p) == worst_case(default_catalog(), "replicate", WAN)


def test_runway_usage_above_the_books_is_charged_as_the_days_excess(live, fakes, clock, capsys):
    # GIVEN a recorded Runway job and a Runway task created outside aiprod (60 credits)
    p = live()
    p.run({"job_id": "j1", "prompt": "a lantern", "backends": ["runway"]})
    runway_orphan(fakes)
    clock.advance(GRACE_S)

    # WHEN audited twice
    assert cli.main(["spend", "audit"]) == 1
    assert cli.main(["spend", "audit"]) == 0

    # THEN the usage above what the attempts recorded is charged once, as the day's total
    [record] = unattributed.of_day(p.store, p.day())
    assert (record.charge_id, record.amount_micros) == (f"runway:total@{p.day()}", 600_000)
    assert global_spent(p) == job_costs(p) + 600_000
    capsys.readouterr()
    assert cli.main(["budget", "audit"]) == 0


def test_a_veo_video_no_attempt_accounts_for_is_charged(live, fakes, clock):
    # GIVEN a video in Veo's output folder of an attempt aiprod never recorded (the storage
    # emulator dates objects by the wall clock, so this test's clock is the wall clock)
    clock.now = time.time()
    p = live()
    bucket = fakes.storage.client().bucket(fakes.bucket)
    bucket.blob("videos/jx/attempt-1/sample_0.mp4").upload_from_string(b"video")
    clock.advance(GRACE_S)

    report = p.app.spend_audit.run(p.day())

    [veo] = [a for a in report.providers if a.provider == "veo"]
    [(charge, added)] = veo.charged
    assert charge.charge_id == "veo:jx~attempt-1" and added == worst_case(default_catalog(), "veo")
    assert p.app.spend_audit.run(p.day()).charged_micros == 0


def test_a_provider_that_cannot_be_read_is_reported_and_the_others_audited(live, fakes, clock):
    from fakes.base import Reply

    p = live()
    replicate_orphan(fakes)
    fakes.replicate.finish_all()
    fakes.runway.queue("usage", *[Reply(500, {"error": "down"})] * 5)  # past SDK retries
    clock.advance(GRACE_S)

    report = p.app.spend_audit.run(p.day())

    runway = next(a for a in report.providers if a.provider == "runway")
    assert runway.error and not report.ok
    assert report.charged_micros == worst_case(default_catalog(), "replicate", WAN)
