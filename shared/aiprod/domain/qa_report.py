"""An output's QA report, as it travels: on the render outcome, the attempt and the job
event. The rules that fill it are ``output_qa`` (technical) and ``semantic_qa``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class QaCheck(BaseModel):
    """One check: ``measured`` as text always, and ``value`` when it is a number (so a
    column of the events table has one type: BigQuery takes the event as it is)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    passed: bool
    measured: str = ""
    value: float | None = None
    expected: str = ""

    @model_validator(mode="before")
    @classmethod
    def _number_as_value(cls, data: Any) -> Any:
        measured = data.get("measured") if isinstance(data, dict) else None
        if isinstance(measured, int | float) and not isinstance(measured, bool):
            return {**data, "measured": f"{measured:g}", "value": float(measured)}
        return data


class QaReport(BaseModel):
    """The checks of one output; ``score`` is the measured quality (``combined_score``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    passed: bool
    checks: list[QaCheck]
    reason: str = ""  # the failed checks, in order ("" when it passed)
    score: float
    semantic_score: float | None = None
    semantic_model: str | None = None
    semantic_cost_micros: int = 0
    semantic_error: str = ""  # why a semantic rating is missing (delivered on technical QA)
    flagged: bool = False  # delivered below the semantic threshold (AIPROD_QA_POLICY=flag)
    checked_uri: str | None = None  # the object that was checked (kept even when rejected)

    @property
    def failed_checks(self) -> list[str]:
        return [c.name for c in self.checks if not c.passed]


def combined_score(technical_passed: bool, semantic: float | None) -> float:
    """The measured quality of one output: 0 when a technical check failed, else the
    semantic score when there is one, else 1 (a clean technical pass)."""
    if not technical_passed:
        return 0.0
    return 1.0 if semantic is None else round(min(1.0, max(0.0, semantic)), 4)
