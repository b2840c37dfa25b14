"""The one description of topics, subscriptions and which function consumes what.

The local emulator stack, the embedded bus, the tests and the Terraform cross-check all read
this module, so a topic renamed here is renamed everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

JOBS = "jobs"
RENDER_OUTCOMES = "render-outcomes"
JOB_EVENTS = "job-events"
DEAD_LETTER = "dead-letter"
BACKENDS = ("runway", "veo", "replicate")

MAX_DELIVERY_ATTEMPTS = 5
# A render push that Cloud Run refuses (429: every instance busy at its concurrency) counts as
# a delivery attempt. Render subscriptions allow the most Pub/Sub does, so with the backoff
# below a burst past capacity waits (about 16 hours of retries) instead of dead-lettering.
# Malformed or misrouted render tasks are dead-lettered by the render function itself.
RENDER_MAX_DELIVERY_ATTEMPTS = 100
MIN_BACKOFF_S = 10
MAX_BACKOFF_S = 600


def render_topic(backend: str) -> str:
    """Each backend has its own task topic, so one provider's backlog never blocks another."""
    return f"render-{backend}"


@dataclass(frozen=True)
class FunctionSpec:
    """A deployed function: its entry point name, trigger and run limits.

    ``trigger="pubsub"``: a push subscription on ``topic`` delivers CloudEvents to it.
    ``trigger="http"``: no topic and no subscription; Cloud Scheduler calls its URL on
    ``schedule`` (unix-cron), and the local stack starts it for tests to call over HTTP.
    """

    name: str
    topic: str | None
    timeout_s: int = 60
    memory: str = "512Mi"
    concurrency: int = 8
    max_instances: int = 20
    extras: tuple[str, ...] = ()
    trigger: Literal["pubsub", "http"] = "pubsub"
    schedule: str | None = None
    max_delivery_attempts: int = MAX_DELIVERY_ATTEMPTS

    @property
    def subscription(self) -> str:
        if self.topic is None:
            raise KeyError(f"{self.name} is called over HTTP: it has no subscription")
        return f"{self.topic}--{self.name}"

    @property
    def signature_type(self) -> str:
        """functions-framework's ``--signature-type`` for this trigger."""
        return "http" if self.trigger == "http" else "cloudevent"


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("route_job", JOBS, timeout_s=60),
    *(
        FunctionSpec(
            f"render_{b}",
            render_topic(b),
            timeout_s=540,
            memory="1Gi",
            extras=(b,),
            max_delivery_attempts=RENDER_MAX_DELIVERY_ATTEMPTS,
        )
        for b in BACKENDS
    ),
    FunctionSpec("handle_outcome", RENDER_OUTCOMES, timeout_s=60),
    # The lease sweep (services/reconcile.py): every minute; overlapping runs are safe. It
    # polls stored provider tasks through the same adapters as the render functions, so it
    # ships every provider SDK (imported lazily, only when a poll is due). Its first sweep of
    # each hour also runs the spend audit (services/spend_audit.py), which reads what each
    # provider ran with the same keys, SDKs and output bucket: nothing more to deploy.
    FunctionSpec(
        "reconcile",
        None,
        timeout_s=300,
        concurrency=1,
        max_instances=1,
        trigger="http",
        schedule="* * * * *",
        extras=BACKENDS,
    ),
)

# Pull subscriptions the system itself reads: the dead-letter inbox (aiprod dlq) and a tap on
# the public events topic for the local tools (users create their own, filtered, in production).
PULL_SUBSCRIPTIONS: dict[str, str] = {
    f"{DEAD_LETTER}--inbox": DEAD_LETTER,
    f"{JOB_EVENTS}--local-tap": JOB_EVENTS,
}


def all_topics() -> tuple[str, ...]:
    return (JOBS, *(render_topic(b) for b in BACKENDS), RENDER_OUTCOMES, JOB_EVENTS, DEAD_LETTER)


def function(name: str) -> FunctionSpec:
    for spec in FUNCTIONS:
        if spec.name == name:
            return spec
    raise KeyError(f"no function named {name!r} in the topology")


def function_for_topic(topic: str) -> FunctionSpec | None:
    return next((spec for spec in FUNCTIONS if spec.topic == topic), None)


def pubsub_functions() -> tuple[FunctionSpec, ...]:
    """The functions a push subscription feeds (the others are called over HTTP)."""
    return tuple(spec for spec in FUNCTIONS if spec.trigger == "pubsub")


def scheduled_functions() -> tuple[FunctionSpec, ...]:
    return tuple(spec for spec in FUNCTIONS if spec.schedule is not None)


def qualified(prefix: str, name: str) -> str:
    """A topic or subscription name with the deployment's prefix (``aiprod-jobs``)."""
    return f"{prefix}{name}"
