"""Adversarial review of output QA (issue 14), the parts that need no server: how the render
functions are packaged for the semantic rating, and how a semantic rejection is counted."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from aiprod import topology
from aiprod.domain.messages import ErrorClass, RenderOutcome
from aiprod.domain.qa_report import QaCheck, QaReport
from aiprod.domain.semantic_qa import with_semantic
from aiprod.services.telemetry import rejected_check
from aiprod_tools.packaging import groups_for

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _spec(name: str) -> topology.FunctionSpec:
    return next(f for f in topology.FUNCTIONS if f.name == name)


@pytest.mark.parametrize("function", ["render_runway", "render_replicate"])
def test_every_render_function_can_rate_its_outputs(function):
    # the rating's SDK comes with keeping outputs (the storage group), whatever the provider
    groups = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    installed = [req for group in groups_for(_spec(function)) for req in groups[group]]
    assert any(req.startswith("google-genai") for req in installed), installed


def test_a_semantic_rejection_is_counted_as_such():
    technical = QaReport(passed=True, checks=[QaCheck(name="decodes", passed=True)], score=1.0)
    rejected = with_semantic(technical, 0.1, "gemini-2.5-flash", 900, 0.5, "fallback")
    outcome = RenderOutcome(
        job_id="j1",
        attempt=1,
        backend="runway",
        model="gen4.5",
        succeeded=False,
        error_class=ErrorClass.FALLBACK,
        error_code="qa_failed",
        qa=rejected,
    )

    assert rejected_check(outcome) == "semantic_below_threshold"
