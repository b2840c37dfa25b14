"""Tenant control topics end to end (issue 13): through functions-framework on the emulators,
control_job reads the tenant from the push subscription of ``job-control--<tenant>``. A cancel
on acme's control topic for beta's rendering job is refused as ``not_found`` (naming acme)
and leaves it rendering, the provider never asked; beta's own control topic cancels it."""

from __future__ import annotations

import json

import pytest

from aiprod import topology
from aiprod.repositories import jobs as job_records
from support import EventTap, statuses, wait_for
from support.cli import aiprod
from support.tenants import configure

pytestmark = pytest.mark.emulator

LONG = 10**6  # looks before a fake's task is done: it renders until cancelled


def _running_task(stack, job_id: str) -> str:
    def stored():
        doc = stack.store.get(job_records.COLLECTION, job_id) or {}
        attempt = doc.get("attempts", [{}])[-1]
        return attempt.get("provider_task_id") if attempt.get("state") == "RUNNING" else None

    return wait_for(stored, timeout=60, interval=0.2, describe=lambda: statuses(stack.store))


def _event(tap: EventTap, job_id: str, kind: str) -> dict:
    def found():
        return [e.payload for e in tap.poll() if e.job_id == job_id and e.type == kind]

    [event] = wait_for(found, timeout=30, interval=0.2, describe=lambda: tap.types_for(job_id))
    return event


def _cancel(stack, tenant: str, job_id: str) -> None:
    body = {"action": "cancel", "job_id": job_id, "requested_by": f"{tenant}-app"}
    stack.bus.publish(topology.tenant_control_topic(tenant), json.dumps(body).encode())


def test_a_tenant_cancels_only_its_own_jobs_on_its_control_topic(make_stack, fakes):
    # GIVEN acme and beta configured, beta's job rendering at runway until cancelled
    fakes.runway.polls_before_done = LONG
    budgets = json.dumps({"acme": 5, "beta": 5})
    env = {**fakes.env(), "AIPROD_POLL_INTERVAL_S": "0.05", "AIPROD_TENANT_BUDGETS_USD": budgets}
    stack = make_stack(env)
    configure(stack, "acme", "beta")
    tap = EventTap(stack.bus)
    assert aiprod(stack, "capacity", "set", "runway", "2").returncode == 0
    job = {"job_id": "b-1", "prompt": "a lighthouse in fog", "backends": ["runway"]}
    stack.bus.publish(topology.tenant_topic("beta"), json.dumps(job).encode())
    task_id = _running_task(stack, "b-1")

    # WHEN acme cancels it on acme's control topic
    _cancel(stack, "acme", "b-1")

    # THEN it is refused as a job that does not exist, naming acme; beta's job renders on
    refused = _event(tap, "b-1", "job.cancel_refused")
    assert (refused["reason"], refused["status"], refused["tenant"]) == (
        "not_found",
        "UNKNOWN",
        "acme",
    )
    doc = stack.store.get(job_records.COLLECTION, "b-1")
    assert doc["status"] == "RUNNING" and doc.get("cancel") is None
    assert fakes.runway.cancelled == []

    # WHEN beta cancels it on its own control topic, THEN it is stopped and ends CANCELLED
    _cancel(stack, "beta", "b-1")
    _event(tap, "b-1", "job.cancelled")
    assert stack.store.get(job_records.COLLECTION, "b-1")["status"] == "CANCELLED"
    assert fakes.runway.cancelled == [task_id]
