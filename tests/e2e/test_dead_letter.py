"""The dead-letter topic through the real functions: messages nobody can answer end up in
``dead-letter--inbox`` instead of being lost or retried forever.
"""

from __future__ import annotations

import json

import pytest

from aiprod import topology
from aiprod.repositories.ledger import POOLS, SHARDS
from support import DEAD_LETTER_INBOX, EventTap, statuses, wait_for
from support.logs import log_text

pytestmark = pytest.mark.emulator

FAST = {"AIPROD_POLL_INTERVAL_S": "0.05"}
SETTING = "AIPROD_DAILY_BUDGET_USD"


class Inbox:
    """Everything pulled from the dead-letter inbox so far (pulling acknowledges)."""

    def __init__(self, bus):
        self.bus, self.messages = bus, []

    def poll(self) -> list:
        while batch := self.bus.pull(DEAD_LETTER_INBOX, max_messages=100):
            self.messages.extend(batch)
        return self.messages


def nothing_stored(stack) -> bool:
    return all(stack.store.list(name) == [] for name in ("jobs", SHARDS, POOLS))


def test_job_message_without_a_usable_job_id_is_dead_lettered_not_stored(make_stack):
    # GIVEN a running stack
    stack = make_stack(FAST)
    inbox, tap = Inbox(stack.bus), EventTap(stack.bus)
    garbage = [b"not json", json.dumps({"job_id": "../escape", "prompt": "x"}).encode()]

    # WHEN messages with no job_id to answer to are published, then a valid job
    for data in garbage:
        stack.bus.publish(topology.JOBS, data)
    stack.bus.publish(topology.JOBS, json.dumps({"job_id": "ok-1", "prompt": "a cat"}).encode())

    # THEN each lands on the dead-letter topic as published, marked invalid, from jobs
    wait_for(lambda: len(inbox.poll()) >= len(garbage), timeout=30, interval=0.25)
    assert sorted(m.data for m in inbox.messages) == sorted(garbage)
    for message in inbox.messages:
        assert message.attributes["reason"] == "invalid", message.attributes
        assert message.attributes["source"] == topology.JOBS, message.attributes

    # AND the valid job behind them completes, and no event or document names the garbage
    wait_for(lambda: tap.has("ok-1", "job.completed"), timeout=30, interval=0.25)
    assert {e.job_id for e in tap.events} == {"ok-1"}
    assert set(statuses(stack.store)) == {"ok-1"}
    # AND nothing arrived twice: the router acknowledged the garbage instead of failing on it
    assert len(inbox.poll()) == len(garbage)


def test_message_a_function_keeps_failing_on_is_dead_lettered_after_the_retries(make_stack):
    # GIVEN functions deployed with a malformed setting (every message makes them raise), and
    # a fast retry policy so that the five delivery attempts take seconds, not minutes
    stack = make_stack({**FAST, SETTING: "lots"}, min_backoff_s=0.1, max_backoff_s=1)
    inbox = Inbox(stack.bus)
    data = json.dumps({"job_id": "stuck-1", "prompt": "a cat"}).encode()

    # WHEN a valid job message is published
    stack.bus.publish(topology.JOBS, data)

    # THEN Pub/Sub retries it, then moves it to the dead-letter topic unchanged, saying where
    # it came from
    def failures() -> int:
        return log_text(stack, "route_job").count(
            f"ConfigError: {SETTING} is not a finite decimal amount"
        )

    [dead] = wait_for(
        inbox.poll, timeout=90, interval=0.5, describe=lambda: f"{failures()} failed deliveries"
    )
    assert dead.data == data
    source = dead.attributes.get("CloudPubSubDeadLetterSourceSubscription", "")
    assert source.endswith(topology.function("route_job").subscription), dead.attributes

    # AND every delivery failed on the setting, named in the error (never its value)
    assert failures() == topology.MAX_DELIVERY_ATTEMPTS, log_text(stack, "route_job")[-2000:]
    assert "lots" not in log_text(stack, "route_job")

    # AND nothing was written
    assert nothing_stored(stack)
