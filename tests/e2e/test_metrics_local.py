"""The emulator stack's function processes write their metrics to one JSON-lines file, each
as its own instance, and ``aiprod report`` reads it."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from aiprod import topology
from aiprod.adapters.local_metrics import read_points
from aiprod_tools.views.metrics import summarize
from support import jobs_terminal, statuses, wait_for

pytestmark = pytest.mark.emulator

RUNWAY_DOWN = {
    "AIPROD_SIMULATION": json.dumps({"runway": {"down": True}}),
    "AIPROD_POLL_INTERVAL_S": "0.05",
}
JOBS = ["mx1", "mx2"]


def test_each_function_process_writes_its_own_series_and_the_report_reads_them(make_stack):
    # GIVEN a stack whose runway provider is down
    stack = make_stack(RUNWAY_DOWN)

    # WHEN two jobs run (runway fails, another backend delivers)
    for job_id in JOBS:
        body = {"job_id": job_id, "prompt": "a kite over hills"}
        stack.bus.publish(topology.JOBS, json.dumps(body).encode())
    wait_for(
        lambda: jobs_terminal(stack.store, JOBS), timeout=30, describe=lambda: statuses(stack.store)
    )

    def finished_points():
        if not stack.metrics_path.is_file():
            return None
        points = read_points(stack.metrics_path)
        done = [p for p in points if p["metric"] == "jobs/finished"]
        return points if len(done) == len(JOBS) else None

    points = wait_for(finished_points, timeout=10, describe=lambda: str(stack.metrics_path))

    # THEN each function process wrote as its own function, under one task_id of its own
    task_ids = defaultdict(set)
    for point in points:
        task_ids[point["job"]].add(point["task_id"])
    assert {"route_job", "render_runway", "handle_outcome"} <= set(task_ids)
    assert all(len(ids) == 1 for ids in task_ids.values()), task_ids
    assert len({next(iter(ids)) for ids in task_ids.values()}) == len(task_ids)
    # AND the report sees what happened
    summary = summarize(points)
    assert summary.finished["completed"] == len(JOBS)
    runway = summary.backends["runway"]
    assert runway.renders == runway.failed == runway.fallbacks == len(JOBS)
