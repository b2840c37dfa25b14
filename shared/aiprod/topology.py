"""The one description of topics, subscriptions and which function consumes what.

The local emulator stack, the embedded bus, the tests and the Terraform cross-check all read
this module, so a topic renamed here is renamed everywhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

JOBS = "jobs"
RENDER_OUTCOMES = "render-outcomes"
JOB_EVENTS = "job-events"
DEAD_LETTER = "dead-letter"
JOB_CONTROL = "job-control"  # operator and client control messages (first: cancel a job)
BACKENDS = ("runway", "veo", "replicate")

MAX_DELIVERY_ATTEMPTS = 5
# A render push that Cloud Run refuses (429: every instance busy at its concurrency) counts as
# a delivery attempt. Render subscriptions allow the most Pub/Sub does, so with the backoff
# below a burst past capacity waits (about 16 hours of retries) instead of dead-lettering.
# Malformed or misrouted render tasks are dead-lettered by the render function itself.
RENDER_MAX_DELIVERY_ATTEMPTS = 100
MIN_BACKOFF_S = 10
MAX_BACKOFF_S = 600

# Render functions are sized from their backend's capacity ceiling (the catalog's
# ``max_concurrent``: the most ``aiprod capacity set`` accepts without a deploy), so Cloud
# Run never refuses (429) a push the render slots allowed:
#     max_instances = ceil(max_concurrent x (100 + RENDER_HEADROOM_PCT) % / concurrency)
# A slot bounds the renders dispatched, not the requests in flight: a task redelivered while
# its first delivery still runs (answered BUSY, or resuming a stored task's polls), a task
# the reconciler republished, a late task still followed after its attempt closed, and
# instances Cloud Run does not fill to the last request while it scales. 25 % covers those
# without paying for idle instances (instances scale to zero; the cap costs nothing unused).
RENDER_CONCURRENCY = 8
RENDER_HEADROOM_PCT = 25
CATALOG_JSON = Path(__file__).with_name("data") / "catalog.json"


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

    def lane_subscription(self, lane: int) -> str:
        """The push subscription of the topic's lane ``lane`` (``lane_topic``)."""
        return self.subscription.replace(self.topic, lane_topic(self.topic, lane), 1)

    @property
    def signature_type(self) -> str:
        """functions-framework's ``--signature-type`` for this trigger."""
        return "http" if self.trigger == "http" else "cloudevent"


def capacity_ceilings(catalog_json: Path = CATALOG_JSON) -> dict[str, int]:
    """Each backend's ``capacity.max_concurrent``, read from the catalog's JSON as is: every
    function imports this module at cold start, and one number per backend does not need
    the validated catalog (``domain.catalog``, pydantic), which checks the same file."""
    backends = json.loads(catalog_json.read_text())["backends"]
    return {name: int(spec["capacity"]["max_concurrent"]) for name, spec in backends.items()}


def render_max_instances(max_concurrent: int, concurrency: int = RENDER_CONCURRENCY) -> int:
    """Instances a render function needs for ``max_concurrent`` renders, with the headroom."""
    return -(-max_concurrent * (100 + RENDER_HEADROOM_PCT) // (100 * concurrency))


def render_functions(ceilings: Mapping[str, int]) -> tuple[FunctionSpec, ...]:
    """One render function per backend, deployed for that backend's capacity ceiling."""
    return tuple(
        FunctionSpec(
            f"render_{b}",
            render_topic(b),
            timeout_s=540,
            memory="1Gi",
            concurrency=RENDER_CONCURRENCY,
            max_instances=render_max_instances(ceilings[b]),
            extras=(b,),
            max_delivery_attempts=RENDER_MAX_DELIVERY_ATTEMPTS,
        )
        for b in BACKENDS
    )


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec("route_job", JOBS, timeout_s=60),
    *render_functions(capacity_ceilings()),
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
    # Control messages (services/job_control.py): a cancel asks a provider to stop its task,
    # or looks at one it cannot stop and keeps a finished render, as reconcile's polls do:
    # every provider SDK (imported lazily), and the time a poll that keeps an output takes.
    FunctionSpec("control_job", JOB_CONTROL, timeout_s=300, extras=BACKENDS),
)

# Pull subscriptions the system itself reads: the dead-letter inbox (aiprod dlq) and a tap on
# the public events topic for the local tools (users create their own, filtered, in production).
PULL_SUBSCRIPTIONS: dict[str, str] = {
    f"{DEAD_LETTER}--inbox": DEAD_LETTER,
    f"{JOB_EVENTS}--local-tap": JOB_EVENTS,
}


def all_topics() -> tuple[str, ...]:
    return (
        JOBS,
        *(render_topic(b) for b in BACKENDS),
        RENDER_OUTCOMES,
        JOB_EVENTS,
        DEAD_LETTER,
        JOB_CONTROL,
    )


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


# Push lanes: a push-fed topic published round-robin over ``lanes`` topics (lane 0 is the
# topic itself), each with its own push subscription to the same function. Deployed, lanes
# is 1: Pub/Sub pushes as many messages at once as the function accepts. The Pub/Sub
# emulator pushes at most 2 at a time per subscription, so the local stack uses lanes to
# push as many at once as production would (``AIPROD_PUSH_LANES``).
LANE_MARK = "--lane"


def lane_topic(topic: str, lane: int) -> str:
    return topic if lane == 0 else f"{topic}{LANE_MARK}{lane}"


def base_topic(name: str) -> str:
    """The topic a lane topic belongs to (a topic that is no lane is its own)."""
    return name.split(LANE_MARK, 1)[0]


def is_push_topic(topic: str) -> bool:
    return any(spec.topic == topic for spec in pubsub_functions())


def qualified(prefix: str, name: str) -> str:
    """A topic or subscription name with the deployment's prefix (``aiprod-jobs``)."""
    return f"{prefix}{name}"


# Tenant topics (issue 13): a configured tenant's jobs topic is pushed to route_job, its control
# topic (cancel) to control_job, each by one subscription whose name (Pub/Sub writes it; a
# publisher cannot) the function reads the tenant from: the contract between Terraform, the
# local stacks and the functions. A tenant's name never starts with ``lane`` nor holds ``--``
# (``domain.tenants``), so these names cannot collide with push lanes or with each other.
TENANT_MARK = "--"
ROUTER = "route_job"
CONTROLLER = "control_job"
_TENANT = r"[a-z0-9][a-z0-9_\-]{0,62}"


def tenant_topic(tenant: str, shared: str = JOBS) -> str:
    """A tenant's own jobs topic, ``jobs--<tenant>``, or ``shared``'s (before the prefix)."""
    return f"{shared}{TENANT_MARK}{tenant}"


def tenant_subscription(tenant: str, shared: str = JOBS) -> str:
    """The push subscription feeding a tenant's topic to route_job (control_job's: control)."""
    return f"{tenant_topic(tenant, shared)}--{ROUTER if shared == JOBS else CONTROLLER}"


# a tenant's control topic ``job-control--<tenant>``, and its push subscription to control_job
tenant_control_topic = partial(tenant_topic, shared=JOB_CONTROL)
tenant_control_subscription = partial(tenant_subscription, shared=JOB_CONTROL)


def jobs_topic(tenant: str | None) -> str:
    """Where a client publishes a job: its tenant's topic, or the shared one (no tenant)."""
    return JOBS if tenant is None else tenant_topic(tenant)


def tenant_of_topic(topic: str, shared: str = JOBS) -> str | None:
    """The tenant of a ``<shared>--<tenant>`` topic (None: no tenant topic; lanes are not)."""
    found = re.match(rf"^{re.escape(shared)}{TENANT_MARK}(?P<tenant>{_TENANT})$", topic)
    if found is None or base_topic(topic) != topic:
        return None
    return found["tenant"]


def is_topic(name: str) -> bool:
    """A topic the buses publish to: the topology's, or a tenant's jobs or control topic."""
    tenants = (tenant_of_topic(name, shared) for shared in (JOBS, JOB_CONTROL))
    return name in all_topics() or any(t is not None for t in tenants)
