"""In-process Pub/Sub: push subscriptions call handlers on worker threads, at least once.

It keeps Pub/Sub's delivery rules that the services rely on: a handler that raises is
redelivered with backoff, and after ``max_delivery_attempts`` the message goes to the
dead-letter topic; pull subscriptions hold messages until pulled.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from aiprod import topology
from aiprod.ports import Bus, ReceivedMessage

log = logging.getLogger(__name__)
Handler = Callable[[bytes, dict[str, str]], None]


@dataclass
class _Delivery:
    topic: str
    message: ReceivedMessage
    attempt: int = 1


class EmbeddedBus(Bus):
    def __init__(
        self,
        workers: int = 8,
        max_delivery_attempts: int = topology.MAX_DELIVERY_ATTEMPTS,
        backoff_s: float = 0.01,
    ):
        self._push: dict[str, Handler] = {}
        self._pull: dict[str, str] = dict(topology.PULL_SUBSCRIPTIONS)
        self._inbox: dict[str, deque[ReceivedMessage]] = defaultdict(deque)
        self._queue: queue.Queue[_Delivery | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._max_attempts = max_delivery_attempts
        self._backoff_s = backoff_s
        self.published: dict[str, list[ReceivedMessage]] = defaultdict(list)
        self._threads = [
            threading.Thread(target=self._work, name=f"bus-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def subscribe(self, topic: str, handler: Handler) -> None:
        """A push subscription: every message on ``topic`` is delivered to ``handler``."""
        self._push[topic] = handler

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        if not topology.is_topic(topic):
            raise KeyError(f"unknown topic {topic!r}")
        message = ReceivedMessage(bytes(data), dict(attributes or {}), str(next(self._ids)))
        with self._lock:
            self.published[topic].append(message)
            for subscription, source in self._pull.items():
                if source == topic:
                    self._inbox[subscription].append(message)
        if topic in self._push:
            self._queue.put(_Delivery(topic, message))
        return message.message_id

    def pull(self, subscription: str, max_messages: int = 100) -> list[ReceivedMessage]:
        if subscription not in self._pull:
            raise KeyError(f"unknown pull subscription {subscription!r}")
        with self._lock:
            inbox = self._inbox[subscription]
            return [inbox.popleft() for _ in range(min(max_messages, len(inbox)))]

    def drain(self, timeout_s: float = 60.0) -> bool:
        """Wait until every delivery (and what it published) is handled; False on timeout."""
        done = threading.Event()
        threading.Thread(target=lambda: (self._queue.join(), done.set()), daemon=True).start()
        return done.wait(timeout_s)

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _work(self) -> None:
        while (delivery := self._queue.get()) is not None:
            try:
                self._deliver(delivery)
            finally:
                self._queue.task_done()

    def _deliver(self, delivery: _Delivery) -> None:
        handler = self._push[delivery.topic]
        try:
            handler(delivery.message.data, dict(delivery.message.attributes))
        except Exception as exc:
            if delivery.attempt >= self._max_attempts:
                log.error("message dead-lettered after %d attempts: %r", delivery.attempt, exc)
                attrs = {
                    **delivery.message.attributes,
                    "CloudPubSubDeadLetterSourceDeliveryCount": str(delivery.attempt),
                    "source": delivery.topic,
                }
                self.publish(topology.DEAD_LETTER, delivery.message.data, attrs)
                return
            time.sleep(self._backoff_s * 2 ** (delivery.attempt - 1))
            delivery.attempt += 1
            self._queue.put(delivery)
