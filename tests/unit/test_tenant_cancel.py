"""Tenant control topics (issue 13, README "Cancelling a job"): a tenant's cancel comes on its
own control topic and reaches only that tenant's jobs; any other job is refused exactly as a
missing one (``not_found``, naming the asking tenant), so nothing is changed or leaked. The
shared job-control topic (operators, ``control_publishers``) cancels any job."""

from __future__ import annotations

import json

import pytest

from aiprod import topology
from aiprod.domain.catalog import default_catalog
from aiprod.domain.tenants import SHARED, Channel, controls
from aiprod.services.capacity_admin import set_capacity
from aiprod.services.tenancy import channel_of
from aiprod_tools.embedded import serve_tenant
from support.scenarios import runway_job

PREFIX = "aiprod-"
SUB = "projects/p/subscriptions/"


@pytest.fixture
def p(pipeline):
    """acme's and beta's jobs rendering at runway (a long render), and an untenanted one."""
    built = pipeline(workers=1, simulation={"runway": {"latency_s": 10_000}}, render_deadline_s=5)
    set_capacity(built.store, default_catalog(), "runway", 3)
    built.run(
        {**runway_job(1), "job_id": "a-1", "tenant": "acme"},
        {**runway_job(2), "job_id": "b-1", "tenant": "beta"},
        {**runway_job(3), "job_id": "s-1"},
    )
    for job_id in ("a-1", "b-1", "s-1"):
        assert built.job(job_id)["status"] == "RUNNING"
    return built


def _cancel(p, topic: str, job_id: str) -> None:
    body = {"action": "cancel", "job_id": job_id, "requested_by": "someone"}
    p.bus.publish(topic, json.dumps(body).encode(), {})
    p.drain()


@pytest.mark.parametrize("job_id", ["b-1", "s-1"], ids=["another tenant's", "untenanted"])
def test_a_tenants_control_topic_cannot_cancel_a_job_not_its_own(p, job_id):
    before = p.job(job_id)
    _cancel(p, topology.tenant_control_topic("acme"), job_id)
    # refused exactly as a job that does not exist, naming acme (who asked), not the job's
    assert p.job(job_id) == before
    assert p.app.backend("runway").cancelled == []
    [refused] = p.events("job.cancel_refused", job_id)
    assert (refused["reason"], refused["status"], refused["tenant"]) == (
        "not_found",
        "UNKNOWN",
        "acme",
    )
    assert refused["cost_micros"] == 0 and refused["metadata"] == {}
    assert p.events("job.cancelled", job_id) == []


def test_a_refusal_of_another_tenants_job_is_the_refusal_of_no_job(p):
    _cancel(p, topology.tenant_control_topic("acme"), "b-1")
    _cancel(p, topology.tenant_control_topic("acme"), "no-such-job")
    [other] = p.events("job.cancel_refused", "b-1")
    [missing] = p.events("job.cancel_refused", "no-such-job")
    strip = lambda e: {k: v for k, v in e.items() if k not in ("job_id", "event_id", "at")}  # noqa: E731
    assert strip(other) == strip(missing)


def test_a_tenant_cancels_its_own_job(p):
    task = p.job("a-1")["attempts"][0]["provider_task_id"]
    _cancel(p, topology.tenant_control_topic("acme"), "a-1")
    assert p.job("a-1")["status"] == "CANCELLED"
    assert p.app.backend("runway").cancelled == [task]
    assert p.job("b-1")["status"] == "RUNNING"


@pytest.mark.parametrize("job_id", ["a-1", "b-1", "s-1"])
def test_the_shared_control_topic_cancels_any_job(p, job_id):
    _cancel(p, topology.JOB_CONTROL, job_id)
    assert p.job(job_id)["status"] == "CANCELLED"


def test_a_control_topic_of_a_tenant_not_configured_cancels_nothing(p):
    serve_tenant(p.app, "ghost")  # a stale subscription: ghost is not in the registry
    before = p.job("b-1")
    _cancel(p, topology.tenant_control_topic("ghost"), "b-1")
    assert p.job("b-1") == before
    [refused] = p.events("job.cancel_refused", "b-1")
    assert (refused["reason"], refused["tenant"]) == ("not_found", None)


def test_control_topics_and_subscriptions_read_back_one_way():
    assert topology.tenant_control_topic("acme") == "job-control--acme"
    assert topology.tenant_control_subscription("acme") == "job-control--acme--control_job"
    assert topology.tenant_of_topic("job-control--acme", topology.JOB_CONTROL) == "acme"
    assert topology.tenant_of_topic("job-control--acme") is None  # not a jobs topic
    assert topology.tenant_of_topic("jobs--acme", topology.JOB_CONTROL) is None
    assert topology.tenant_of_topic("job-control--lane2", topology.JOB_CONTROL) is None
    assert topology.is_topic("job-control--acme")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("aiprod-job-control--control_job", SHARED),
        ("aiprod-job-control--lane2--control_job", SHARED),
        ("aiprod-job-control--acme--control_job", "acme"),
        ("aiprod-jobs--acme--route_job", None),  # a jobs subscription is no control channel
        ("aiprod-jobs--acme--control_job", None),
        ("other-job-control--acme--control_job", None),
    ],
)
def test_control_job_reads_the_tenant_from_its_subscription_only(name, expected):
    channel = channel_of(SUB + name, PREFIX, topology.JOB_CONTROL)
    if expected is SHARED:
        assert channel == SHARED
    elif expected is None:
        assert channel == Channel(known=False, name=name)
    else:
        assert channel == Channel(expected, name=name)
    # and the router never takes a control subscription for a jobs channel
    assert not channel_of(SUB + name, PREFIX).tenant or "route_job" in name


@pytest.mark.parametrize(
    ("channel", "job_tenant", "allowed"),
    [
        (SHARED, "acme", True),
        (SHARED, None, True),
        (Channel("acme"), "acme", True),
        (Channel("acme"), "beta", False),
        (Channel("acme"), None, False),
        (Channel(known=False, name="x"), None, False),
        (Channel(known=False, name="x"), "acme", False),
    ],
)
def test_who_may_control_which_job(channel, job_tenant, allowed):
    assert controls(channel, job_tenant) is allowed
