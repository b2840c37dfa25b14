"""infra/tenants.tf against the topology and the repositories: each configured tenant's topic,
its push subscription to route_job (named so the router reads the tenant back), publish
rights for its principals only, the shared topic closable to all but operators, and the
registry documents where the Python code reads them."""

from __future__ import annotations

import re

import pytest

from aiprod import topology
from aiprod.domain.tenants import name_problem
from aiprod.repositories import ledger as ledger_records
from aiprod.repositories import tenants
from aiprod.services.tenancy import channel_of
from support import terraform
from support.terraform import only_expression, render

PREFIXES = ("aiprod-", "aiprod-stg-")


@pytest.fixture(scope="module")
def tf() -> terraform.Config:
    return terraform.load()


def test_the_tenants_variable_is_a_map_of_budget_and_publishers(tf):
    variable = tf.variables["tenants"]
    assert variable["default"] == {}
    assert variable["type"] == (
        "${map(object({daily_budget_usd = number, publishers = optional(list(string), [])}))}"
    )
    assert tf.variables["shared_jobs_topic_open"]["default"] is True
    assert tf.variables["shared_jobs_publishers"]["default"] == []


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("tenant", ["acme", "a-b_c", "x1"])
def test_each_tenant_gets_its_topic_and_a_subscription_the_router_reads_back(tf, prefix, tenant):
    topic = tf.resource("google_pubsub_topic", "tenant_jobs")
    sub = tf.resource("google_pubsub_subscription", "tenant_jobs")
    assert only_expression(topic["for_each"]) == only_expression(sub["for_each"]) == "var.tenants"
    topic_name = render(topic["name"], {"prefix": prefix}, each_key=tenant)
    assert topic_name == topology.qualified(prefix, topology.tenant_topic(tenant))
    sub_name = render(sub["name"], {"prefix": prefix}, each_key=tenant)
    assert sub_name == topology.qualified(prefix, topology.tenant_subscription(tenant))
    # the router, given the push's subscription path, charges exactly this tenant
    channel = channel_of(f"projects/p/subscriptions/{sub_name}", prefix)
    assert (channel.tenant, channel.known) == (tenant, True)
    assert sub["topic"] == "${google_pubsub_topic.tenant_jobs[each.key].id}"


def test_tenant_pushes_reach_route_job_as_the_shared_topic_does(tf):
    sub = tf.resource("google_pubsub_subscription", "tenant_jobs")
    (push,) = sub["push_config"]
    assert push["push_endpoint"] == '${local.function_urls["route_job"]}'
    (oidc,) = push["oidc_token"]
    assert oidc["service_account_email"] == "${google_service_account.push_invoker.email}"
    assert oidc["audience"] == push["push_endpoint"]
    (dead,) = sub["dead_letter_policy"]
    assert dead["dead_letter_topic"] == "${google_pubsub_topic.topic[local.dead_letter_topic].id}"
    assert "route_job.max_delivery_attempts" in dead["max_delivery_attempts"]
    (retry,) = sub["retry_policy"]
    assert render(retry["minimum_backoff"], {}, locals_=tf.locals) == f"{topology.MIN_BACKOFF_S}s"
    agent = tf.resource("google_pubsub_subscription_iam_member", "tenant_dead_letter_source")
    assert only_expression(agent["for_each"]) == "google_pubsub_subscription.tenant_jobs"


def test_only_a_tenants_principals_may_publish_on_its_topic(tf):
    grant = tf.resource("google_pubsub_topic_iam_member", "tenant_publisher")
    assert only_expression(grant["for_each"]) == "local.tenant_publishers"
    assert grant["topic"] == "${google_pubsub_topic.tenant_jobs[each.value.tenant].name}"
    assert (grant["role"], grant["member"]) == ("roles/pubsub.publisher", "${each.value.member}")
    # every grant is keyed tenant/member from that tenant's own publishers list
    assert "for member in t.publishers" in tf.locals["tenant_publishers"]
    assert "tenant = name" in tf.locals["tenant_publishers"]
    # no other binding names a tenant topic
    others = [
        name
        for (kind, name), body in tf.resources.items()
        if kind.startswith("google_pubsub_topic_iam")
        and "tenant_jobs" in str(body.get("topic"))
        and name != "tenant_publisher"
    ]
    assert others == []


def test_the_shared_topic_can_be_closed_to_all_but_operators(tf):
    grant = tf.resource("google_pubsub_topic_iam_member", "shared_jobs_publisher")
    assert only_expression(grant["for_each"]) == "local.shared_jobs_publishers"
    assert grant["topic"] == '${google_pubsub_topic.topic["jobs"].name}'
    closed = tf.locals["shared_jobs_publishers"]
    assert re.search(
        r"var\.shared_jobs_topic_open \? .*var\.shared_jobs_publishers.*: toset\(\[\]\)", closed
    )


def test_the_registry_documents_are_where_the_code_reads_them(tf):
    entry = tf.resource("google_firestore_document", "tenant")
    budget = tf.resource("google_firestore_document", "tenant_budget")
    assert entry["collection"] == tenants.COLLECTION
    assert budget["collection"] == ledger_records.LIMITS
    assert budget["document_id"] == "tenant:${each.key}"
    assert "limit_micros" in budget["fields"] and "integerValue" in budget["fields"]
    # written once: later budgets are `aiprod tenant set-budget`, which an apply keeps
    assert budget["lifecycle"] == [{"ignore_changes": ["fields"]}]


def test_the_terraform_name_rule_is_the_registrys(tf):
    condition = tf.variables["tenants"]["validation"][0]["condition"]
    pattern = re.search(r'regex\("([^"]+)"', condition).group(1)
    for name in ["acme", "a-b", "lane1", "a--b", "x_1", "-a", "Lane"]:
        terraform_ok = bool(re.fullmatch(pattern, name)) and not name.startswith("lane")
        terraform_ok = terraform_ok and "--" not in name
        assert terraform_ok == (name_problem(name) is None), name
    assert 'startswith(name, "lane")' in condition and 'strcontains(name, "--")' in condition


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("tenant", ["acme", "a-b_c", "x1"])
def test_each_tenant_gets_a_control_topic_control_job_reads_back(tf, prefix, tenant):
    topic = tf.resource("google_pubsub_topic", "tenant_control")
    sub = tf.resource("google_pubsub_subscription", "tenant_control")
    assert only_expression(topic["for_each"]) == only_expression(sub["for_each"]) == "var.tenants"
    topic_name = render(topic["name"], {"prefix": prefix}, each_key=tenant)
    assert topic_name == topology.qualified(prefix, topology.tenant_control_topic(tenant))
    sub_name = render(sub["name"], {"prefix": prefix}, each_key=tenant)
    assert sub_name == topology.qualified(prefix, topology.tenant_control_subscription(tenant))
    # control_job, given the push's subscription path, lets it act for exactly this tenant
    channel = channel_of(f"projects/p/subscriptions/{sub_name}", prefix, topology.JOB_CONTROL)
    assert (channel.tenant, channel.known) == (tenant, True)
    assert sub["topic"] == "${google_pubsub_topic.tenant_control[each.key].id}"


def test_tenant_control_pushes_reach_control_job_as_the_shared_topic_does(tf):
    sub = tf.resource("google_pubsub_subscription", "tenant_control")
    (push,) = sub["push_config"]
    assert push["push_endpoint"] == '${local.function_urls["control_job"]}'
    (oidc,) = push["oidc_token"]
    assert oidc["service_account_email"] == "${google_service_account.push_invoker.email}"
    assert oidc["audience"] == push["push_endpoint"]
    assert "control_job.timeout_s" in sub["ack_deadline_seconds"]
    (dead,) = sub["dead_letter_policy"]
    assert dead["dead_letter_topic"] == "${google_pubsub_topic.topic[local.dead_letter_topic].id}"
    assert "control_job.max_delivery_attempts" in dead["max_delivery_attempts"]
    agent = tf.resource(
        "google_pubsub_subscription_iam_member", "tenant_control_dead_letter_source"
    )
    assert only_expression(agent["for_each"]) == "google_pubsub_subscription.tenant_control"


def test_only_a_tenants_principals_may_publish_on_its_control_topic(tf):
    grant = tf.resource("google_pubsub_topic_iam_member", "tenant_control_publisher")
    assert only_expression(grant["for_each"]) == "local.tenant_publishers"
    assert grant["topic"] == "${google_pubsub_topic.tenant_control[each.value.tenant].name}"
    assert (grant["role"], grant["member"]) == ("roles/pubsub.publisher", "${each.value.member}")
    others = [
        name
        for (kind, name), body in tf.resources.items()
        if kind.startswith("google_pubsub_topic_iam")
        and "tenant_control" in str(body.get("topic"))
        and name != "tenant_control_publisher"
    ]
    assert others == []
    # the shared job-control topic stays the operators' and control_publishers' (any job)
    shared = tf.resource("google_pubsub_topic_iam_member", "control_publisher")
    assert shared["topic"] == "${google_pubsub_topic.topic[local.job_control_topic].name}"
    assert only_expression(shared["for_each"]) == "toset(var.control_publishers)"
