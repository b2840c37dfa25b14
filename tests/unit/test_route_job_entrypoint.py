"""Hostile input at the router's real entry point never escapes as an exception.

The deployed function (functions/route_job/main.py) is called with CloudEvents shaped as
functions-framework builds them from a Pub/Sub push, on an embedded app, so every byte
sequence goes through the same decode → validate → reject path as in production.
"""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path

import pytest
from cloudevents.http import CloudEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aiprod.config import Settings
from aiprod.domain.messages import JobRequest
from aiprod_tools.embedded import embedded_app

ROOT = Path(__file__).resolve().parents[2]


def _load_entry_point():
    spec = importlib.util.spec_from_file_location(
        "route_job_main", ROOT / "functions" / "route_job" / "main.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _push_event(data: bytes) -> CloudEvent:
    attributes = {
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/",
    }
    body = {"message": {"data": base64.b64encode(data).decode(), "attributes": {}}}
    return CloudEvent(attributes, body)


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "job_id",
    "prompt",
    "image_uri",
    "duration_s",
    "aspect_ratio",
    "resolution",
    "quality_min",
    "max_cost_usd",
    "priority",
    "backends",
    "tenant",
    "metadata",
]
JOB_IDS = st.sampled_from(["job-1", "", "a/b", "..", "x" * 300, "ok.id_2"]) | st.text(max_size=20)
REQUEST_LIKE = st.fixed_dictionaries(
    {"job_id": JOB_IDS},
    optional={
        name: JSON_VALUES | st.text(min_size=0, max_size=3000) | st.integers(-(10**9), 10**9)
        for name in FIELDS[1:]
    }
    | {"unknown_field": JSON_VALUES},
)
PAYLOADS = (
    st.binary(max_size=300)
    | st.text(max_size=300).map(str.encode)
    | REQUEST_LIKE.map(lambda d: json.dumps(d).encode())
    | REQUEST_LIKE.map(lambda d: json.dumps(d).encode()[:-3])  # truncated JSON
    | st.just(b"[" * 5000)  # deeply nested
)


@pytest.fixture(scope="module")
def entry_point():
    return _load_entry_point()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=PAYLOADS)
def test_hostile_payload_is_answered_never_raised(entry_point, monkeypatch, payload):
    # GIVEN a fresh embedded system behind the deployed entry point
    app = embedded_app(Settings(poll_interval_s=0.0), workers=1)
    monkeypatch.setattr(entry_point, "cloud_app", lambda: app)
    try:
        valid = JobRequest.model_validate_json(payload)
    except ValidationError:
        valid = None

    # WHEN the payload arrives as a Pub/Sub push CloudEvent
    entry_point.route_job(_push_event(payload))

    # THEN nothing escaped; an invalid payload got exactly one answer and changed nothing
    events = app.bus.published["job-events"]
    dead = app.bus.published["dead-letter"]
    if valid is None:
        assert len(events) + len(dead) == 1
        stored = app.store.list("jobs")
        if events:
            event = json.loads(events[0].data)
            assert (event["type"], event["reason"]) == ("job.rejected", "invalid")
            assert event["message"]
            # its job_id was usable: the job is REJECTED, saying why
            assert [(j["status"], j["message"]) for j in stored] == [("REJECTED", event["message"])]
        else:
            assert stored == []
        assert app.store.list("ledger") == []
    else:
        assert app.store.get("jobs", valid.job_id) is not None
    app.bus.close()
