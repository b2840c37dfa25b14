"""Waiting and polling helpers for tests that watch an asynchronous pipeline.

Everything here works on the ports (``DocumentStore``, ``Bus``), so a scenario written against
the emulator stack runs unchanged against the embedded app.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiprod import topology
from aiprod.domain.jobs import TERMINAL_STATUSES
from aiprod.ports import Bus, Document, DocumentStore, ReceivedMessage

T = TypeVar("T")
EVENTS_TAP = f"{topology.JOB_EVENTS}--local-tap"
DEAD_LETTER_INBOX = f"{topology.DEAD_LETTER}--inbox"


class WaitTimeout(AssertionError):
    """A condition did not hold in time; the message says what was last seen."""


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.2,
    describe: Callable[[], str] | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that; else fail.

    ``describe`` is called once on timeout to explain the last state seen (job statuses,
    events so far), which is what makes a failed e2e run readable.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = describe() if describe else ""
            raise WaitTimeout(f"condition not met within {timeout:.1f} s. {detail}".strip())
        time.sleep(interval)


def job_docs(store: DocumentStore) -> dict[str, Document]:
    """Every job document, by job id."""
    return {doc["job_id"]: doc for doc in store.list("jobs")}


def terminal(doc: Document | None) -> bool:
    return doc is not None and doc.get("status") in TERMINAL_STATUSES


def jobs_terminal(store: DocumentStore, job_ids: list[str]) -> dict[str, Document] | None:
    """The job documents once all of ``job_ids`` are terminal, else None (for ``wait_for``)."""
    docs = job_docs(store)
    return docs if all(terminal(docs.get(job_id)) for job_id in job_ids) else None


def statuses(store: DocumentStore) -> dict[str, str]:
    return {job_id: doc.get("status", "?") for job_id, doc in job_docs(store).items()}


@dataclass
class Event:
    """A job event as received: its ``type`` attribute and its decoded JSON payload."""

    type: str
    job_id: str
    payload: dict[str, Any]
    attributes: dict[str, str] = field(default_factory=dict)


def decode_event(message: ReceivedMessage) -> Event:
    payload = json.loads(message.data or b"{}")
    attrs = dict(message.attributes)
    return Event(attrs.get("type", ""), attrs.get("job_id", ""), payload, attrs)


@dataclass
class EventTap:
    """Accumulates what a pull subscription delivers (pulling acknowledges, so keep it all)."""

    bus: Bus
    subscription: str = EVENTS_TAP
    events: list[Event] = field(default_factory=list)

    def poll(self) -> list[Event]:
        """Pull what arrived since the last call; return everything seen so far."""
        while batch := self.bus.pull(self.subscription, max_messages=100):
            self.events.extend(decode_event(message) for message in batch)
        return self.events

    def types_for(self, job_id: str) -> list[str]:
        return [event.type for event in self.poll() if event.job_id == job_id]

    def has(self, job_id: str, event_type: str) -> bool:
        return event_type in self.types_for(job_id)


def collect_events(bus: Bus, subscription: str = EVENTS_TAP) -> list[Event]:
    """One look at a subscription's pending events (for one-off checks; see ``EventTap``)."""
    return EventTap(bus, subscription).poll()
