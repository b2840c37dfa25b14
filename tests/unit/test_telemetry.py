"""What the services report, read from the embedded pipeline's memory sink.

Each scenario runs the real handlers and checks the metrics against what the store recorded,
so a metric that drifts from the truth (a fallback counted twice, a cost missed) fails here.
"""

from __future__ import annotations

import pytest

from aiprod.adapters.local_metrics import MemorySink
from aiprod.domain import metric_set as m
from aiprod_tools.embedded import run_schedules

TEXT = {"job_id": "t1", "prompt": "a paper boat in the rain"}


def metrics(p) -> MemorySink:
    sink = p.app.metrics
    assert isinstance(sink, MemorySink)
    return sink


def total(p, metric: m.Metric, **labels: str) -> float:
    return sum(metrics(p).values(metric, **labels))


def test_a_job_that_falls_back_is_counted_once_at_each_step(pipeline):
    # GIVEN runway refusing every submit
    p = pipeline(simulation={"runway": {"down": True}})

    # WHEN a text job runs (runway fails, the next backend delivers)
    p.run(TEXT)

    # THEN the metrics tell the same story as the job document
    job = p.job("t1")
    first, last = (a["backend"] for a in job["attempts"])
    assert (first, job["status"]) == ("runway", "SUCCEEDED")
    assert total(p, m.JOBS_ACCEPTED, backend="runway") == 1
    assert total(p, m.BACKEND_REQUESTS) == 2
    assert total(p, m.BACKEND_ERRORS, backend="runway", error_class="FALLBACK") == 1
    assert total(p, m.FALLBACKS, from_backend="runway", to_backend=last) == 1
    finished = {"status": "completed", "backend": last, "within_latency_target": "true"}
    # the simulated backend's outputs are not checked: no measured quality, none assumed
    assert total(p, m.JOBS_FINISHED, **finished, quality_met="n/a") == 1
    assert metrics(p).values(m.QUALITY) == []
    assert total(p, m.BACKEND_COST) == pytest.approx(job["cost_micros"] / 1e6)
    assert metrics(p).values(m.JOB_COST, backend=last) == [job["cost_micros"] / 1e6]
    minutes = job["request"]["duration_s"] / 60
    assert metrics(p).values(m.COST_PER_MINUTE, backend=last) == [
        pytest.approx(job["cost_micros"] / 1e6 / minutes)
    ]
    assert len(metrics(p).values(m.PIPELINE_DURATION, status="completed")) == 1
    assert len(metrics(p).values(m.RENDER_DURATION, backend=last, status="succeeded")) == 1
    assert metrics(p).misused == []


def test_rejections_are_counted_by_reason(pipeline):
    # GIVEN a budget that fits one job (whichever of t1 and t2 comes first)
    p = pipeline(global_limit_micros=100_000)

    p.run(
        b"not json",
        {"job_id": "bad", "prompt": ""},
        TEXT,
        {**TEXT, "prompt": "the same job_id, another request"},
        {**TEXT, "job_id": "t2"},
    )

    assert total(p, m.JOBS_REJECTED, reason="invalid") == 2
    assert (
        total(p, m.JOBS_REJECTED, reason="over_budget")
        + total(p, m.JOBS_REJECTED, reason="budget_critical")
        == 1
    )
    assert total(p, m.JOBS_REJECTED, reason="conflict") == 1
    assert total(p, m.JOBS_ACCEPTED) == 1


def test_a_failed_job_is_counted_with_its_reason_and_no_cost_or_quality(pipeline):
    p = pipeline(simulation={"runway": {"down": True}, "replicate": {"down": True}})

    p.run({**TEXT, "backends": ["runway", "replicate"]})

    reason = p.job("t1")["reason"]
    assert total(p, m.JOBS_FINISHED, status="failed", reason=reason, quality_met="n/a") == 1
    assert metrics(p).values(m.JOB_COST) == [] and metrics(p).values(m.QUALITY) == []
    assert len(metrics(p).values(m.PIPELINE_DURATION, status="failed")) == 1


def test_circuit_and_budget_gauges_follow_what_routing_saw(pipeline):
    # GIVEN runway down: three failures open its circuit
    p = pipeline(simulation={"runway": {"down": True}})

    for i in range(4):
        p.run({**TEXT, "job_id": f"c{i}", "tenant": "acme"})

    runway = metrics(p).values(m.CIRCUIT_STATE, backend="runway")
    assert runway[0] == 0 and runway[-1] == 2  # closed, then open (cooling down)
    assert set(metrics(p).values(m.CIRCUIT_STATE, backend="veo")) == {0}
    used = metrics(p).values(m.BUDGET_UTILIZATION, scope="tenant:acme")
    assert len(used) == 4 and used == sorted(used) and used[-1] > 0
    assert metrics(p).values(m.BUDGET_SPENT, scope="global")


def test_an_overrun_is_counted_per_backend(pipeline):
    p = pipeline(simulation={"runway": {"cost_ratio": 1.5}})

    p.run(TEXT)

    assert total(p, m.OVERRUNS, backend="runway") == 1


def test_the_reconciler_reports_its_actions_and_the_stuck_attempts(pipeline, clock):
    # GIVEN a job whose render task was lost (its function never ran)
    p = pipeline()
    p.bus.subscribe("render-runway", lambda data, attributes: None)
    p.run(TEXT)

    # WHEN its lease expires and the reconciler sweeps
    clock.advance(p.app.settings.lease_s + 1)
    run_schedules(p.app)

    # THEN it counted what it did and how many attempts it found stuck
    assert total(p, m.RECONCILER_ACTIONS, action="redispatched") == 1
    assert metrics(p).values(m.STUCK_JOBS)[-1] == 1


def test_the_reconcilers_sweep_reports_every_circuit_while_no_job_arrives(pipeline, clock):
    # GIVEN runway's circuit opened by three failures, then a quiet hour with no job
    p = pipeline(simulation={"runway": {"down": True}})
    for i in range(3):
        p.run({**TEXT, "job_id": f"q{i}"})
    before = {b: len(metrics(p).values(m.CIRCUIT_STATE, backend=b)) for b in ("runway", "veo")}

    # WHEN only the scheduled sweep runs
    clock.advance(30)
    run_schedules(p.app)

    # THEN each backend's circuit state was reported again, runway's still open
    for backend in ("runway", "veo"):
        assert len(metrics(p).values(m.CIRCUIT_STATE, backend=backend)) == before[backend] + 1
    assert metrics(p).values(m.CIRCUIT_STATE, backend="runway")[-1] == 2
