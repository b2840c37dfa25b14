"""Measured quality through the real handlers: each checked output's QA score is counted per
backend and model, a rejection is counted apart from provider errors and moves the circuit,
the model's observed quality is kept beside its circuit, and the router routes on it.

The simulated provider checks nothing, so these tests wrap it in ``Checked``, which attaches
a QA report to each finished output the way the live path does (a score of 0 is a technical
rejection: FALLBACK ``qa_failed``).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from aiprod import bootstrap, topology
from aiprod.adapters.local_metrics import MemorySink
from aiprod.domain import metric_set as m
from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.health import CircuitState
from aiprod.domain.messages import ErrorClass, RenderOutcome
from aiprod.domain.observed_quality import Observed
from aiprod.domain.policy import counts_against_provider
from aiprod.domain.qa_report import QaCheck, QaReport
from aiprod.ports import ProviderResult, VideoBackend
from aiprod.repositories import circuits as circuit_records

TEXT = {"job_id": "q1", "prompt": "a paper boat in the rain"}  # runway gen4.5 first


def report(score: float) -> QaReport:
    if score == 0:
        checks = [QaCheck(name="decodes", passed=True), QaCheck(name="not_black", passed=False)]
        return QaReport(passed=False, checks=checks, reason="not_black", score=0.0)
    return QaReport(passed=True, checks=[QaCheck(name="decodes", passed=True)], score=score)


class Checked(VideoBackend):
    """A provider whose finished outputs are checked: each takes the next score (1 when none
    is left); a score of 0 fails ``not_black`` and the output is not delivered."""

    def __init__(self, inner: VideoBackend, scores: list[float]):
        self.inner, self.scores, self.name = inner, list(scores), inner.name

    def submit(self, task, before_send=None) -> str:
        return self.inner.submit(task, before_send)

    def poll(self, provider_task_id, task) -> ProviderResult:
        result = self.inner.poll(provider_task_id, task)
        if not result.done or result.error_class is not None:
            return result
        score = self.scores.pop(0) if self.scores else 1.0
        if score > 0:
            return replace(result, qa=report(score))
        return replace(
            result,
            output_uri=None,
            error_class=ErrorClass.FALLBACK,
            error_code=ErrorCode.QA_FAILED,
            message="output rejected: not_black",
            qa=report(0.0),
        )


@pytest.fixture
def checked(pipeline, monkeypatch):
    """``checked(runway=[0.9, 0])``: a pipeline whose providers' outputs are checked."""

    def build(**scores: list[float]):
        plain = bootstrap.make_backend

        def make_backend(name: str, *args, **kwargs) -> VideoBackend:
            return Checked(plain(name, *args, **kwargs), scores.get(name, []))

        monkeypatch.setattr(bootstrap, "make_backend", make_backend)
        return pipeline()

    return build


def sink(p) -> MemorySink:
    assert isinstance(p.app.metrics, MemorySink)
    return p.app.metrics


def observed(p, backend: str, model: str) -> Observed | None:
    _, book = circuit_records.load_with_quality(p.store, [backend], [backend])
    return book[backend].get(model)


def test_a_checked_success_is_measured_per_backend_and_model(checked):
    p = checked(runway=[0.9])

    p.run(TEXT)

    # THEN its measured score is the quality metric and the quality SLO's label
    assert p.job("q1")["status"] == "SUCCEEDED"
    assert sink(p).values(m.QUALITY, backend="runway", model="gen4.5") == [0.9]
    assert sum(sink(p).values(m.JOBS_FINISHED, status="completed", quality_met="true")) == 1
    assert sink(p).values(m.QUALITY_REJECTED) == []
    # AND the model's observed quality is kept beside runway's circuit
    seen = observed(p, "runway", "gen4.5")
    assert (seen.mean, seen.weight) == (0.9, 1.0)
    assert sink(p).misused == []


def test_a_delivered_output_below_the_floor_misses_the_quality_slo(checked):
    p = checked(runway=[0.4])

    p.run(TEXT)

    assert p.job("q1")["status"] == "SUCCEEDED"  # delivered (flagged), not rejected
    assert sum(sink(p).values(m.JOBS_FINISHED, status="completed", quality_met="false")) == 1


def test_a_rejected_output_counts_against_the_circuit_and_is_counted_apart(checked, caplog):
    # GIVEN runway's output failing a check; replicate's next output clean
    p = checked(runway=[0.0])

    with caplog.at_level(logging.WARNING):
        p.run(TEXT)

    # THEN the job fell back and delivered replicate's output
    job = p.job("q1")
    assert [a["backend"] for a in job["attempts"]] == ["runway", "replicate"]
    assert job["attempts"][0]["error_code"] == "qa_failed"
    # AND the rejection is a provider failure to the circuit and the errors chart ...
    assert circuit_records.load(p.store, "runway").consecutive_failures == 1
    assert sum(sink(p).values(m.BACKEND_ERRORS, backend="runway", error_class="FALLBACK")) == 1
    # ... and visible apart: rejections by check, measured 0, a log line of its own
    labels = {"backend": "runway", "model": "gen4.5"}
    assert sink(p).values(m.QUALITY_REJECTED, **labels, check="not_black") == [1]
    assert sink(p).values(m.QUALITY, **labels) == [0.0]
    assert sink(p).values(m.QUALITY, backend="replicate") == [1.0]
    [line] = [r for r in caplog.records if getattr(r, "event", None) == "qa_rejected"]
    assert (line.backend, line.reason) == ("runway", "not_black")
    assert observed(p, "runway", "gen4.5").mean == 0.0
    # the job's own quality is the delivered output's
    assert sum(sink(p).values(m.JOBS_FINISHED, status="completed", quality_met="true")) == 1


def test_three_rejections_in_a_row_open_the_backends_circuit(checked):
    # GIVEN jobs that may only use runway (else the blend moves them off it after two)
    p = checked(runway=[0.0, 0.0, 0.0])

    for i in range(3):
        p.run({**TEXT, "job_id": f"r{i}", "backends": ["runway"]})

    assert circuit_records.load(p.store, "runway").state is CircuitState.OPEN
    assert sum(sink(p).values(m.QUALITY_REJECTED, backend="runway")) == 3


def test_a_redelivered_outcome_is_measured_once(checked):
    p = checked(runway=[0.9])
    p.run(TEXT)

    # WHEN the render's outcome is delivered again
    message = p.bus.published[topology.RENDER_OUTCOMES][0]
    p.bus.publish(topology.RENDER_OUTCOMES, message.data, message.attributes)
    p.drain()

    # THEN it was counted and recorded once
    assert sink(p).values(m.QUALITY, backend="runway") == [0.9]
    assert observed(p, "runway", "gen4.5").weight == 1.0


def test_the_router_routes_around_a_model_whose_outputs_degraded(checked):
    # GIVEN runway's gen4.5 (catalog 0.95) observed scoring 0.5, again and again
    p = checked()
    record = Observed()
    for _ in range(25):
        record = record.record(0.5, p.app.clock())
    p.store.run_transaction(
        lambda tx: circuit_records.save_quality(tx, "runway", {"gen4.5": record})
    )

    # WHEN jobs ask for 0.9, and for 0.5
    p.run({**TEXT, "duration_s": 6, "quality_min": 0.9})
    p.run({**TEXT, "job_id": "q2", "duration_s": 6, "quality_min": 0.5})

    # THEN the strict one may use veo (0.92) alone; runway (blended 0.59) comes after veo
    assert [s["backend"] for s in p.job("q1")["chain"]] == ["veo"]
    assert [s["backend"] for s in p.job("q2")["chain"]] == ["veo", "runway"]


def test_a_qa_rejection_is_provider_health():
    outcome = RenderOutcome.model_validate(
        {
            "job_id": "j",
            "attempt": 1,
            "backend": "runway",
            "model": "gen4.5",
            "succeeded": False,
            "error_class": ErrorClass.FALLBACK,
            "error_code": "qa_failed",
            "qa": report(0.0).model_dump(),
        }
    )
    assert counts_against_provider(outcome)
