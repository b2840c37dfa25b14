"""The Google Cloud adapters turn SDK faults into aiprod's transient errors (no emulator).

Injected fake clients stand in for the SDK's, which also shows that the adapters connect
nothing until used.
"""

from __future__ import annotations

from concurrent.futures import Future

import pytest
from google.api_core import exceptions as gexc

from aiprod import topology
from aiprod.adapters.firestore_store import FirestoreStore
from aiprod.adapters.pubsub_bus import PubSubBus
from aiprod.exceptions import BusUnavailableError, StoreUnavailableError


class FailingFirestore:
    """A client whose every document call raises ``error``."""

    def __init__(self, error: Exception):
        self.error = error

    def collection(self, name: str) -> FailingFirestore:
        return self

    def document(self, doc_id: str) -> FailingFirestore:
        return self

    def limit(self, count: int) -> FailingFirestore:
        return self

    def get(self, **_):
        raise self.error

    def set(self, data):
        raise self.error

    def stream(self, **_):
        raise self.error


class FakePublisher:
    """Records publishes; each returns a future that ``outcome`` completes (or not)."""

    def __init__(self, outcome: Exception | str | None):
        self.outcome = outcome
        self.published: list[tuple[str, bytes, dict]] = []

    def topic_path(self, project: str, topic: str) -> str:
        return f"projects/{project}/topics/{topic}"

    def publish(self, path: str, data: bytes, timeout=None, **attrs) -> Future:
        self.published.append((path, data, attrs))
        future: Future = Future()
        if isinstance(self.outcome, Exception):
            future.set_exception(self.outcome)
        elif self.outcome is not None:
            future.set_result(self.outcome)
        return future


class SilentSubscriber:
    def subscription_path(self, project: str, name: str) -> str:
        return f"projects/{project}/subscriptions/{name}"

    def pull(self, request, timeout=None):
        raise gexc.DeadlineExceeded("nothing to pull")


@pytest.mark.parametrize("error", [gexc.ServiceUnavailable("down"), gexc.DeadlineExceeded("slow")])
def test_transient_firestore_faults_become_store_unavailable(error):
    store = FirestoreStore("p", client=FailingFirestore(error))
    for call in (
        lambda: store.get("jobs", "a"),
        lambda: store.set("jobs", "a", {}),
        lambda: store.list("jobs"),
    ):
        with pytest.raises(StoreUnavailableError) as caught:
            call()
        assert caught.value.__cause__ is error


def test_permanent_firestore_faults_are_not_retried_as_transient():
    store = FirestoreStore("p", client=FailingFirestore(gexc.PermissionDenied("no")))
    with pytest.raises(gexc.PermissionDenied):
        store.get("jobs", "a")


def test_publish_applies_the_prefix_and_returns_the_message_id():
    publisher = FakePublisher("42")
    bus = PubSubBus("p", "aiprod-", publisher=publisher)
    assert bus.publish(topology.JOBS, b"x", {"k": "v"}) == "42"
    assert publisher.published == [("projects/p/topics/aiprod-jobs", b"x", {"k": "v"})]


@pytest.mark.parametrize("failure", [gexc.ServiceUnavailable("down"), TimeoutError()])
def test_failed_publish_becomes_bus_unavailable(failure):
    bus = PubSubBus("p", "aiprod-", publisher=FakePublisher(failure))
    with pytest.raises(BusUnavailableError):
        bus.publish(topology.JOBS, b"x")


def test_publish_waits_a_bounded_time():
    bus = PubSubBus("p", publisher=FakePublisher(None), publish_timeout_s=0.05)
    with pytest.raises(BusUnavailableError):
        bus.publish(topology.JOBS, b"never acknowledged")


def test_an_empty_pull_that_times_out_returns_nothing():
    bus = PubSubBus("p", subscriber=SilentSubscriber())
    assert bus.pull(f"{topology.DEAD_LETTER}--inbox") == []
