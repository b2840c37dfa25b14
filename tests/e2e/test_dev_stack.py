"""``aiprod dev`` as it builds its stack (``dev.dev_stack``): the shell's ``AIPROD_*``
settings reach the functions, and a function process that dies is back, on its port, with a
line on the console and a structured log line.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
import urllib.error
import urllib.request
import uuid

import pytest

from aiprod import topology
from aiprod_tools.stack.dev import dev_stack
from aiprod_tools.stack.supervisor import Supervisor
from support import jobs_terminal, statuses, wait_for

pytestmark = pytest.mark.emulator

BACK_WITHIN_S = 5.0  # issue 12: a killed function is back within 5 s


@pytest.fixture
def start_dev(emulators, tmp_path):
    """``start_dev(environ)`` → the stack ``aiprod dev`` would run in a shell with ``environ``."""
    started = []

    def start(environ: dict[str, str]):
        shell = {"AIPROD_METRICS": f"jsonl:{tmp_path / 'metrics.jsonl'}", **environ}
        stack = dev_stack(emulators, shell, project=f"aiprod-dev-{uuid.uuid4().hex[:8]}")
        started.append(stack)
        return stack.start()

    yield start
    for stack in started:
        stack.stop()


def publish(stack, **request) -> None:
    stack.bus.publish(topology.JOBS, json.dumps(request).encode())


def settled(stack, job_ids: list[str]) -> dict[str, dict]:
    return wait_for(
        lambda: jobs_terminal(stack.store, job_ids),
        timeout=60,
        interval=0.2,
        describe=lambda: f"jobs: {statuses(stack.store)}",
    )


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def test_the_shells_budget_and_lease_take_effect_in_the_functions(start_dev):
    # GIVEN a shell with a $0.50 day and a 7777 s lease (defaults: $100 and 600 s), whose
    # replicate renders take 2 s
    shell = {
        "AIPROD_DAILY_BUDGET_USD": "0.5",
        "AIPROD_LEASE_S": "7777",
        "AIPROD_POLL_INTERVAL_S": "0.05",
        "AIPROD_SIMULATION": json.dumps({"replicate": {"latency_s": 2}}),
    }
    stack = start_dev(shell)

    # WHEN a job whose cheapest hold is $0.80 and a $0.10 job are published
    publish(stack, job_id="dear", prompt="an eight-second hold", duration_s=8)
    publish(stack, job_id="cheap", prompt="a ten-cent hold", priority="cost")
    running = wait_for(lambda: open_attempt(stack, "cheap"), timeout=30, interval=0.05)
    docs = settled(stack, ["dear", "cheap"])

    # THEN the functions refused the dear job over the shell's budget
    assert (docs["dear"]["status"], docs["dear"]["reason"]) == ("REJECTED", "over_budget")

    # AND ran the cheap one under the shell's lease (renewed by a claim or a poll at most)
    assert docs["cheap"]["status"] == "SUCCEEDED", docs["cheap"]
    lease = running["lease_expires_at"] - running["dispatched_at"]
    assert 7777 <= lease < 7777 + 60, running


def open_attempt(stack, job_id: str) -> dict | None:
    """The job's first attempt while it holds a lease (the lease is cleared when it ends)."""
    job = stack.store.get("jobs", job_id)
    attempts = (job or {}).get("attempts") or [{}]
    return attempts[0] if attempts[0].get("lease_expires_at") else None


def test_a_killed_function_is_back_on_its_port_and_jobs_still_run(start_dev, caplog):
    # GIVEN the dev stack under its supervisor
    stack = start_dev({"AIPROD_POLL_INTERVAL_S": "0.05"})
    console: list[str] = []
    supervisor = Supervisor(stack, notify=console.append).start()
    caplog.set_level(logging.INFO, logger="aiprod_tools.stack")
    try:
        dead = stack.functions["route_job"]

        # WHEN the route_job process is killed (its gunicorn worker is left orphaned)
        killed_at = time.monotonic()
        os.kill(dead.process.pid, signal.SIGKILL)

        # THEN a new process answers HTTP on the same URL within 5 s
        def back():
            child = stack.functions["route_job"]
            return child is not dead and answers(child.url)

        wait_for(back, timeout=30, interval=0.05, describe=lambda: "\n".join(console))
        took = time.monotonic() - killed_at
        assert took < BACK_WITHIN_S, f"back after {took:.1f} s: {console}"
        assert stack.functions["route_job"].url == dead.url
        assert supervisor.restarts == {"route_job": 1}

        # AND a job published afterwards goes through it and succeeds
        publish(stack, job_id="after-kill", prompt="a kite after the crash")
        assert settled(stack, ["after-kill"])["after-kill"]["status"] == "SUCCEEDED"
    finally:
        supervisor.stop()

    # AND the console and the structured log said so
    assert any("route_job exited" in line for line in console), console
    assert any("route_job restarted on" in line for line in console), console
    events = [getattr(r, "event", None) for r in caplog.records]
    assert events.count("function_exited") == 1 and events.count("function_restarted") == 1


def test_a_function_whose_port_was_taken_restarts_elsewhere_and_its_pushes_follow(start_dev):
    # GIVEN the dev stack, route_job dead and its port taken by another process meanwhile
    stack = start_dev({"AIPROD_POLL_INTERVAL_S": "0.05"})
    dead = stack.functions["route_job"]
    os.killpg(dead.process.pid, signal.SIGKILL)
    dead.process.wait()
    squatter = socket.socket()
    # (as a server would: the dead process's connections may hold the port in TIME_WAIT)
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        wait_for(lambda: _bound(squatter, dead.port), timeout=30, interval=0.05)
        squatter.listen()

        # WHEN it is restarted
        child = stack.restart("route_job")
    finally:
        squatter.close()

    # THEN it answers on another port, and a job published now is pushed there and succeeds
    assert child.url != dead.url and answers(child.url)
    publish(stack, job_id="moved", prompt="a kite on a new port")
    assert settled(stack, ["moved"])["moved"]["status"] == "SUCCEEDED"


def _bound(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
