"""Push lanes (the emulator stack only): the Pub/Sub emulator pushes at most 2 messages at a
time per subscription, so the stack publishes each push-fed topic round-robin over N lane
topics, each with its own push subscription to the same function; deployed, lanes is 1."""

from __future__ import annotations

from concurrent.futures import Future

from aiprod import topology
from aiprod.adapters.pubsub_bus import PubSubBus
from aiprod.config import Settings
from aiprod.domain.dead_letters import DeadLetter
from aiprod.ports import ReceivedMessage
from aiprod.services.dead_letters import DeadLetters
from fakes.store import LedgerWatchingStore


class _RecordingPublisher:
    def __init__(self) -> None:
        self.topics: list[str] = []

    def topic_path(self, project: str, topic: str) -> str:
        return f"projects/{project}/topics/{topic}"

    def publish(self, path: str, data: bytes, timeout=None, **attributes) -> Future:
        self.topics.append(path.rsplit("/", 1)[-1])
        done: Future = Future()
        done.set_result(str(len(self.topics)))
        return done


def test_a_push_fed_topic_is_published_round_robin_over_its_lanes():
    publisher = _RecordingPublisher()
    bus = PubSubBus("p", "aiprod-", publisher=publisher, subscriber=object(), lanes=3)

    for _ in range(3):
        bus.publish(topology.render_topic("runway"), b"{}")
    bus.publish(topology.JOB_EVENTS, b"{}")  # read by pull subscriptions: never laned

    assert publisher.topics == [
        "aiprod-render-runway",
        "aiprod-render-runway--lane1",
        "aiprod-render-runway--lane2",
        "aiprod-job-events",
    ]


def test_deployed_there_is_one_lane():
    publisher = _RecordingPublisher()
    bus = PubSubBus("p", "aiprod-", publisher=publisher, subscriber=object())
    bus.publish(topology.JOBS, b"{}")
    bus.publish(topology.JOBS, b"{}")
    assert publisher.topics == ["aiprod-jobs", "aiprod-jobs"] and Settings().push_lanes == 1


def test_a_dead_letter_from_a_lane_is_replayed_to_its_topic():
    # GIVEN a task dead-lettered by the push subscription of render-runway's lane 1
    attributes = {
        "CloudPubSubDeadLetterSourceSubscription": (
            "projects/p/subscriptions/aiprod-render-runway--lane1--render_runway"
        ),
        "CloudPubSubDeadLetterSourceDeliveryCount": "100",
    }
    inbox = _Inbox([ReceivedMessage(b'{"job_id": "j1"}', attributes, "m1")])
    letters = DeadLetters(LedgerWatchingStore(), inbox, "aiprod-")

    # WHEN it is collected
    [letter] = letters.collect()

    # THEN its source is the topic, not the lane: a replay publishes where tasks go
    assert isinstance(letter, DeadLetter) and letter.source == topology.render_topic("runway")


class _Inbox:
    def __init__(self, messages: list[ReceivedMessage]):
        self.messages = messages

    def pull(self, subscription: str, max_messages: int = 100) -> list[ReceivedMessage]:
        taken, self.messages = self.messages, []
        return taken

    def publish(self, topic: str, data: bytes, attributes=None) -> str:
        raise AssertionError("nothing is published back")
