"""Helpers shared by the contract and e2e tiers (importable as ``support``)."""

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
