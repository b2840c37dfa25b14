"""Tenants through the real functions on the emulators (issue 13): the tenant is the topic's.

A job published on tenant acme's topic that names tenant beta is rejected ``invalid`` and
charges nothing to beta; the shared topic cannot name a tenant; a tenant topic whose tenant
is not configured opens no ledger scope; a job on acme's own topic charges acme's scope.
The router reads the tenant from the push subscription the emulator names in each push,
through functions-framework, as in production.
"""

from __future__ import annotations

import json

import pytest

from aiprod.repositories.ledger import runtime_limit
from support import jobs_terminal, statuses, wait_for
from support.cli import aiprod
from support.ledger import totals_by_scope
from support.tenants import configure

pytestmark = pytest.mark.emulator

FAST = {"AIPROD_POLL_INTERVAL_S": "0.05"}


def job(job_id: str, **fields) -> dict:
    return {"job_id": job_id, "prompt": f"tenant scenario {job_id}", **fields}


def test_a_tenant_topic_charges_only_its_tenant_and_the_shared_topic_names_none(make_stack):
    # GIVEN tenants acme and beta configured, each with its own topic; "ghost" has a topic
    # and subscription (left over) but is not in the registry
    budgets = json.dumps({"acme": 5, "beta": 5})
    stack = make_stack({**FAST, "AIPROD_TENANT_BUDGETS_USD": budgets})
    configure(stack, "acme", "beta")
    stack.provision_tenants("ghost")
    sent = {
        "forged": ("jobs--acme", job("forged", tenant="beta")),
        "shared-named": ("jobs", job("shared-named", tenant="beta")),
        "ghost": ("jobs--ghost", job("ghost")),
        "own": ("jobs--acme", job("own")),  # no tenant field: the topic's
        "untenanted": ("jobs", job("untenanted")),
    }

    # WHEN each is published on its topic
    for topic, request in sent.values():
        stack.bus.publish(topic, json.dumps(request).encode())
    docs = wait_for(
        lambda: jobs_terminal(stack.store, list(sent)),
        timeout=90,
        interval=0.2,
        describe=lambda: f"jobs: {statuses(stack.store)}",
    )

    # THEN the forged, the shared-named and the ghost's jobs are rejected invalid, saying why
    refused = {j: (d["status"], d["reason"], d.get("tenant")) for j, d in docs.items()}
    assert refused["forged"] == ("REJECTED", "invalid", "acme")
    assert "is not the tenant of this topic" in docs["forged"]["message"]
    assert refused["shared-named"] == ("REJECTED", "invalid", None)
    assert "shared topic cannot name a tenant" in docs["shared-named"]["message"]
    assert refused["ghost"] == ("REJECTED", "invalid", None)
    assert "not a configured tenant" in docs["ghost"]["message"]
    # AND acme's own job and the untenanted one ran
    assert (docs["own"]["status"], docs["own"]["tenant"]) == ("SUCCEEDED", "acme")
    assert docs["untenanted"]["status"] == "SUCCEEDED"
    assert docs["untenanted"].get("tenant") is None
    # AND only acme's scope was charged (nothing to beta, no scope for ghost)
    totals = totals_by_scope(stack.store)
    assert set(totals) == {"global", "tenant:acme"}, totals
    assert totals["tenant:acme"]["spent_micros"] == docs["own"]["cost_micros"] > 0
    charged = docs["own"]["cost_micros"] + docs["untenanted"]["cost_micros"]
    assert totals["global"]["spent_micros"] == charged


def test_tenant_add_on_the_emulators_makes_a_topic_that_charges_the_tenant(make_stack):
    # GIVEN a running stack, and an operator adding a tenant with the CLI (as `aiprod dev`)
    stack = make_stack(FAST)
    done = aiprod(stack, "tenant", "add", "studio", "--budget", "3", "--publisher", "user:a@b.c")
    assert done.returncode == 0, done.stderr
    listed = json.loads(aiprod(stack, "tenant", "list", "--json").stdout)["tenants"]
    assert [(t["name"], t["daily_budget_micros"]) for t in listed] == [("studio", 3_000_000)]

    # WHEN a client submits a job naming the tenant (published on the tenant's topic)
    done = aiprod(stack, "submit", "--job-id", "st-1", "--prompt", "a kite", "--tenant", "studio")
    assert done.returncode == 0 and "aiprod-jobs--studio" in done.stdout, done.stdout
    docs = wait_for(lambda: jobs_terminal(stack.store, ["st-1"]), timeout=60, interval=0.2)

    # THEN it ran and was charged to the tenant's scope, under the limit the CLI set
    assert (docs["st-1"]["status"], docs["st-1"]["tenant"]) == ("SUCCEEDED", "studio")
    totals = totals_by_scope(stack.store)
    assert totals["tenant:studio"]["spent_micros"] == docs["st-1"]["cost_micros"]
    assert runtime_limit(stack.store, "tenant:studio") == 3_000_000
