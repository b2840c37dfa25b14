"""Pub/Sub behind the ``Bus`` port: the only module that imports the Pub/Sub SDK.

Clients are built on first use. A function publishes one or two messages per invocation and
waits for each, so the publisher's batching latency is pinned at 10 ms (the SDK default today,
stated here so a library change cannot add latency to every handler). Every wait is bounded:
a publish that fails or times out is a ``BusUnavailableError`` (transient, so the triggering
message is redelivered; the publish is safe to repeat). Topic and subscription names are
checked against the topology before any network call.

``pull`` is for the dead-letter inbox and local taps, which want "what is there now": it sets
the deprecated ``return_immediately`` flag (the emulator otherwise holds an empty pull ~2 s)
and may therefore return fewer messages than are waiting; callers loop until empty.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from aiprod import topology
from aiprod.exceptions import BusUnavailableError
from aiprod.ports import Bus, ReceivedMessage

BATCH = pubsub_v1.types.BatchSettings(max_messages=100, max_latency=0.01)


class PubSubBus(Bus):
    def __init__(
        self,
        project: str,
        prefix: str = "",
        publisher: pubsub_v1.PublisherClient | None = None,
        subscriber: pubsub_v1.SubscriberClient | None = None,
        publish_timeout_s: float = 30.0,
        pull_timeout_s: float = 5.0,
        lanes: int = 1,
    ):
        self.project, self.prefix = project, prefix
        self._publisher, self._subscriber = publisher, subscriber
        self._publish_timeout_s = publish_timeout_s
        self._pull_timeout_s = pull_timeout_s
        self._lock = threading.Lock()
        self.lanes = max(1, lanes)  # push lanes per push-fed topic (topology.lane_topic)
        self._published = itertools.count()

    @property
    def publisher(self) -> pubsub_v1.PublisherClient:
        with self._lock:
            if self._publisher is None:
                self._publisher = pubsub_v1.PublisherClient(batch_settings=BATCH)
            return self._publisher

    @property
    def subscriber(self) -> pubsub_v1.SubscriberClient:
        with self._lock:
            if self._subscriber is None:
                self._subscriber = pubsub_v1.SubscriberClient()
            return self._subscriber

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        if not topology.is_topic(topic):
            raise KeyError(f"unknown topic {topic!r}")
        name = topic
        if self.lanes > 1 and topology.is_push_topic(topic):
            name = topology.lane_topic(topic, next(self._published) % self.lanes)
        path = self.publisher.topic_path(self.project, topology.qualified(self.prefix, name))
        with _translated(f"publish to {topic}"):
            future = self.publisher.publish(
                path, bytes(data), timeout=self._publish_timeout_s, **(attributes or {})
            )
            return future.result(timeout=self._publish_timeout_s)

    def pull(self, subscription: str, max_messages: int = 100) -> list[ReceivedMessage]:
        if subscription not in topology.PULL_SUBSCRIPTIONS:
            raise KeyError(f"unknown pull subscription {subscription!r}")
        name = topology.qualified(self.prefix, subscription)
        path = self.subscriber.subscription_path(self.project, name)
        with _translated(f"pull from {subscription}"):
            try:
                response = self.subscriber.pull(
                    request={
                        "subscription": path,
                        "max_messages": max_messages,
                        "return_immediately": True,
                    },
                    timeout=self._pull_timeout_s,
                )
            except gexc.DeadlineExceeded:
                return []  # nothing arrived within the short wait
            received = list(response.received_messages)
            if received:
                ack_ids = [r.ack_id for r in received]
                self.subscriber.acknowledge(request={"subscription": path, "ack_ids": ack_ids})
        return [_message(r) for r in received]


def _message(received) -> ReceivedMessage:
    message = received.message
    return ReceivedMessage(
        data=bytes(message.data),
        attributes=dict(message.attributes),
        message_id=message.message_id,
        delivery_attempt=received.delivery_attempt or None,
    )


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    """Every SDK failure or timeout of a bus call becomes ``BusUnavailableError``."""
    try:
        yield
    except (gexc.GoogleAPIError, FutureTimeout, TimeoutError) as exc:
        raise BusUnavailableError(f"pubsub {operation} failed: {exc!r}") from exc
