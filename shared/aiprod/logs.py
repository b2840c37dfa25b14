"""Structured JSON logs that Cloud Logging understands: one object per line.

``severity`` and ``message`` are Cloud Logging's own keys; ``logging.googleapis.com/trace``
links a line to its trace when the message carried one. Context (job, attempt, backend) is
passed as ``extra=`` and copied only from a fixed allow-list, so nothing else leaks.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Mapping

CONTEXT_FIELDS = (
    "job_id",
    "attempt",
    "backend",
    "reason",
    "error_class",
    "tenant",
    "event",
    "hold_micros",
    "cost_micros",
    "overrun_micros",
    "operator",
)
trace_context: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)


class CloudLoggingFormatter(logging.Formatter):
    def __init__(self, project: str | None = None):
        super().__init__()
        self._project = project

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "logger": record.name,
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        trace = trace_context.get()
        if trace and self._project:
            entry["logging.googleapis.com/trace"] = f"projects/{self._project}/traces/{trace}"
        if record.exc_info:
            entry["stack_trace"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(project: str | None = None, level: str | None = None) -> None:
    """Route the root logger to stdout as JSON (idempotent)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, CloudLoggingFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter(project))
    root.handlers = [handler]
    root.setLevel(level or os.environ.get("AIPROD_LOG_LEVEL", "INFO"))


def trace_id_from(traceparent: str | None) -> str | None:
    """The trace id from a W3C ``traceparent`` (``00-<trace>-<span>-<flags>``)."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 and _is_trace_id(parts[1]) else None


def trace_id_from_headers(headers: Mapping[str, str]) -> str | None:
    """The trace id of an HTTP request as Cloud Run receives it: W3C ``traceparent``, else
    Google's ``X-Cloud-Trace-Context`` (``<trace>/<span>;o=1``)."""
    found = trace_id_from(headers.get("traceparent"))
    if found:
        return found
    legacy = (headers.get("X-Cloud-Trace-Context") or "").split("/")[0]
    return legacy if _is_trace_id(legacy) else None


def _is_trace_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdefABCDEF" for c in text)
