"""The local stack's concurrency gate (``aiprod_tools.stack.gate``): past a function's
concurrency it answers 429 at once, as Cloud Run does, and counts what it refused."""

from __future__ import annotations

import io
import json
import threading

import pytest

from aiprod_tools.stack.gate import REFUSED_MESSAGE, STATS_PATH, ConcurrencyGate
from aiprod_tools.stack.serve import threads_for


class HeldApp:
    """A WSGI app whose requests stay in flight until ``release`` is set."""

    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)

    def __call__(self, environ, start_response):
        self.entered.release()
        self.release.wait(timeout=10)
        start_response("204 No Content", [])
        return [b""]


def call(gate, path="/", method="POST"):
    """Run one request through the gate like a server: iterate, then close."""
    seen = {}

    def start_response(status, headers):
        seen["status"] = status

    body = gate({"PATH_INFO": path, "REQUEST_METHOD": method}, start_response)
    data = b"".join(body)
    if hasattr(body, "close"):
        body.close()
    return int(seen["status"].split()[0]), data


def test_requests_past_the_concurrency_are_refused_at_once_and_counted():
    # GIVEN a gate of 2 around an app that holds its requests
    app, log = HeldApp(), io.StringIO()
    gate = ConcurrencyGate(app, 2, name="render_runway", log=log)
    answers: list[int] = []
    held = [threading.Thread(target=lambda: answers.append(call(gate)[0])) for _ in range(2)]
    for thread in held:
        thread.start()
    for _ in held:
        assert app.entered.acquire(timeout=10)

    # WHEN a third request arrives while both are in flight
    status, _ = call(gate)

    # THEN it is answered 429 without waiting, logged as a refused push, and counted
    assert status == 429
    entry = json.loads(log.getvalue().splitlines()[-1])
    assert entry["event"] == "push_refused" and entry["message"].startswith(REFUSED_MESSAGE)
    assert entry["function"] == "render_runway"
    assert gate.stats() == {
        "concurrency": 2,
        "served": 0,
        "refused": 1,
        "in_flight": 2,
        "max_in_flight": 2,
    }

    # AND once the held requests finish, the gate admits again
    app.release.set()
    for thread in held:
        thread.join(timeout=10)
    assert answers == [204, 204]
    assert call(gate)[0] == 204
    assert gate.stats()["served"] == 3 and gate.stats()["in_flight"] == 0


def test_the_counters_are_served_without_taking_a_place():
    app = HeldApp()
    app.release.set()
    gate = ConcurrencyGate(app, 1, log=io.StringIO())
    status, body = call(gate, STATS_PATH, "GET")
    assert status == 200
    assert json.loads(body)["concurrency"] == 1 and json.loads(body)["served"] == 0


def test_a_failing_app_gives_its_place_back():
    def broken(environ, start_response):
        raise RuntimeError("boom")

    gate = ConcurrencyGate(broken, 1, log=io.StringIO())
    for _ in range(2):
        with pytest.raises(RuntimeError):
            call(gate)
    assert gate.stats()["in_flight"] == 0 and gate.stats()["refused"] == 0


def test_gunicorn_gets_more_threads_than_the_gate_admits():
    # so the request past the limit finds a thread, and the gate (not a queue) answers it
    assert threads_for(4) > 4 and threads_for(1) > 1
