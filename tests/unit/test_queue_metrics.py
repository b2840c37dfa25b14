"""The render queue made visible (issue 11, part 5): the gauges the reconciler writes each
sweep, the queue wait of a job that started after waiting, and ``aiprod status`` of a queued
job. Read from the embedded pipeline's memory sink and store, on the test's clock."""

from __future__ import annotations

import pytest

from aiprod.adapters.local_metrics import MemorySink
from aiprod.domain import metric_set as m
from aiprod.domain.catalog import default_catalog
from aiprod.repositories import jobs, queue
from aiprod.repositories import slots as slot_records
from aiprod.services.capacity_admin import set_capacity
from aiprod_tools import cli
from aiprod_tools.cli import context
from aiprod_tools.views.jobs import queue_line
from support.scenarios import runway_job

STALLED = {"simulation": {"runway": {"latency_s": 10_000}}, "render_deadline_s": 5}


def sink(p) -> MemorySink:
    assert isinstance(p.app.metrics, MemorySink)
    return p.app.metrics


def stalled_runway(pipeline, capacity: int, count: int):
    """Runway limited to ``capacity``, its renders never ending within the test, and
    ``count`` runway jobs admitted at once (one worker: all admitted before any render)."""
    p = pipeline(workers=1, **STALLED)
    set_capacity(p.store, default_catalog(), "runway", capacity)
    p.run(*[runway_job(i) for i in range(1, count + 1)])
    return p


def queued_since(p) -> list[float]:
    return sorted(
        j["attempts"][-1]["queued_at"] for j in p.jobs() if j["attempts"][-1]["state"] == "QUEUED"
    )


def test_each_sweep_writes_queue_depth_oldest_age_and_slots_per_backend(pipeline, clock):
    # GIVEN runway limited to 2 renders at a time, both taken, and 3 more jobs waiting
    p = stalled_runway(pipeline, capacity=2, count=5)
    waiting = queued_since(p)
    assert len(waiting) == 3

    # WHEN the reconciler sweeps 42 s after the first of them queued
    now = waiting[0] + 42.0
    p.app.reconciler.run(now)

    # THEN runway's gauges say 3 waiting, the oldest for 42 s, 2 slots of 2 in use; veo's
    # say an empty queue and its catalog capacity
    runway, veo = {"backend": "runway"}, {"backend": "veo"}
    assert sink(p).values(m.QUEUE_DEPTH, **runway) == [3]
    assert sink(p).values(m.QUEUE_OLDEST_AGE, **runway) == [pytest.approx(42.0)]
    assert sink(p).values(m.SLOTS_IN_USE, **runway) == [2]
    assert sink(p).values(m.SLOTS_CAPACITY, **runway) == [2]
    assert sink(p).values(m.QUEUE_DEPTH, **veo) == [0]
    assert sink(p).values(m.QUEUE_OLDEST_AGE, **veo) == [0.0]
    assert sink(p).values(m.SLOTS_IN_USE, **veo) == [0]
    concurrent = default_catalog().backends["veo"].capacity.concurrent
    assert sink(p).values(m.SLOTS_CAPACITY, **veo) == [concurrent]
    assert sink(p).misused == []


def test_queue_depth_is_counted_up_to_the_bounded_read(pipeline, monkeypatch):
    # GIVEN 3 jobs waiting for runway, and a queue read bounded at 2
    p = stalled_runway(pipeline, capacity=2, count=5)
    monkeypatch.setattr(queue, "QUEUE_READ", 2)

    # WHEN the reconciler sweeps, THEN the depth says the bound: that many or more
    p.app.reconciler.run()
    assert sink(p).values(m.QUEUE_DEPTH, backend="runway") == [2]


def test_a_failing_gauge_read_does_not_fail_the_sweep(pipeline, monkeypatch):
    # GIVEN reading the slots fails
    p = stalled_runway(pipeline, capacity=1, count=2)

    def broken(*args, **kwargs):
        raise RuntimeError("store unavailable")

    monkeypatch.setattr(slot_records, "in_use", broken)

    # WHEN the reconciler sweeps, THEN it completes, writing none of the queue gauges
    report = p.app.reconciler.run()
    assert report.to_json()["errors"] == 0
    assert sink(p).values(m.QUEUE_DEPTH) == sink(p).values(m.SLOTS_CAPACITY) == []


def test_queue_wait_is_observed_when_a_queued_job_starts(pipeline):
    # GIVEN runway limited to 1 render at a time, each taking 10 s
    p = pipeline(workers=1, simulation={"runway": {"latency_s": 10}}, render_deadline_s=60)
    set_capacity(p.store, default_catalog(), "runway", 1)

    # WHEN two runway jobs arrive at once (the second waits for the first's slot)
    p.run(runway_job(1), runway_job(2))

    # THEN one wait was recorded, the second job's: from its queueing to its start, when
    # the first job's outcome freed the slot (at least the first render's 10 s)
    first, second = p.job("q1")["attempts"][0], p.job("q2")["attempts"][0]
    assert first["queued_at"] is None and second["queued_at"] is not None
    waited = second["claimed_at"] - second["queued_at"]
    assert waited >= 10
    assert sink(p).values(m.QUEUE_WAIT, backend="runway") == [pytest.approx(waited)]
    assert sink(p).values(m.QUEUE_WAIT, backend="veo") == []


def test_status_shows_where_a_queued_job_waits_how_long_and_its_position(
    pipeline, clock, monkeypatch, capsys
):
    # GIVEN runway's one slot taken and three jobs waiting behind it
    p = stalled_runway(pipeline, capacity=1, count=4)
    monkeypatch.setattr(context, "make_app", lambda: p.app)
    clock.now = p.job("q3")["attempts"][0]["queued_at"] + 125

    # WHEN an operator asks for the third job and for the running first one
    assert cli.main(["status", "q3"]) == 0
    third = capsys.readouterr().out
    assert cli.main(["status", "q1"]) == 0
    running = capsys.readouterr().out

    # THEN the waiting one says its backend, its wait and its place; the running one none
    assert "queued    on runway for 2m05s, position 2 (1 ahead)" in third
    assert "queued " not in running


def test_queued_ahead_counts_the_jobs_before_it_within_a_bounded_read(pipeline):
    # GIVEN four jobs waiting for runway's one slot (q2..q5, in that order)
    p = stalled_runway(pipeline, capacity=1, count=5)
    last, running = jobs.load(p.store, "q5"), jobs.load(p.store, "q1")

    # THEN the last has three ahead; a read bounded at 2 says 2 (that many or more); a job
    # that is not queued has none
    assert queue.queued_ahead(p.store, last) == 3
    assert queue.queued_ahead(p.store, last, limit=2) == 2
    assert queue.queued_ahead(p.store, running) == 0


def test_a_position_past_the_bounded_read_is_shown_as_a_floor(pipeline):
    p = stalled_runway(pipeline, capacity=1, count=2)
    waiting = jobs.load(p.store, "q2")
    now = waiting.current.queued_at + 3725

    line = queue_line(waiting, now, queue.QUEUE_READ)

    assert line == "queued    on runway for 1h02m, position 1001+ (1000+ ahead)"
