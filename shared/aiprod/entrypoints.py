"""Conversion from a Pub/Sub CloudEvent to (data, attributes), with no framework imports,
and the frame around one invocation (its metrics flushed at the end).

Takes any object shaped like ``cloudevents.http.CloudEvent`` (``.data`` and ``get``), so the
functions, the tests and the embedded bus share one decoder.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator
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
    logs.trace_context.set(logs.trace_id_from(traceparent))
    return data, attributes


def _extension(cloud_event, name: str) -> str | None:
    getter = getattr(cloud_event, "get", None)
    return getter(name) if callable(getter) else None
