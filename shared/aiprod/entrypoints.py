"""Conversion from a Pub/Sub CloudEvent to (data, attributes), with no framework imports,
and the frame around one invocation (its metrics flushed at the end).

Takes any object shaped like ``cloudevents.http.CloudEvent`` (``.data`` and ``get``), so the
functions, the tests and the embedded bus share one decoder.
"""

from __future__ import annotations

import base64
import binascii
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from aiprod import logs

if TYPE_CHECKING:
    from aiprod.bootstrap import App

log = logging.getLogger(__name__)


@contextmanager
def invocation(app: App) -> Iterator[App]:
    """Around one function invocation: the metrics it recorded are flushed when the handler
    returns or raises, within the sink's bound, and a flush problem never reaches the
    handler's answer (ack or retry is the handler's decision alone)."""
    try:
        yield app
    finally:
        try:
            app.metrics.flush()
        except Exception as exc:  # sinks do not raise; this guards a broken one
            log.warning("metric flush failed: %s", type(exc).__name__)


def decode(cloud_event) -> tuple[bytes, dict[str, str]]:
    """The message bytes and attributes; an unreadable envelope yields empty data."""
    envelope = cloud_event.data if isinstance(cloud_event.data, dict) else {}
    message = envelope.get("message") if isinstance(envelope.get("message"), dict) else {}
    raw = message.get("attributes")
    attributes = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
    try:
        data = base64.b64decode(message.get("data") or "", validate=False)
    except (binascii.Error, ValueError, TypeError):
        data = b""
    traceparent = _extension(cloud_event, "traceparent") or attributes.get(
        "googclient_OpenTelemetryTraceparent"
    )
    logs.trace_context.set(
        logs.trace_id_from(traceparent) or logs.trace_id_from_headers(_request_headers())
    )
    return data, attributes


def subscription(cloud_event) -> str | None:
    """The push subscription a message came through (``projects/P/subscriptions/S``), which
    route_job takes the tenant from (``services.tenancy``). Pub/Sub writes it in the push
    body; functions-framework's conversion of a raw push drops it, so it is read back from
    the request being served. A CloudEvent that carries it in its data (Eventarc's shape) is
    read first. None when neither has one (a direct call: the shared topic's rules)."""
    envelope = cloud_event.data if isinstance(cloud_event.data, dict) else {}
    found = envelope.get("subscription")
    if not isinstance(found, str):
        found = _request_body().get("subscription")
    return found if isinstance(found, str) and found else None


def trace_request(headers: Mapping[str, str]) -> None:
    """Log lines of an HTTP invocation (``reconcile``) carry the request's trace."""
    logs.trace_context.set(logs.trace_id_from_headers(headers))


def _request_headers() -> Mapping[str, str]:
    """Headers of the push request being served (Cloud Run adds ``traceparent`` and
    ``X-Cloud-Trace-Context``); functions-framework does not copy them into the CloudEvent.
    Flask is looked up, never imported: it is loaded only under functions-framework."""
    flask = sys.modules.get("flask")
    if flask is None or not flask.has_request_context():
        return {}
    return flask.request.headers


def _request_body() -> dict:
    """The JSON body of the push request being served, or {} (no request, not JSON)."""
    flask = sys.modules.get("flask")
    if flask is None or not flask.has_request_context():
        return {}
    body = flask.request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _extension(cloud_event, name: str) -> str | None:
    getter = getattr(cloud_event, "get", None)
    return getter(name) if callable(getter) else None
