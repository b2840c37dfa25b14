"""Helpers the tiers share (importable as ``support``): waiting and polling on the ports,
driving the embedded pipeline, pausing pushes, reading logs, ledger checks, Terraform parsing.
Nothing here stands in for an external system; the fakes are in ``tests/fakes``."""

from support.waiting import (
    DEAD_LETTER_INBOX,
    EVENTS_TAP,
    Event,
    EventTap,
    WaitTimeout,
    collect_events,
    decode_event,
    job_docs,
    jobs_terminal,
    statuses,
    terminal,
    wait_for,
)

__all__ = [
    "DEAD_LETTER_INBOX",
    "EVENTS_TAP",
    "Event",
    "EventTap",
    "WaitTimeout",
    "collect_events",
    "decode_event",
    "job_docs",
    "jobs_terminal",
    "statuses",
    "terminal",
    "wait_for",
]
