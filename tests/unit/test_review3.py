"""Adversarial review of issue 13 (tenants bound to topics, hostile inputs, provenance of
internal messages, retention): what held, and seven problems it found, fixed since (a forged
"succeeded, UNKNOWN" outcome settled a running job; a task's own not_before skipped a
backoff; a tenant job's dead letter could not be replayed; fec0::/10, [v1.x] and a host
echoed in a rejection). A strict xfail marks a problem not yet fixed."""

from __future__ import annotations

import base64
import inspect
import json
import sys
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from aiprod import topology
from aiprod.domain.budget import budget_day
from aiprod.domain.dead_letters import DELIVERY_COUNT, SOURCE_SUBSCRIPTION, DeadLetter
from aiprod.domain.invalid_requests import describe
from aiprod.domain.messages import IMAGE_BUCKETS, ErrorClass, JobRequest, RenderOutcome
from aiprod.repositories import dead_letters as letters_kept
from aiprod.repositories.ledger import SHARDS
from aiprod.services.dead_letters import DeadLetters
from aiprod_tools.embedded import add_tenant
from support.inputs_app import BUCKET, inputs_app

JOB = {"prompt": "a paper boat", "duration_s": 5}


@pytest.fixture
def app():
    yield from inputs_app()


def _admitted(app, job_id: str = "f1") -> dict:
    app.router.handle(json.dumps({**JOB, "job_id": job_id}).encode(), {})
    return app.store.get("jobs", job_id)


def _running(app, job_id: str = "f1", task_id: str | None = "task-1") -> dict:
    doc = _admitted(app, job_id)
    doc["attempts"][0].update(state="RUNNING", provider_task_id=task_id)
    app.store.set("jobs", job_id, doc)
    return doc


def _outcome(doc: dict, **fields) -> bytes:
    attempt = doc["attempts"][0]
    base = dict(
        job_id=doc["job_id"],
        attempt=1,
        backend=attempt["backend"],
        model=attempt["model"],
        succeeded=False,
    )
    return RenderOutcome(**{**base, **fields}).model_dump_json().encode()


@pytest.mark.parametrize("task_id", ["task-1", None])
def test_a_forged_success_marked_unknown_cannot_settle_a_running_job(app, task_id):
    # GIVEN a job whose attempt 1 is RUNNING at the provider (task-1)
    doc = _running(app)
    hold = doc["attempts"][0]["hold_micros"]
    assert hold > 0
    # WHEN an outcome nobody stored arrives: succeeded, cost 0, but error_class UNKNOWN
    # (not a RenderOutcome any more: a success has no error class; sent as raw JSON)
    body = json.loads(_outcome(doc, cost_micros=0, provider_task_id=task_id))
    body.update(succeeded=True, error_class="UNKNOWN", output_uri="gs://attacker/x.mp4")
    app.outcomes.handle(json.dumps(body).encode(), {})
    # THEN it is refused (dead-lettered invalid), the job still renders, the hold is kept
    # (before the fix: SUCCEEDED with the forged output_uri, hold released, 0 spent, and the
    # real task's cost never charged: its own outcome was then a stale duplicate)
    totals = app.ledger.snapshot(app.store, "global", _day(app))
    assert (totals.held_micros, totals.spent_micros) == (hold, 0)
    after = app.store.get("jobs", "f1")
    assert after["status"] == "RUNNING", (after["status"], after.get("output_uri"))
    assert [m.attributes["reason"] for m in app.bus.published["dead-letter"]] == ["invalid"]


def _task_of(app, job_id: str = "f1") -> bytes:
    tasks = [m for t, ms in app.bus.published.items() if t.startswith("render-") for m in ms]
    [task] = [m for m in tasks if json.loads(m.data)["job_id"] == job_id]
    return task.data


def test_a_task_with_an_earlier_not_before_does_not_start_a_backed_off_attempt(app):
    # GIVEN attempt 1 stored DISPATCHED with a backoff until now + 600 s (as after a 429)
    doc = _admitted(app)
    data = _task_of(app)
    until = app.clock() + 600
    doc["attempts"][0]["not_before"] = until
    app.store.set("jobs", "f1", doc)
    # WHEN a task with every other field right but not_before 0 is delivered
    task = json.loads(data)
    assert task["not_before"] == 0
    app.renderer(task["backend"]).handle(json.dumps(task).encode(), {})
    # THEN nothing reaches the provider before the stored backoff is over
    after = app.store.get("jobs", "f1")["attempts"][0]
    dead = [m.attributes["reason"] for m in app.bus.published["dead-letter"]]
    assert dead == ["mismatch"] or (after.get("claimed_at") or until) >= until, (
        after["state"],
        after.get("claimed_at"),
        until,
    )


# --- tenants -------------------------------------------------------------------------------


def _tenant_path(app, tenant: str) -> str:
    name = topology.qualified(app.settings.prefix, topology.tenant_subscription(tenant))
    return f"projects/{app.settings.project}/subscriptions/{name}"


def _scopes(app) -> set[str]:
    return {doc["scope"] for doc in app.store.list(SHARDS)}


def test_a_tenant_cannot_cancel_another_tenants_job(app):
    # GIVEN acme and beta configured, beta's job rendering
    add_tenant(app, "acme", 5_000_000)
    add_tenant(app, "beta", 5_000_000)
    app.router.handle(json.dumps({**JOB, "job_id": "b-1"}).encode(), {}, _tenant_path(app, "beta"))
    assert app.store.get("jobs", "b-1")["tenant"] == "beta"
    # WHEN acme's app publishes a cancel for it (through whatever channel names acme)
    handle = app.job_control.handle
    assert "subscription" in inspect.signature(handle).parameters, (
        "control_job cannot tell which tenant sent a cancel"
    )
    cancel = {"action": "cancel", "job_id": "b-1", "requested_by": "acme-app"}
    control = topology.qualified(app.settings.prefix, topology.tenant_control_subscription("acme"))
    handle(
        json.dumps(cancel).encode(), {}, f"projects/{app.settings.project}/subscriptions/{control}"
    )
    # THEN beta's job is untouched
    assert app.store.get("jobs", "b-1")["status"] != "CANCELLED"


def test_a_tenant_jobs_dead_letter_replays_to_its_tenant_topic(app):
    sub = _tenant_path(app, "acme")
    message = SimpleNamespace(
        data=json.dumps({**JOB, "job_id": "dl-1"}).encode(),
        attributes={SOURCE_SUBSCRIPTION: sub, DELIVERY_COUNT: "5"},
        message_id="m-1",
    )
    letter = DeadLetter.received(message, app.settings.prefix, app.clock())
    assert letter.source == "jobs--acme"
    inbox = DeadLetters(app.store, app.bus, app.settings.prefix, app.clock)
    letters_kept.create(app.store, letter, 86_400.0)
    [(replayed, _)] = inbox.replay([letter.id])
    assert replayed.source == "jobs--acme"
    assert [json.loads(m.data)["job_id"] for m in app.bus.published["jobs--acme"]] == ["dl-1"]


# spellings of ``tenant`` in the body of a job on acme's topic, and on the shared topic
SPELLINGS = [
    "ACME",
    "acme ",
    " acme",
    "\u0430cme",  # Cyrillic a
    "acme\u200b",
    "",
    "beta",
    "lane1",
    "a--b",
    5,
    ["acme"],
    {"name": "acme"},
    True,
]


@pytest.mark.parametrize("named", SPELLINGS, ids=repr)
@pytest.mark.parametrize("on", ["acme", None])
def test_no_spelling_of_tenant_charges_beta_or_escapes_acme(app, named, on):
    add_tenant(app, "acme", 5_000_000)
    add_tenant(app, "beta", 5_000_000)
    body = {**JOB, "job_id": "s-1", "tenant": named}
    app.router.handle(json.dumps(body).encode(), {}, _tenant_path(app, on) if on else None)
    job = app.store.get("jobs", "s-1")
    assert (job["status"], job["reason"]) == ("REJECTED", "invalid")
    assert job.get("tenant") == on
    assert _scopes(app) <= {"global"}


@pytest.mark.parametrize("on", ["acme", None])
def test_a_null_tenant_is_the_topics(app, on):
    add_tenant(app, "acme", 5_000_000)
    body = {**JOB, "job_id": "n-1", "tenant": None}
    app.router.handle(json.dumps(body).encode(), {}, _tenant_path(app, on) if on else None)
    job = app.store.get("jobs", "n-1")
    assert (job["status"], job.get("tenant")) == ("RUNNING", on)
    assert _scopes(app) == ({"global", "tenant:acme"} if on else {"global"})


def test_the_same_job_id_on_another_tenants_topic_touches_nothing_of_the_first(app):
    add_tenant(app, "acme", 5_000_000)
    add_tenant(app, "beta", 5_000_000)
    body = json.dumps({**JOB, "job_id": "same"}).encode()
    app.router.handle(body, {}, _tenant_path(app, "beta"))
    before = app.store.get("jobs", "same")
    spent = {s: app.ledger.snapshot(app.store, s, _day(app)) for s in _scopes(app)}
    for channel in ("acme", None):  # the very same bytes, on acme's topic and the shared one
        app.router.handle(body, {}, _tenant_path(app, channel) if channel else None)
    assert app.store.get("jobs", "same") == before
    assert {s: app.ledger.snapshot(app.store, s, _day(app)) for s in _scopes(app)} == spent
    refused = [
        json.loads(m.data)
        for m in app.bus.published["job-events"]
        if json.loads(m.data)["type"] == "job.duplicate_rejected"
    ]
    assert [e["tenant"] for e in refused] == ["acme", None]
    assert all(e["metadata"] == {} and e["cost_micros"] == 0 for e in refused)


def _day(app) -> str:
    return budget_day(app.clock(), app.settings.timezone)


def test_the_subscription_cannot_be_spoofed_from_the_message(tmp_path):
    """A publisher controls only message.data and attributes: neither reaches the place
    ``entrypoints.subscription`` reads (functions-framework drops the envelope's field; the
    request body's top level is Pub/Sub's)."""
    from functions_framework import create_app

    source = tmp_path / "main.py"
    source.write_text(
        "import functions_framework\n"
        "from aiprod.entrypoints import subscription\n"
        "seen_r3 = []\n"
        "@functions_framework.cloud_event\n"
        "def probe(cloud_event):\n"
        "    seen_r3.append(subscription(cloud_event))\n"
    )
    client = create_app("probe", str(source), "cloudevent").test_client()
    spoof = "projects/p/subscriptions/aiprod-jobs--beta--route_job"
    data = base64.b64encode(json.dumps({**JOB, "subscription": spoof}).encode()).decode()
    real = "projects/p/subscriptions/aiprod-jobs--route_job"
    body = {
        "message": {"data": data, "messageId": "1", "attributes": {"subscription": spoof}},
        "subscription": real,
    }
    assert client.post("/", json=body).status_code == 200
    probe = next(m for m in list(sys.modules.values()) if hasattr(m, "seen_r3"))
    assert probe.seen_r3 == [real]


# --- outcomes ------------------------------------------------------------------------------


def test_a_reported_attempt_settles_its_stored_outcome_whatever_cost_is_delivered(app):
    doc = _admitted(app)
    data = _task_of(app)
    app.renderer(json.loads(data)["backend"]).handle(data, {})
    doc = app.store.get("jobs", "f1")
    stored = doc["attempts"][0]
    assert stored["state"] == "REPORTED"
    real = stored["outcome"]
    forged = {**real, "cost_micros": 0, "output_uri": "gs://attacker/x.mp4"}
    app.outcomes.handle(json.dumps(forged).encode(), {})
    after = app.store.get("jobs", "f1")
    assert after["status"] == "SUCCEEDED"
    assert after["output_uri"] == real["output_uri"] != forged["output_uri"]
    assert after["cost_micros"] == real["cost_micros"] > 0


@pytest.mark.parametrize("error_class", [ErrorClass.TERMINAL, ErrorClass.FALLBACK, None])
def test_a_forged_failure_cannot_end_a_running_attempt(app, error_class):
    doc = _running(app)
    forged = _outcome(doc, error_class=error_class, provider_task_id="task-1")
    app.outcomes.handle(forged, {})
    assert app.store.get("jobs", "f1")["status"] == "RUNNING"
    assert [m.attributes["reason"] for m in app.bus.published["dead-letter"]] == ["mismatch"]


def test_a_forged_unknown_failure_on_a_running_attempt_keeps_the_hold(app):
    doc = _running(app)
    before = app.ledger.snapshot(app.store, "global", _day(app))
    app.outcomes.handle(_outcome(doc, error_class=ErrorClass.UNKNOWN, cost_micros=0), {})
    after = app.store.get("jobs", "f1")
    assert after["status"] == "RUNNING" and after["attempts"][0]["state"] == "RUNNING"
    assert after["attempts"][0]["provider_task_id"] == "task-1"
    assert app.ledger.snapshot(app.store, "global", _day(app)) == before


# --- image URIs ----------------------------------------------------------------------------


def _rejection(uri: str) -> str | None:
    try:
        JobRequest.model_validate_json(
            json.dumps({"job_id": "i-1", "prompt": "p", "image_uri": uri}),
            context={IMAGE_BUCKETS: frozenset({BUCKET})},
        )
    except ValidationError as exc:
        return describe(exc)
    return None


def test_a_site_local_ipv6_literal_is_refused():
    assert _rejection("https://[fec0::1]/a.png") is not None


def test_a_bracketed_host_that_is_not_ipv6_is_refused():
    assert _rejection("https://[v1.zebra]/a.png") is not None


def test_a_bad_bracketed_host_is_refused_without_echoing_it():
    said = _rejection("https://[::ffff:127.1]/a.png")
    assert said is not None and "127.1" not in said


@pytest.mark.parametrize(
    "uri",
    [
        "https://localhost./a.png",
        "https://LOCALHOST/a.png",
        "https://metadata.google.internal./a.png",
        "https://0x7f.1/a.png",
        "https://[::ffff:169.254.169.254]/a.png",
        "https://[::ffff:a9fe:a9fe]/a.png",
        "https://[fe80::1%25eth0]/a.png",
        "https://[64:ff9b::a9fe:a9fe]/a.png",
        "https://[2002:a9fe:a9fe::]/a.png",
        "https://127.1./a.png",
        "https://0251.0376.0251.0376/a.png",
        "https://l\u043ecalhost/a.png",  # Cyrillic o
        "https://metadata.google.internal../a.png",
        "https://example.com:0/a.png",
        "https://127.0.0.1#@example.com/a.png",
    ],
)
def test_inside_hosts_in_any_spelling_are_refused(uri):
    said = _rejection(uri)
    assert said is not None and said.startswith("image_uri")
