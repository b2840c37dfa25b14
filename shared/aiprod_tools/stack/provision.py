"""Topics and subscriptions on the Pub/Sub emulator, created from ``topology`` and nothing else.

Also builds SDK clients aimed at the emulators without touching this process's environment
for longer than their construction (the SDKs read ``*_EMULATOR_HOST`` only in ``__init__``),
so several stacks, each under its own project, can live in one test process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress

from google.cloud import firestore, pubsub_v1
from google.protobuf import duration_pb2

from aiprod import topology
from aiprod.adapters.firestore_store import FirestoreStore
from aiprod.adapters.pubsub_bus import BATCH, PubSubBus

_ENV_LOCK = threading.Lock()
EMULATOR_HOSTS = ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST")


@contextmanager
def _environ(env: Mapping[str, str]) -> Iterator[None]:
    """The emulator hosts from ``env`` in ``os.environ`` for the duration of the block."""
    overrides = {key: env[key] for key in EMULATOR_HOSTS if key in env}
    with _ENV_LOCK:
        saved = {key: os.environ.get(key) for key in overrides}
        os.environ.update(overrides)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def emulator_bus(env: Mapping[str, str], prefix: str) -> PubSubBus:
    """A ``PubSubBus`` on the emulator named in ``env`` (its project from the same env)."""
    with _environ(env):
        publisher = pubsub_v1.PublisherClient(batch_settings=BATCH)
        subscriber = pubsub_v1.SubscriberClient()
    project = env["GOOGLE_CLOUD_PROJECT"]
    lanes = int(env.get("AIPROD_PUSH_LANES", "1"))
    return PubSubBus(project, prefix, publisher=publisher, subscriber=subscriber, lanes=lanes)


def emulator_store(env: Mapping[str, str]) -> FirestoreStore:
    project = env["GOOGLE_CLOUD_PROJECT"]
    with _environ(env):
        client = firestore.Client(project=project)
    return FirestoreStore(project, client=client)


def _seconds(value: float) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=int(value), nanos=int((value % 1) * 1e9))


def create_topology(
    bus: PubSubBus,
    push_endpoints: Mapping[str, str] | None = None,
    min_backoff_s: float = topology.MIN_BACKOFF_S,
    max_backoff_s: float = topology.MAX_BACKOFF_S,
) -> None:
    """Every topic, the pull subscriptions, and a push subscription per function given.

    ``push_endpoints`` maps a function name to the URL its subscription pushes to (HTTP
    functions in it are skipped: Cloud Scheduler calls them, not Pub/Sub); push
    subscriptions dead-letter to the dead-letter topic after the topology's attempt count.
    A push-fed topic gets the bus's lanes (``topology.lane_topic``), each pushing to the
    same function.
    """
    publisher, subscriber = bus.publisher, bus.subscriber
    lanes = {
        name: [topology.lane_topic(name, lane) for lane in range(bus.lanes)]
        if topology.is_push_topic(name)
        else [name]
        for name in topology.all_topics()
    }
    topic_path = {
        lane: publisher.topic_path(bus.project, topology.qualified(bus.prefix, lane))
        for names in lanes.values()
        for lane in names
    }
    for path in topic_path.values():
        publisher.create_topic(request={"name": path})
    for name, topic in topology.PULL_SUBSCRIPTIONS.items():
        subscriber.create_subscription(request=_subscription(bus, name, topic_path[topic]))
    for spec in topology.pubsub_functions():
        if push_endpoints is None or spec.name not in push_endpoints:
            continue
        for index, lane in enumerate(lanes[spec.topic]):
            request = _subscription(bus, spec.lane_subscription(index), topic_path[lane])
            request.update(
                push_config={"push_endpoint": push_endpoints[spec.name]},
                ack_deadline_seconds=min(spec.timeout_s, 600),
                dead_letter_policy={
                    "dead_letter_topic": topic_path[topology.DEAD_LETTER],
                    "max_delivery_attempts": spec.max_delivery_attempts,
                },
                retry_policy={
                    "minimum_backoff": _seconds(min_backoff_s),
                    "maximum_backoff": _seconds(max_backoff_s),
                },
            )
            subscriber.create_subscription(request=request)


def _subscription(bus: PubSubBus, name: str, topic_path: str) -> dict:
    path = bus.subscriber.subscription_path(bus.project, topology.qualified(bus.prefix, name))
    return {"name": path, "topic": topic_path}


def provision_tenant(bus: PubSubBus, tenant: str, endpoint: str | None = None) -> None:
    """A configured tenant's jobs topic and its push subscription to route_job, and its
    control topic and push subscription to control_job, as Terraform's ``tenants`` variable
    makes them (no IAM: the emulator has none). Each push's endpoint and retry backoff are
    its shared topic's subscription's, so ``aiprod tenant add`` on a running stack needs no
    URL (``endpoint``: route_job's). Safe to repeat: what exists already is kept."""
    router, controller = topology.function(topology.ROUTER), topology.function(topology.CONTROLLER)
    jobs = (topology.tenant_topic(tenant), topology.tenant_subscription(tenant))
    control = (topology.tenant_control_topic(tenant), topology.tenant_control_subscription(tenant))
    _provision(bus, router, *jobs, endpoint)
    _provision(bus, controller, *control, None)


def _provision(
    bus: PubSubBus, spec: topology.FunctionSpec, name: str, subscription: str, endpoint: str | None
) -> None:
    """A tenant topic ``name`` and its push subscription to ``spec``'s function."""
    from google.api_core.exceptions import AlreadyExists

    topic = bus.publisher.topic_path(bus.project, topology.qualified(bus.prefix, name))
    shared = _subscription(bus, spec.subscription, "")["name"]
    found = bus.subscriber.get_subscription(request={"subscription": shared})
    retry = found.retry_policy
    request = _subscription(bus, subscription, topic)
    dead_letter = topology.qualified(bus.prefix, topology.DEAD_LETTER)
    request.update(
        push_config={"push_endpoint": endpoint or found.push_config.push_endpoint},
        ack_deadline_seconds=min(spec.timeout_s, 600),
        retry_policy={
            "minimum_backoff": _seconds(retry.minimum_backoff.total_seconds()),
            "maximum_backoff": _seconds(retry.maximum_backoff.total_seconds()),
        },
        dead_letter_policy={
            "dead_letter_topic": bus.publisher.topic_path(bus.project, dead_letter),
            "max_delivery_attempts": spec.max_delivery_attempts,
        },
    )
    for create, arg in (
        (bus.publisher.create_topic, {"name": topic}),
        (bus.subscriber.create_subscription, request),
    ):
        with suppress(AlreadyExists):
            create(request=arg)


def repoint_push(bus: PubSubBus, spec: topology.FunctionSpec, endpoint: str) -> None:
    """Point every push subscription (each lane's) of a function at a new URL."""
    lanes = bus.lanes if topology.is_push_topic(spec.topic) else 1
    for index in range(lanes):
        name = topology.qualified(bus.prefix, spec.lane_subscription(index))
        bus.subscriber.modify_push_config(
            request={
                "subscription": bus.subscriber.subscription_path(bus.project, name),
                "push_config": {"push_endpoint": endpoint},
            }
        )
