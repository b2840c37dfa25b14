"""Each provider's ``SpendSource`` (what the spend audit asks) against its wire fake:
Replicate's prediction list and its cursor pages, Runway's organization usage and stored
task look-ups, and Veo's videos in the output bucket (the storage emulator)."""

from __future__ import annotations

import time

import httpx
import pytest
from replicate.exceptions import ReplicateError

from aiprod.adapter_tables import make_spend_source
from aiprod.domain.catalog import default_catalog
from fakes.base import Reply
from fakes.clock import T0
from support.live import live_backend, live_settings, render_task

DAY = "2027-01-15"  # the fakes date every task at T0 (2027-01-15T08:00:00Z)
START, END = T0 - 8 * 3600, T0 + 16 * 3600


def source(env, name: str):
    return make_spend_source(name, live_settings(env), default_catalog())


def test_replicate_lists_every_prediction_of_the_day_across_cursor_pages(live_env, fakes):
    # GIVEN five predictions made with our token, two per page
    backend = live_backend(live_env, "replicate")
    made = {backend.submit(render_task("replicate", job_id=f"j{i}")) for i in range(5)}
    fakes.replicate.page_size = 2

    # WHEN the audit asks for the day
    seen = source(live_env, "replicate").day(DAY, START, END, [])

    # THEN every one is listed once, read from three pages that follow ``next``
    assert {t.key for t in seen.tasks} == made
    pages = fakes.replicate.calls("GET", "/v1/predictions")
    assert [r.path.partition("?")[2] for r in pages if "/v1/predictions/" not in r.path] == [
        "",
        "cursor=2",
        "cursor=4",
    ]
    assert all(r.header("authorization") == f"Bearer {fakes.replicate.token}" for r in pages)


def test_replicate_says_what_each_prediction_billed(live_env, fakes):
    backend = live_backend(live_env, "replicate")
    task_id = backend.submit(render_task("replicate"))
    fakes.replicate.finish_all()

    [task] = source(live_env, "replicate").day(DAY, START, END, []).tasks

    assert (task.key, task.status, task.billed) == (task_id, "succeeded", True)
    assert task.model == "wan-video/wan-2.2-t2v-fast"
    fakes.replicate.final = "failed"  # an output-seconds model bills no failed prediction
    [failed] = source(live_env, "replicate").day(DAY, START, END, []).tasks
    assert failed.billed is False


def test_replicate_stops_paging_at_the_window_and_skips_what_is_outside(live_env, fakes):
    live_backend(live_env, "replicate").submit(render_task("replicate"))
    fakes.replicate.page_size = 1

    later = source(live_env, "replicate").day("2027-01-16", T0 + 86_400, T0 + 2 * 86_400, [])

    assert later.tasks == ()


def test_replicate_list_failure_raises_for_the_audit_to_report(live_env, fakes):
    fakes.replicate.queue("list", Reply(500, {"title": "x", "status": 500}))
    with pytest.raises(ReplicateError):
        source(live_env, "replicate").day(DAY, START, END, [])


def test_runway_usage_is_the_days_credits_in_micro_usd(live_env, fakes):
    # GIVEN two gen4.5 tasks of 5 s (12 credits/s) created today
    backend = live_backend(live_env, "runway")
    ids = [backend.submit(render_task("runway", job_id=f"j{i}")) for i in range(2)]

    seen = source(live_env, "runway").day(DAY, START, END, [])

    # THEN the total is 2 x 60 credits at $0.01, from POST /v1/organization/usage
    assert seen.total_micros == 2 * 60 * 10_000 and seen.tasks == ()
    [usage] = fakes.runway.calls("POST", "/v1/organization/usage")
    assert usage.json() == {"startDate": DAY, "beforeDate": "2027-01-16"}
    assert usage.header("x-runway-version") == "2024-11-06"
    assert ids


def test_runway_looks_up_each_stored_task_it_is_given(live_env, fakes):
    backend = live_backend(live_env, "runway")
    task_id = backend.submit(render_task("runway"))
    fakes.runway.finish_all()

    seen = source(live_env, "runway").day(DAY, START, END, [task_id, "no-such-task"])

    [task] = seen.tasks
    assert (task.key, task.status, task.billed, task.cost_micros) == (
        task_id,
        "SUCCEEDED",
        True,
        600_000,
    )


def test_runway_usage_of_another_day_is_zero(live_env, fakes):
    live_backend(live_env, "runway").submit(render_task("runway"))
    seen = source(live_env, "runway").day("2027-01-16", START, END, [])
    assert seen.total_micros == 0


def test_veo_outputs_are_the_attempt_folders_written_in_the_window(live_env, fakes):
    # GIVEN Veo wrote one attempt's video; a kept output of another provider sits beside it
    backend = live_backend(live_env, "veo")
    operation = backend.submit(render_task("veo", job_id="jv"))
    fakes.veo.finish_all()
    backend.poll(operation, render_task("veo", job_id="jv"))
    client = fakes.storage.client()
    client.bucket(fakes.bucket).blob("videos/jr/attempt-1.mp4").upload_from_string(b"x")

    now = time.time()
    seen = source(live_env, "veo").day("today", now - 3600, now + 3600, [])

    # THEN one render, keyed by its attempt folder; none outside the window
    [task] = seen.tasks
    assert task.key == "jv/attempt-1" and task.billed is True
    assert task.provider_id.startswith(f"gs://{fakes.bucket}/videos/jv/attempt-1/")
    assert source(live_env, "veo").day("later", now + 3600, now + 7200, []).tasks == ()


def test_an_orphan_created_straight_on_the_fake_is_listed(live_env, fakes):
    url = f"{fakes.replicate.url}/v1/models/wan-video/wan-2.2-t2v-fast/predictions"
    auth = {"Authorization": f"Bearer {fakes.replicate.token}"}
    made = httpx.post(url, json={"input": {"prompt": "x"}}, headers=auth).json()["id"]
    assert [t.key for t in source(live_env, "replicate").day(DAY, START, END, []).tasks] == [made]
