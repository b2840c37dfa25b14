"""``aiprod demo`` (``make run``): its final tables, on a batch small enough for the unit tier."""

from __future__ import annotations

import json
import logging

import pytest

from aiprod.repositories import capacity
from aiprod_tools import demo
from aiprod_tools.views.metrics import HEADERS


@pytest.fixture
def root_logging():
    """The demo sends the root logger to its log file; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers, root.level = handlers, level


def test_the_demo_table_shows_the_jobs_that_waited_for_a_render_slot(
    tmp_path, monkeypatch, capsys, root_logging
):
    # GIVEN three jobs for veo, which the demo runs one render at a time
    batch = tmp_path / "jobs.jsonl"
    lines = [
        {"job_id": f"v{i}", "prompt": f"kite {i}", "duration_s": 4, "backends": ["veo"]}
        for i in range(3)
    ]
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines))
    apps = []
    build = demo.embedded_app
    monkeypatch.setattr(
        demo, "embedded_app", lambda *a, **k: apps.append(build(*a, **k)) or apps[0]
    )

    # WHEN the demo runs them
    assert demo.run_demo(batch, tmp_path / "demo.log", spacing_s=0) == 0
    out = capsys.readouterr().out

    # THEN veo ran at the demo's capacity, and the final table's veo row counts as queued
    # exactly the jobs whose attempt waited for a slot
    [app] = apps
    assert capacity.load(app.store, "veo").concurrent == demo.DEMO_CAPACITY["veo"]
    waited = sum(1 for job in app.store.list("jobs") if job["attempts"][0]["queued_at"])
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("backend "))
    assert header.split()[:8] == [*HEADERS[:7], "wait"]
    veo = next(line.split() for line in lines[lines.index(header) :] if line.startswith("veo "))
    assert (veo[1], veo[6]) == ("3", str(waited))
    assert (veo[7] == "-") == (waited == 0)
