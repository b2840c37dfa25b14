"""The Bus contract: EmbeddedBus and PubSubBus (on the emulator) alike.

Names are the topology's unprefixed ones; the Pub/Sub adapter applies its prefix.
"""

from __future__ import annotations

import pytest

from aiprod import topology
from aiprod.ports import Bus, ReceivedMessage
from support import DEAD_LETTER_INBOX, wait_for


def pull_until(bus: Bus, subscription: str, count: int) -> list[ReceivedMessage]:
    """Pull until ``count`` messages came (a real pull may return fewer than are waiting)."""
    got: list[ReceivedMessage] = []

    def enough() -> bool:
        got.extend(bus.pull(subscription, max_messages=10))
        return len(got) >= count

    wait_for(enough, timeout=10, interval=0.1, describe=lambda: f"got {len(got)}/{count}")
    return got


def test_published_message_reaches_a_pull_subscription(bus: Bus):
    # GIVEN a message with attributes published to the dead-letter topic
    message_id = bus.publish(topology.DEAD_LETTER, b'{"x": 1}', {"source": "jobs", "k": "v"})
    # THEN its inbox returns the same bytes and attributes, under the published id
    [message] = pull_until(bus, DEAD_LETTER_INBOX, 1)
    assert message.data == b'{"x": 1}'
    assert message.attributes == {"source": "jobs", "k": "v"}
    assert message.message_id == message_id and message_id


def test_pulled_messages_are_acknowledged(bus: Bus):
    bus.publish(topology.DEAD_LETTER, b"once")
    pull_until(bus, DEAD_LETTER_INBOX, 1)
    assert bus.pull(DEAD_LETTER_INBOX) == []


def test_several_messages_all_arrive(bus: Bus):
    for i in range(3):
        bus.publish(topology.JOB_EVENTS, f"m{i}".encode(), {"type": "job.accepted"})
    got = pull_until(bus, f"{topology.JOB_EVENTS}--local-tap", 3)
    assert sorted(m.data for m in got) == [b"m0", b"m1", b"m2"]


def test_unknown_topic_raises(bus: Bus):
    with pytest.raises(KeyError):
        bus.publish("no-such-topic", b"x")


def test_unknown_subscription_raises(bus: Bus):
    with pytest.raises(KeyError):
        bus.pull("no-such-subscription")
