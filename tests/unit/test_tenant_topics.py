"""Tenants bound to the topic they publish on (issue 13, "Tenants"): the router takes the
tenant from the push subscription, never from the message; the shared topic cannot name a
tenant; an unknown tenant opens no ledger scope. Includes the hostile-input rows "a tenant
publishing on another tenant's topic" (tests/unit/test_hostile_inputs.py holds the rest).
"""

from __future__ import annotations

import base64
import json
import sys

import pytest
from cloudevents.http import CloudEvent

from aiprod import topology
from aiprod.domain.tenants import SHARED, Channel, TenantRefused, name_problem, tenant_of
from aiprod.entrypoints import subscription
from aiprod.repositories import tenants
from aiprod.repositories.ledger import SHARDS
from aiprod.services.tenancy import channel_of
from aiprod_tools.client import topic_for

PREFIX = "aiprod-"
SUB = "projects/p/subscriptions/"


def sub_path(name: str) -> str:
    return f"projects/aiprod-local/subscriptions/{PREFIX}{name}"


@pytest.mark.parametrize(
    ("subscription", "expected"),
    [
        (None, SHARED),
        ("", SHARED),
        (f"{SUB}aiprod-jobs--route_job", SHARED),
        (f"{SUB}aiprod-jobs--lane3--route_job", SHARED),  # a push lane of the shared topic
        (
            f"{SUB}aiprod-jobs--acme--route_job",
            Channel("acme", name="aiprod-jobs--acme--route_job"),
        ),
        (
            f"{SUB}aiprod-jobs--a-b_c--route_job",
            Channel("a-b_c", name="aiprod-jobs--a-b_c--route_job"),
        ),
        (
            f"{SUB}other-jobs--acme--route_job",
            Channel(known=False, name="other-jobs--acme--route_job"),
        ),
        (
            f"{SUB}aiprod-render-veo--route_job",
            Channel(known=False, name="aiprod-render-veo--route_job"),
        ),
        (
            f"{SUB}aiprod-jobs--acme--handle_outcome",
            Channel(known=False, name="aiprod-jobs--acme--handle_outcome"),
        ),
        (
            f"{SUB}aiprod-jobs--ACME--route_job",
            Channel(known=False, name="aiprod-jobs--ACME--route_job"),
        ),
    ],
)
def test_the_channel_is_read_from_the_subscription_name(subscription, expected):
    assert channel_of(subscription, PREFIX) == expected


@pytest.mark.parametrize(
    ("channel", "named", "tenant", "refusal"),
    [
        (SHARED, None, None, None),
        (SHARED, "acme", None, "shared topic cannot name a tenant"),
        (Channel("acme"), None, "acme", None),  # left out: the topic's
        (Channel("acme"), "acme", "acme", None),
        (Channel("acme"), "beta", None, "'beta' is not the tenant of this topic"),
        (Channel(known=False, name="x--route_job"), None, None, "not a jobs topic"),
    ],
)
def test_the_topic_decides_the_tenant(channel, named, tenant, refusal):
    if refusal is None:
        assert tenant_of(channel, named) == tenant
    else:
        with pytest.raises(TenantRefused, match=refusal):
            tenant_of(channel, named)


@pytest.mark.parametrize("name", ["lane1", "lanes", "a--b", "-a", "A", "", "x" * 64, "a b"])
def test_names_that_would_collide_with_topic_names_are_refused(name):
    assert name_problem(name) is not None


def test_tenant_topics_and_subscriptions_read_back_one_way():
    assert topology.tenant_topic("acme") == "jobs--acme"
    assert topology.tenant_subscription("acme") == "jobs--acme--route_job"
    assert topology.tenant_of_topic("jobs--acme") == "acme"
    assert topology.tenant_of_topic("jobs--lane2") is None  # a lane, not a tenant
    assert topology.jobs_topic(None) == topology.JOBS
    assert topic_for(b'{"tenant": "acme"}') == "jobs--acme"
    assert topic_for(b'{"tenant": "NOT OK"}') == topology.JOBS
    assert topic_for(b"\xff") == topology.JOBS


def _ledger_scopes(p) -> set[str]:
    return {doc["scope"] for doc in p.store.list(SHARDS)}


def _tenanted(p, *names: str) -> None:
    for name in names:
        p.configure_tenant(name)


def _publish(p, topic: str, body: dict | bytes) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    p.bus.publish(topic, data)
    p.drain()


JOB = {"prompt": "a paper boat", "duration_s": 5}

# The hostile rows "a tenant publishing on another tenant's topic": (topic, body, the
# rejection's words, the tenant the rejected job is stored under).
HOSTILE = [
    ("jobs--acme", {**JOB, "job_id": "h1", "tenant": "beta"}, "is not the tenant", "acme"),
    ("jobs--acme", {**JOB, "job_id": "h2", "tenant": "Beta!"}, "tenant", "acme"),
    ("jobs--acme", {"job_id": "h3", "tenant": "beta", "prompt": ""}, "prompt", "acme"),
    ("jobs", {**JOB, "job_id": "h4", "tenant": "beta"}, "shared topic cannot name", None),
    ("jobs", {**JOB, "job_id": "h5", "tenant": "acme"}, "shared topic cannot name", None),
    ("jobs--ghost", {**JOB, "job_id": "h6"}, "'ghost' is not a configured tenant", None),
    ("jobs--ghost", {**JOB, "job_id": "h7", "tenant": "ghost"}, "not a configured", None),
]


@pytest.mark.parametrize(("topic", "body", "words", "stored_tenant"), HOSTILE)
def test_a_tenant_cannot_charge_another_or_escape_its_cap(
    pipeline, topic, body, words, stored_tenant
):
    # GIVEN acme and beta configured, each publishing on its own topic
    p = pipeline(tenant_limits={"acme": 5_000_000, "beta": 5_000_000})
    _tenanted(p, "acme", "beta")
    from aiprod_tools.embedded import serve_tenant

    serve_tenant(p.app, "ghost")  # served (a stale subscription) but not in the registry
    # WHEN the message arrives through ``topic``
    _publish(p, topic, body)
    # THEN it is rejected invalid, naming why, and nothing is charged to any tenant
    job = p.job(body["job_id"])
    assert (job["status"], job["reason"]) == ("REJECTED", "invalid")
    assert words in job["message"]
    assert job.get("tenant") == stored_tenant
    assert _ledger_scopes(p) <= {"global"}
    [event] = p.events("job.rejected", body["job_id"])
    assert event.get("tenant") == stored_tenant


def test_a_job_on_a_tenant_topic_is_charged_to_that_tenant(pipeline):
    p = pipeline(tenant_limits={"acme": 5_000_000})
    _tenanted(p, "acme")
    _publish(p, "jobs--acme", {**JOB, "job_id": "ok-1"})  # no tenant field: the topic's
    job = p.job("ok-1")
    assert job["status"] == "SUCCEEDED" and job["tenant"] == "acme"
    assert _ledger_scopes(p) == {"global", "tenant:acme"}
    assert p.ledger("tenant:acme")["spent_micros"] == job["cost_micros"] > 0


def test_an_untenanted_job_on_the_shared_topic_charges_only_the_global_budget(pipeline):
    p = pipeline()
    _publish(p, "jobs", {**JOB, "job_id": "ok-2"})
    assert p.job("ok-2")["status"] == "SUCCEEDED"
    assert _ledger_scopes(p) == {"global"}


def test_a_push_from_an_unknown_subscription_is_refused(pipeline):
    p = pipeline()
    p.app.router.handle(
        json.dumps({**JOB, "job_id": "odd"}).encode(), {}, f"{SUB}aiprod-job-events--x"
    )
    p.drain()
    assert p.job("odd")["reason"] == "invalid"
    assert _ledger_scopes(p) == set()


def test_a_registry_document_that_cannot_be_read_is_no_tenant(pipeline):
    p = pipeline()
    p.store.set(tenants.COLLECTION, "acme", {"name": "acme", "publishers": "not a list"})
    assert tenants.load(p.store, "acme") is None
    p.store.set(tenants.COLLECTION, "lane1", {"name": "lane1", "publishers": []})
    assert tenants.list_all(p.store) == []


def _push_body(sub: str | None) -> dict:
    """A raw Pub/Sub push body, as Pub/Sub (and its emulator) sends it."""
    data = base64.b64encode(json.dumps({**JOB, "job_id": "ff-1"}).encode()).decode()
    body = {"message": {"data": data, "messageId": "1", "attributes": {}}}
    return body if sub is None else {**body, "subscription": sub}


def test_the_subscription_survives_functions_framework(tmp_path):
    """functions-framework's conversion of a raw push drops ``subscription`` from the
    CloudEvent; the entry point reads it back from the request being served."""
    from functions_framework import create_app

    source = tmp_path / "main.py"
    source.write_text(
        "import functions_framework\n"
        "from aiprod.entrypoints import subscription\n"
        "seen = []\n"
        "@functions_framework.cloud_event\n"
        "def probe(cloud_event):\n"
        "    seen.append((cloud_event.data.get('subscription'), subscription(cloud_event)))\n"
    )
    app = create_app("probe", str(source), "cloudevent")
    client = app.test_client()
    path = sub_path("jobs--acme--route_job")
    assert client.post("/", json=_push_body(path)).status_code == 200
    probe = next(m for m in list(sys.modules.values()) if isinstance(getattr(m, "seen", 0), list))
    assert probe.seen == [(None, path)]


def test_a_cloud_event_that_carries_its_subscription_is_read_first():
    """Eventarc's Pub/Sub CloudEvents keep ``subscription`` in their data."""
    event = CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub"},
        _push_body(sub_path("jobs--acme--route_job")),
    )
    assert subscription(event) == sub_path("jobs--acme--route_job")
    assert subscription(CloudEvent(event.get_attributes(), _push_body(None))) is None
