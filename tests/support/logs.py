"""The structured log lines a function process of an emulator stack wrote (one JSON object
each, as Cloud Logging reads them); non-JSON lines (gunicorn's own) are skipped."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiprod_tools.stack.stack import EmulatorStack


def log_text(stack: EmulatorStack, function: str) -> str:
    """Everything the function process wrote so far, JSON or not (tracebacks from before
    logging was configured are plain text)."""
    try:
        return stack.functions[function].log_path.read_text(errors="replace")
    except OSError:
        return ""


def log_entries(stack: EmulatorStack, function: str) -> list[dict[str, Any]]:
    entries = []
    for line in log_text(stack, function).splitlines():
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
    return entries


def count_logged(stack: EmulatorStack, function: str, message_prefix: str) -> int:
    """How many of ``function``'s log entries start with ``message_prefix``."""
    return sum(
        1
        for entry in log_entries(stack, function)
        if str(entry.get("message", "")).startswith(message_prefix)
    )
