"""Decoding a Pub/Sub push as functions-framework delivers it, and the JSON log line format."""

from __future__ import annotations

import base64
import json
import logging

import pytest

from aiprod import logs
from aiprod.domain.messages import JobRequest
from aiprod.entrypoints import decode, trace_request

flask = pytest.importorskip("flask")
event_conversion = pytest.importorskip("functions_framework.event_conversion")
CloudEvent = pytest.importorskip("cloudevents.http").CloudEvent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE}-00f067aa0ba902b7-01"


def as_functions_framework_would(push: dict):
    """The CloudEvent functions-framework builds from a raw Pub/Sub push request."""
    app = flask.Flask(__name__)
    with app.test_request_context("/", method="POST", json=push):
        return event_conversion.background_event_to_cloud_event(flask.request)


def pubsub_event(message: object, **extensions) -> CloudEvent:
    attributes = {
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/",
        **extensions,
    }
    return CloudEvent(attributes, {"message": message})


@pytest.fixture(autouse=True)
def _isolated_trace(trace_reset):
    yield


def test_decodes_the_push_fixture_into_the_job_request(load_fixture):
    # GIVEN the raw JSON the Pub/Sub emulator pushes, converted by functions-framework
    push = load_fixture("pubsub_push_job.json")
    event = as_functions_framework_would(push)

    # WHEN it is decoded
    data, attributes = decode(event)

    # THEN the message bytes are the client's JobRequest and its attributes come along
    request = JobRequest.model_validate_json(data)
    assert (request.job_id, request.tenant) == ("push-job-1", "social")
    assert attributes == {"origin": "client-42"}
    assert data == base64.b64decode(push["message"]["data"])
    # AND with no traceparent anywhere, no trace is set
    assert logs.trace_context.get() is None


def test_trace_comes_from_the_traceparent_extension():
    event = pubsub_event({"data": base64.b64encode(b"{}").decode()}, traceparent=TRACEPARENT)
    decode(event)
    assert logs.trace_context.get() == TRACE


def test_trace_comes_from_the_publisher_otel_attribute(load_fixture):
    # GIVEN a message published with OpenTelemetry enabled in the client library
    push = load_fixture("pubsub_push_job.json")
    push["message"]["attributes"]["googclient_OpenTelemetryTraceparent"] = TRACEPARENT

    decode(as_functions_framework_would(push))

    assert logs.trace_context.get() == TRACE


@pytest.mark.parametrize(
    "headers",
    [{"traceparent": TRACEPARENT}, {"X-Cloud-Trace-Context": f"{TRACE}/1234;o=1"}],
    ids=["traceparent", "x-cloud-trace-context"],
)
def test_trace_comes_from_the_push_request_cloud_run_received(load_fixture, headers):
    # GIVEN a push request carrying the trace header Cloud Run adds (not copied into the event)
    push = load_fixture("pubsub_push_job.json")
    app = flask.Flask(__name__)
    with app.test_request_context("/", method="POST", json=push, headers=headers):
        event = event_conversion.background_event_to_cloud_event(flask.request)
        assert event.get("traceparent") is None

        # WHEN it is decoded while that request is served
        decode(event)

    # THEN the log lines carry its trace
    assert logs.trace_context.get() == TRACE


def test_the_scheduled_reconcile_request_carries_its_trace():
    trace_request({"X-Cloud-Trace-Context": f"{TRACE}/99;o=1"})
    assert logs.trace_context.get() == TRACE
    trace_request({"X-Cloud-Trace-Context": "not-a-trace"})
    assert logs.trace_context.get() is None


def test_a_message_without_trace_clears_the_previous_one():
    decode(pubsub_event({"data": ""}, traceparent=TRACEPARENT))
    decode(pubsub_event({"data": ""}))
    assert logs.trace_context.get() is None


@pytest.mark.parametrize("traceparent", ["garbage", "00-short-00f067aa0ba902b7-01", ""])
def test_malformed_traceparent_sets_no_trace(traceparent):
    decode(pubsub_event({"data": ""}, traceparent=traceparent))
    assert logs.trace_context.get() is None


GARBLED = {
    "no message": CloudEvent({"type": "x", "source": "y"}, {"subscription": "s"}),
    "data not an object": CloudEvent({"type": "x", "source": "y"}, "just text"),
    "message is a string": pubsub_event("hello"),
    "message is a list": pubsub_event([1, 2]),
    "no data": pubsub_event({"attributes": {"a": "b"}}),
    "data is null": pubsub_event({"data": None}),
    "data is a number": pubsub_event({"data": 12}),
    "data is an object": pubsub_event({"data": {"x": 1}}),
    "data is not base64": pubsub_event({"data": "%%%not base64%%%"}),
    "data has bad padding": pubsub_event({"data": "abc"}),
    "data is non-ascii": pubsub_event({"data": "ümlaut"}),
    "attributes is a string": pubsub_event({"data": "", "attributes": "a=b"}),
    "attributes is a list": pubsub_event({"data": "", "attributes": ["a", "b"]}),
    "trace attribute not a string": pubsub_event(
        {"data": "", "attributes": {"googclient_OpenTelemetryTraceparent": 5}}
    ),
}


@pytest.mark.parametrize("event", GARBLED.values(), ids=GARBLED.keys())
def test_garbled_envelope_decodes_to_empty_data_instead_of_raising(event):
    # WHEN a broken envelope is decoded
    data, attributes = decode(event)

    # THEN it yields empty data (which the router dead-letters) and string attributes
    assert data == b""
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in attributes.items())
    assert logs.trace_context.get() is None


def test_event_with_no_data_at_all_decodes_to_empty():
    event = CloudEvent({"type": "x", "source": "y"}, None)
    assert decode(event) == (b"", {})


def test_attribute_values_are_strings():
    event = pubsub_event({"data": "", "attributes": {"attempt": 2}})
    assert decode(event)[1] == {"attempt": "2"}


# -- logs -------------------------------------------------------------------------------------


def record(message: str = "job accepted: %s", *args, **extra) -> logging.LogRecord:
    rec = logging.LogRecord(
        "aiprod.services.router", logging.WARNING, __file__, 1, message, args, None
    )
    for name, value in extra.items():
        setattr(rec, name, value)
    return rec


def test_log_line_is_one_json_object_with_severity_message_context_and_trace():
    # GIVEN a message that carried a trace, handled in project p1
    logs.trace_context.set(TRACE)
    formatter = logs.CloudLoggingFormatter(project="p1")

    # WHEN a line with job context is formatted
    line = formatter.format(record("job accepted: %s", "runway", job_id="j1", attempt=1))

    # THEN Cloud Logging gets one JSON object with its own keys and our context
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["severity"] == "WARNING"
    assert entry["message"] == "job accepted: runway"
    assert (entry["job_id"], entry["attempt"]) == ("j1", 1)
    assert entry["logging.googleapis.com/trace"] == f"projects/p1/traces/{TRACE}"
    assert entry["time"].endswith("Z")


def test_only_allow_listed_context_reaches_the_log():
    line = logs.CloudLoggingFormatter("p1").format(record(job_id="j1", api_key="secret"))
    entry = json.loads(line)
    assert "api_key" not in entry and "secret" not in line
    assert "logging.googleapis.com/trace" not in entry  # no trace in this context


def test_exceptions_are_logged_as_a_stack_trace_in_the_same_line():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        rec = record()
        rec.exc_info = sys.exc_info()
    entry = json.loads(logs.CloudLoggingFormatter().format(rec))
    assert "RuntimeError: boom" in entry["stack_trace"]
