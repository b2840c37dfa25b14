"""``aiprod dlq`` on the emulators: Pub/Sub dead-letters a job, the inbox keeps it, a replay
brings it back to the jobs topic with its own attributes.

No functions run here: the ``jobs--route_job`` subscription is a pull subscription with the
topology's dead-letter policy, and the test plays a function that keeps failing (it nacks).
"""

from __future__ import annotations

import json
import time

import pytest

from aiprod import topology
from aiprod.repositories.dead_letters import COLLECTION as DEAD_LETTERS
from aiprod.services.dead_letters import DeadLetters
from support import wait_for

pytestmark = pytest.mark.emulator

PREFIX = "dlq-"
JOB = {"job_id": "late-1", "prompt": "a red kite over green hills"}


@pytest.fixture
def ports(emulators, project_id):
    from aiprod_tools.stack.provision import create_topology, emulator_bus, emulator_store

    env = emulators.env(project_id)
    bus = emulator_bus(env, PREFIX)
    create_topology(bus)  # topics and the pull subscriptions (the dead-letter inbox)
    return emulator_store(env), bus


def route_job_subscription(bus) -> str:
    """``dlq-jobs--route_job`` as a pull subscription that dead-letters after 5 deliveries."""
    spec = topology.function("route_job")
    path = bus.subscriber.subscription_path(bus.project, f"{PREFIX}{spec.subscription}")
    topic = bus.publisher.topic_path
    bus.subscriber.create_subscription(
        request={
            "name": path,
            "topic": topic(bus.project, f"{PREFIX}{topology.JOBS}"),
            "ack_deadline_seconds": 10,
            "dead_letter_policy": {
                "dead_letter_topic": topic(bus.project, f"{PREFIX}{topology.DEAD_LETTER}"),
                "max_delivery_attempts": topology.MAX_DELIVERY_ATTEMPTS,
            },
        }
    )
    return path


def pull(bus, path: str) -> list:
    response = bus.subscriber.pull(
        request={"subscription": path, "max_messages": 10, "return_immediately": True},
        timeout=5,
    )
    return list(response.received_messages)


def fail_until_dead_lettered(bus, path: str) -> int:
    """Nack every delivery (a function answering 500) until Pub/Sub gives up on it."""
    deliveries = 0

    def gone() -> bool:
        nonlocal deliveries
        received = pull(bus, path)
        if received:
            deliveries += len(received)
            ack_ids = [r.ack_id for r in received]
            bus.subscriber.modify_ack_deadline(
                request={"subscription": path, "ack_ids": ack_ids, "ack_deadline_seconds": 0}
            )
            return False
        return deliveries >= topology.MAX_DELIVERY_ATTEMPTS

    wait_for(gone, timeout=60, interval=0.2, describe=lambda: f"{deliveries} deliveries")
    return deliveries


def test_a_dead_lettered_job_is_listed_and_replayed(ports):
    store, bus = ports
    path = route_job_subscription(bus)

    # GIVEN a job request that failed every delivery, and a malformed one our router refused
    bus.publish(topology.JOBS, json.dumps(JOB).encode(), {"team": "growth"})
    assert fail_until_dead_lettered(bus, path) == topology.MAX_DELIVERY_ATTEMPTS
    bus.publish(topology.DEAD_LETTER, b"not json", {"reason": "invalid", "source": "jobs"})

    # WHEN the operator lists the inbox
    inbox = DeadLetters(store, bus, PREFIX, time.time)
    wait_for(lambda: inbox.collect() and len(inbox.pending()) == 2, timeout=20)

    # THEN both are kept, the first described from Pub/Sub's own attributes
    dead, refused = sorted(inbox.pending(), key=lambda x: x.reason)
    assert (dead.source, dead.delivery_count) == ("jobs", topology.MAX_DELIVERY_ATTEMPTS)
    assert dead.source_subscription.endswith(f"{PREFIX}jobs--route_job")
    assert dead.reason.startswith("5 failed deliveries on ")
    assert (refused.source, refused.reason) == ("jobs", "invalid")
    assert store.get(DEAD_LETTERS, dead.id)["data"] == json.dumps(JOB)

    # WHEN the job is replayed
    [(_, message_id)] = inbox.replay([dead.id])

    # THEN it is back on the jobs topic as first published, and marked replayed
    def redelivered():
        return [r.message for r in pull(bus, path)]

    [message] = wait_for(redelivered, timeout=20)
    assert message.message_id == message_id
    assert json.loads(message.data) == JOB
    assert dict(message.attributes) == {"team": "growth"}
    assert store.get(DEAD_LETTERS, dead.id)["replayed"] is True
    assert [x.id for x in inbox.pending()] == [refused.id]
