"""The reconcile function is HTTP-triggered: wired in the topology, the entry point and the
CLI, and never given a Pub/Sub subscription."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from aiprod import bootstrap, handlers, logs, topology
from aiprod.config import Settings
from aiprod_tools import cli
from aiprod_tools.embedded import embedded_app
from aiprod_tools.stack.provision import create_topology

ROOT = Path(__file__).resolve().parents[2]
TEXT = {"job_id": "t1", "prompt": "a paper boat in the rain"}


def load_entry_point(name: str):
    spec = importlib.util.spec_from_file_location(
        f"{name}_main", ROOT / "functions" / name / "main.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("spec", topology.FUNCTIONS, ids=lambda s: s.name)
def test_every_function_has_an_entry_point_and_a_handler(spec):
    module = load_entry_point(spec.name)
    assert callable(getattr(module, spec.name))
    table = handlers.HANDLERS if spec.trigger == "pubsub" else handlers.SCHEDULED
    assert spec.name in table


def test_reconcile_is_scheduled_over_http_with_no_topic():
    spec = topology.function("reconcile")
    assert (spec.trigger, spec.topic, spec.signature_type) == ("http", None, "http")
    assert spec.schedule == "* * * * *"
    assert spec not in topology.pubsub_functions()
    with pytest.raises(KeyError):
        _ = spec.subscription


class _Recorder:
    """Just enough of the Pub/Sub clients for ``create_topology`` to talk to."""

    def __init__(self) -> None:
        self.subscriptions: list[dict] = []

    def topic_path(self, project: str, name: str) -> str:
        return f"projects/{project}/topics/{name}"

    def subscription_path(self, project: str, name: str) -> str:
        return f"projects/{project}/subscriptions/{name}"

    def create_topic(self, request: dict) -> None:
        pass

    def create_subscription(self, request: dict) -> None:
        self.subscriptions.append(request)


def test_local_topology_pushes_to_every_pubsub_function_and_never_to_an_http_one():
    # GIVEN an endpoint for every function of the topology, the HTTP one included
    clients = _Recorder()
    bus = SimpleNamespace(
        project="p", prefix="aiprod-", publisher=clients, subscriber=clients, lanes=1
    )
    endpoints = {spec.name: f"http://127.0.0.1/{spec.name}" for spec in topology.FUNCTIONS}

    # WHEN the local topology is created
    create_topology(bus, endpoints)

    # THEN each Pub/Sub function has its push subscription and reconcile has none
    pushed = {
        s["push_config"]["push_endpoint"] for s in clients.subscriptions if "push_config" in s
    }
    assert pushed == {endpoints[spec.name] for spec in topology.pubsub_functions()}
    assert endpoints["reconcile"] not in pushed


def stuck_app(clock):
    """An embedded app with one job whose render task was lost, past its lease."""
    app = embedded_app(Settings(lease_s=60), clock=clock, sleep=clock.sleep, workers=2)
    app.bus.subscribe(topology.render_topic("runway"), lambda data, attributes: None)
    app.bus.publish(topology.JOBS, json.dumps(TEXT).encode())
    assert app.bus.drain(10)
    clock.advance(60)
    return app


def test_http_entry_point_runs_one_sweep_and_answers_its_report(clock, monkeypatch, trace_reset):
    # GIVEN the deployed function's module, on an app with a stuck job
    module = load_entry_point("reconcile")
    app = stuck_app(clock)
    monkeypatch.setattr(module, "cloud_app", lambda: app)

    # WHEN Cloud Scheduler calls it (Cloud Run adds the trace header)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    request = SimpleNamespace(headers={"X-Cloud-Trace-Context": f"{trace}/1;o=1"})
    body, status = module.reconcile(request=request)

    # THEN it ran one sweep and answered the counts, its log lines under the request's trace
    assert status == 200
    assert body["redispatched"] == 1
    assert logs.trace_context.get() == trace
    app.bus.close()


def test_cli_prints_the_report(clock, monkeypatch, capsys):
    # GIVEN the CLI's app is one with a stuck job
    app = stuck_app(clock)
    monkeypatch.setattr(bootstrap, "App", lambda settings: app)

    # WHEN `aiprod reconcile --json` runs, then `aiprod reconcile`
    assert cli.main(["reconcile", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert cli.main(["reconcile"]) == 0
    table = capsys.readouterr().out

    # THEN the first sweep republished the task; the table of the second shows every action
    assert report["redispatched"] == 1
    assert [line.split()[0] for line in table.splitlines()[2:]] == list(report)
    app.bus.close()
