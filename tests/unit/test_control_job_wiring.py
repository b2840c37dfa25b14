"""control_job is wired like every Pub/Sub function: a topic of the topology, an entry point
that hands the decoded message to ``App.job_control``, and a handler the embedded bus
delivers ``job-control`` messages to. What a control message does is JobControl's own
business (services/job_control.py), so it is recorded here, not run."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

import pytest
from cloudevents.http import CloudEvent

from aiprod import topology
from aiprod.config import Settings
from aiprod.services.job_control import JobControl
from aiprod_tools.embedded import embedded_app

ROOT = Path(__file__).resolve().parents[2]
CANCEL = b'{"job_id": "j1"}'
ATTRIBUTES = {"type": "job.cancel", "job_id": "j1"}
TENANT_SUB = "projects/p/subscriptions/aiprod-job-control--acme--control_job"


@pytest.fixture
def received(monkeypatch) -> list[tuple[bytes, dict[str, str], str | None]]:
    """Every (data, attributes, subscription) JobControl is handed, in order."""
    calls: list[tuple[bytes, dict[str, str], str | None]] = []

    def handle(self, data, attrs, subscription=None):
        calls.append((data, attrs, subscription))

    monkeypatch.setattr(JobControl, "handle", handle)
    return calls


def test_control_job_is_fed_by_the_job_control_topic():
    spec = topology.function("control_job")
    assert (spec.topic, spec.trigger, spec.timeout_s) == (topology.JOB_CONTROL, "pubsub", 300)
    assert spec.max_delivery_attempts == topology.MAX_DELIVERY_ATTEMPTS
    # it cancels provider tasks, so it ships every provider SDK, as the reconciler does
    assert spec.extras == topology.BACKENDS
    assert topology.JOB_CONTROL in topology.all_topics()
    assert topology.function_for_topic(topology.JOB_CONTROL) == spec
    assert spec.lane_subscription(2) == "job-control--lane2--control_job"
    assert topology.base_topic(topology.lane_topic(topology.JOB_CONTROL, 2)) == "job-control"


def test_the_entry_point_hands_the_decoded_message_to_job_control(monkeypatch, received, clock):
    # GIVEN the deployed function's module, on an embedded app
    module_spec = importlib.util.spec_from_file_location(
        "control_job_main", ROOT / "functions" / "control_job" / "main.py"
    )
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    app = embedded_app(Settings(), clock=clock, sleep=clock.sleep, workers=1)
    monkeypatch.setattr(module, "cloud_app", lambda: app)

    # WHEN Pub/Sub pushes a control message
    message = {"data": base64.b64encode(CANCEL).decode(), "attributes": ATTRIBUTES}
    body = {"message": message, "subscription": TENANT_SUB}
    module.control_job(CloudEvent({"type": "t", "source": "//pubsub.googleapis.com/"}, body))

    # THEN JobControl got its bytes, attributes and the subscription (the tenant's channel)
    assert received == [(CANCEL, ATTRIBUTES, TENANT_SUB)]
    app.bus.close()


def test_the_embedded_bus_delivers_job_control_messages(received, clock):
    app = embedded_app(Settings(), clock=clock, sleep=clock.sleep, workers=1)
    app.bus.publish(topology.JOB_CONTROL, CANCEL, ATTRIBUTES)
    assert app.bus.drain(10)
    assert [(data, attrs.get("job_id"), sub) for data, attrs, sub in received] == [
        (CANCEL, "j1", None)  # the shared topic: the operators' channel
    ]
    app.bus.close()
