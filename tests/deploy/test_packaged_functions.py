"""Each packaged function, installed alone in a fresh venv, imports and serves real requests.

The venvs hold only the package's ``requirements.txt`` (installed with ``--no-index``, so a
pin set that is not closed fails here). Each function is loaded by functions-framework as
the deployed HTTP-triggered function is, from its package folder, and handed what Pub/Sub
pushes (the raw push envelope) or what Cloud Scheduler sends; the emulators hold the state.
One job per backend goes route_job → render_<backend> → handle_outcome, every hop in the
venv of the function that owns it; messages between hops are pulled from taps on the topics.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from aiprod import topology
from aiprod.domain.catalog import default_catalog
from aiprod_tools.venvs import clean_env
from support import wait_for

INVOKER = Path(__file__).with_name("invoke_packaged.py")
RESULT = "invoke_packaged: "
PREFIX = "pkg-"
GCP_MODULES = (
    "aiprod.adapters.firestore_store",
    "aiprod.adapters.pubsub_bus",
    "google.cloud.monitoring_v3",
)
SDK_MODULES = {"runway": "runwayml", "veo": "google.genai", "replicate": "replicate"}
STORAGE_MODULE = "google.cloud.storage"
# Every function that keeps outputs may rate them (semantic QA): google-genai is installed
# with the storage group, and imported on the first rating only
RATER_MODULE = "google.genai"
NEVER_MODULE = "google.cloud.aiplatform"


def _invoke(python: Path, package, bodies, env, probes=()) -> dict:
    done = subprocess.run(
        [str(python), "-I", "-B", str(INVOKER), package.function, *probes],
        cwd=package.path,
        input=json.dumps(bodies),
        capture_output=True,
        text=True,
        env=clean_env(env),
        timeout=120,
    )
    assert done.returncode == 0, f"{package.function} failed:\n{done.stderr[-3000:]}"
    (line,) = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    return json.loads(line.removeprefix(RESULT))


def _envelope(project: str, function: str, data: bytes, attributes=None, message_id="1") -> dict:
    """What a push subscription POSTs: the raw Pub/Sub message and the subscription."""
    subscription = topology.qualified(PREFIX, topology.function(function).subscription)
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": dict(attributes or {}),
            "messageId": message_id,
            "publishTime": "2027-01-15T08:00:00.000Z",
        },
        "subscription": f"projects/{project}/subscriptions/{subscription}",
    }


class Tap:
    """A pull subscription on a topic, so the test can carry messages to the next hop."""

    def __init__(self, bus, topic: str):
        self._subscriber = bus.subscriber
        name = topology.qualified(bus.prefix, f"{topic}--package-test")
        self.path = self._subscriber.subscription_path(bus.project, name)
        topic_path = bus.publisher.topic_path(bus.project, topology.qualified(bus.prefix, topic))
        self._subscriber.create_subscription(request={"name": self.path, "topic": topic_path})

    def take(self, count: int, timeout: float = 30.0) -> list:
        taken: list = []

        def enough():
            response = self._subscriber.pull(
                request={"subscription": self.path, "max_messages": 10},
                timeout=5,
            )
            if response.received_messages:
                ids = [m.ack_id for m in response.received_messages]
                self._subscriber.acknowledge(request={"subscription": self.path, "ack_ids": ids})
                taken.extend(m.message for m in response.received_messages)
            return len(taken) >= count

        wait_for(enough, timeout=timeout, interval=0.1, describe=lambda: f"got {len(taken)}")
        return taken


def _duration_for(backend: str) -> int:
    models = default_catalog().backends[backend].models.values()
    return min(d for model in models for d in model.durations_s)


def _ok(result: dict, function: str) -> None:
    statuses = [answer["status"] for answer in result["answers"]]
    assert statuses and all(s == 200 for s in statuses), f"{function}: {result['answers']}"


def test_each_venv_imports_its_entry_point_adapters_and_only_its_sdks(packages, function_venvs):
    for name, package in packages.items():
        spec = topology.function(name)
        backends = [b for b in spec.extras if b in topology.BACKENDS]
        own = [f"aiprod.adapters.{b}" for b in backends]
        own += ["aiprod.adapters.kept_outputs"] if backends else []
        probes = [*GCP_MODULES, *own, *SDK_MODULES.values(), STORAGE_MODULE, NEVER_MODULE]
        # WHEN the entry point is loaded in its venv (no request yet) and the modules probed
        result = _invoke(function_venvs[name], package, [], {}, probes)
        # THEN aiprod comes from the package folder, not from the development checkout
        assert Path(result["aiprod"]).is_relative_to(package.path), result["aiprod"]
        # AND the adapters it uses import there, with exactly its own SDKs
        wanted = {*GCP_MODULES, *own}
        if backends:
            wanted |= {SDK_MODULES[b] for b in backends} | {STORAGE_MODULE, RATER_MODULE}
        imported = {module for module, ok in result["modules"].items() if ok}
        assert imported == wanted, f"{name}: missing {wanted - imported}, extra {imported - wanted}"
        # AND a function that installs google-genai only to rate has not loaded it at start-up
        if "veo" not in backends:
            assert RATER_MODULE not in result["loaded"], f"{name} loads google-genai at start-up"


@pytest.mark.emulator
def test_packaged_functions_carry_a_job_per_backend_on_the_emulators(
    emulators, project_id, packages, function_venvs
):
    from aiprod_tools.stack.provision import create_topology, emulator_bus, emulator_store

    env = {
        **emulators.env(project_id),
        "AIPROD_PREFIX": PREFIX,
        "AIPROD_PROVIDER_MODE": "simulated",
        "AIPROD_POLL_INTERVAL_S": "0.05",
        "AIPROD_METRICS": "off",
    }
    bus, store = emulator_bus(env, PREFIX), emulator_store(env)
    create_topology(bus)
    taps = {
        topic: Tap(bus, topic)
        for topic in (*map(topology.render_topic, topology.BACKENDS), topology.RENDER_OUTCOMES)
    }

    def run(function: str, bodies: list) -> dict:
        result = _invoke(function_venvs[function], packages[function], bodies, env)
        _ok(result, function)
        return result

    # GIVEN one job request per backend, each allowed on that backend only
    requests = {
        f"pkg-{b}": {
            "job_id": f"pkg-{b}",
            "prompt": f"a lighthouse at dusk on {b}",
            "duration_s": _duration_for(b),
            "backends": [b],
        }
        for b in topology.BACKENDS
    }

    # WHEN route_job (in its own venv) receives them as Pub/Sub pushes
    run(
        "route_job",
        [
            _envelope(project_id, "route_job", json.dumps(r).encode(), message_id=str(i))
            for i, r in enumerate(requests.values())
        ],
    )

    # THEN each job document is in the Firestore emulator, its first attempt dispatched
    for job_id in requests:
        doc = store.get("jobs", job_id)
        assert doc is not None, f"no job document for {job_id}"
        assert doc["attempts"][0]["backend"] == job_id.removeprefix("pkg-")

    # WHEN each render function (in its venv) gets its task, and handle_outcome the outcomes
    for backend in topology.BACKENDS:
        function = f"render_{backend}"
        (task,) = taps[topology.render_topic(backend)].take(1)
        run(function, [_envelope(project_id, function, task.data, task.attributes)])
    outcomes = taps[topology.RENDER_OUTCOMES].take(len(requests))
    run(
        "handle_outcome",
        [_envelope(project_id, "handle_outcome", m.data, m.attributes) for m in outcomes],
    )

    # THEN every job succeeded on its backend
    for job_id in requests:
        doc = store.get("jobs", job_id)
        assert doc["status"] == "SUCCEEDED", doc
        assert doc["attempts"][-1]["backend"] == job_id.removeprefix("pkg-")

    # AND the scheduled functions answer Cloud Scheduler's POST from their venvs
    for spec in topology.scheduled_functions():
        result = run(spec.name, [None])
        assert json.loads(result["answers"][0]["body"])["errors"] == 0
