"""plan_after_failure: the pure choice of what may follow a failed attempt, in order."""

from __future__ import annotations

import pytest

from aiprod.domain.health import Circuit, CircuitState
from aiprod.domain.jobs import ChainStep, Job, JobStatus, add_attempt, new_job
from aiprod.domain.messages import ErrorClass, RenderOutcome
from aiprod.domain.policy import Next, RetryPolicy, plan_after_failure

NOW = 1_800_000_000.0
CHAIN = [
    ChainStep(backend="runway", model="gen4.5", hold_micros=600_000),
    ChainStep(backend="veo", model="veo-3.1-fast-generate-001", hold_micros=400_000),
    ChainStep(backend="replicate", model="wan-video/wan-2.2-t2v-fast", hold_micros=100_000),
]


def _job_after_one_attempt() -> Job:
    job = new_job(
        {"job_id": "j", "prompt": "p"}, "h", None, NOW, status=JobStatus.RUNNING, chain=CHAIN
    )
    return add_attempt(job, CHAIN[0], ["global@2027-01-15#000"], NOW)


def _failure(error_class: ErrorClass, code: str = "throttled") -> RenderOutcome:
    return RenderOutcome(
        job_id="j", attempt=1, backend="runway", model="gen4.5", succeeded=False,
        error_class=error_class, error_code=code,
    )  # fmt: skip


def _plan(outcome: RenderOutcome, circuits=None):
    return plan_after_failure(_job_after_one_attempt(), outcome, RetryPolicy(), circuits or {}, NOW)


def test_retry_same_comes_first_with_a_backoff_then_the_untried_backends():
    plan = _plan(_failure(ErrorClass.RETRY_SAME))
    options = [(o.decision, o.step.backend, o.not_before) for o in plan.options]
    # THEN a retry on runway after 2 s, and, should its hold not fit, veo then replicate
    assert options == [
        (Next.RETRY_SAME, "runway", NOW + 2),
        (Next.FALLBACK, "veo", 0.0),
        (Next.FALLBACK, "replicate", 0.0),
    ]


@pytest.mark.parametrize(("asked", "waited"), [(None, 2), (0.5, 2), (15, 15), (3_600, 60)])
def test_a_retry_waits_at_least_what_the_provider_asked_for_capped(asked, waited):
    # GIVEN a throttled attempt whose provider sent Retry-After (or none)
    outcome = _failure(ErrorClass.RETRY_SAME).model_copy(update={"retry_after_s": asked})

    retry = _plan(outcome).options[0]

    # THEN the retry waits the longer of the backoff (2 s) and the ask, at most max_backoff_s
    assert (retry.decision, retry.not_before) == (Next.RETRY_SAME, NOW + waited)


def test_fallback_skips_tried_backends_and_open_circuits():
    circuits = {"veo": Circuit("veo", state=CircuitState.OPEN, open_until=NOW + 60)}
    plan = _plan(_failure(ErrorClass.FALLBACK, "unavailable"), circuits)
    assert [(o.decision, o.step.backend) for o in plan.options] == [(Next.FALLBACK, "replicate")]


def test_retry_into_an_open_circuit_is_not_offered():
    circuits = {"runway": Circuit("runway", state=CircuitState.OPEN, open_until=NOW + 60)}
    plan = _plan(_failure(ErrorClass.RETRY_SAME), circuits)
    assert [o.decision for o in plan.options] == [Next.FALLBACK, Next.FALLBACK]


def test_terminal_fails_at_once_and_unknown_waits():
    terminal = _plan(_failure(ErrorClass.TERMINAL, "bad_request"))
    unknown = _plan(_failure(ErrorClass.UNKNOWN, "caller_timeout"))
    assert (terminal.options, terminal.reason, terminal.wait) == ((), "terminal", False)
    assert (unknown.options, unknown.wait) == ((), True)


def test_caps_end_the_job_as_attempts_exhausted():
    plan = plan_after_failure(
        _job_after_one_attempt(), _failure(ErrorClass.FALLBACK, "unavailable"),
        RetryPolicy(max_attempts=1), {}, NOW,
    )  # fmt: skip
    assert (plan.options, plan.reason) == ((), "attempts_exhausted")
