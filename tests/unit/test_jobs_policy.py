"""Job and attempt transitions (claim, report, close) and the after-failure policy."""

from __future__ import annotations

import pytest

from aiprod.domain.jobs import AttemptState, ChainStep, Job, JobStatus, add_attempt, new_job
from aiprod.domain.messages import ErrorClass, RenderOutcome
from aiprod.domain.policy import Next, RetryPolicy, after_failure, counts_against_provider
from aiprod.domain.submissions import record_submission
from aiprod.domain.transitions import (
    Claim,
    claim,
    close_attempt,
    fail,
    is_outcome_pending,
    record_report,
    succeed,
)

T = 5_000.0
LEASE = 600.0
RUNWAY = ChainStep(backend="runway", model="gen4.5", hold_micros=600_000)
REPLICATE = ChainStep(backend="replicate", model="wan-video/wan-2.2-t2v-fast", hold_micros=100_000)


def job_with(*steps: ChainStep, now: float = T) -> Job:
    job = new_job(
        {"job_id": "j1", "prompt": "p"},
        "hash",
        None,
        now,
        status=JobStatus.RUNNING,
        chain=[RUNWAY, REPLICATE],
    )
    for step in steps:
        job = add_attempt(job, step, ["global@2027-01-15"], now)
    return job


def outcome(
    attempt: int = 1,
    backend: str = "runway",
    error_class: ErrorClass | None = ErrorClass.FALLBACK,
    code: str | None = "unavailable",
    cost: int = 0,
) -> RenderOutcome:
    return RenderOutcome(
        job_id="j1",
        attempt=attempt,
        backend=backend,
        model="m",
        succeeded=error_class is None,
        error_class=error_class,
        error_code=None if error_class is None else code,
        cost_micros=cost,
        provider_task_id="task-1",
        output_uri="gs://out/j1.mp4" if error_class is None else None,
    )


def started(job: Job, number: int = 1, now: float = T) -> Job:
    job, decision = claim(job, number, now, LEASE)
    assert decision is Claim.START
    return job


# -- claim ------------------------------------------------------------------------------------


def test_first_claim_starts_and_takes_the_lease():
    # GIVEN a dispatched attempt WHEN its task is delivered
    job, decision = claim(job_with(RUNWAY), 1, T + 1, LEASE)

    # THEN the render may start, under a lease
    attempt = job.attempt(1)
    assert decision is Claim.START
    assert attempt.state is AttemptState.RUNNING
    assert (attempt.claimed_at, attempt.lease_expires_at) == (T + 1, T + 1 + LEASE)


def test_second_delivery_under_a_live_lease_before_a_task_id_is_busy():
    # GIVEN a claimed attempt whose provider create may be in flight (no task id yet)
    job = started(job_with(RUNWAY))

    # WHEN its task is delivered again under the live lease
    again, decision = claim(job, 1, T + LEASE - 1, LEASE)

    # THEN it is acknowledged and nothing changes (a second create could render twice)
    assert decision is Claim.BUSY
    assert again == job


def test_redelivery_under_a_live_lease_with_a_task_id_resumes_polling_at_once():
    # GIVEN a render that stored its provider task id, then its worker was killed
    job = record_submission(started(job_with(RUNWAY)), 1, "task-1", T + 1, LEASE)[0]

    # WHEN Pub/Sub redelivers the task seconds later, well inside the lease
    resumed, decision = claim(job, 1, T + 5, LEASE)

    # THEN the stored task is polled again now (never resubmitted), under a fresh lease
    assert decision is Claim.RESUME
    assert resumed.attempt(1).provider_task_id == "task-1"
    assert resumed.attempt(1).lease_expires_at == T + 5 + LEASE


def test_expired_lease_with_a_provider_task_resumes_polling():
    # GIVEN a render that stored its provider task id, then its worker vanished
    job = record_submission(started(job_with(RUNWAY)), 1, "task-1", T + 1, LEASE)[0]

    # WHEN the task is redelivered after the lease
    resumed, decision = claim(job, 1, T + 1 + LEASE, LEASE)

    # THEN the stored task is resumed (never resubmitted) under a new lease
    assert decision is Claim.RESUME
    assert resumed.attempt(1).provider_task_id == "task-1"
    assert resumed.attempt(1).lease_expires_at == T + 1 + 2 * LEASE


def test_expired_lease_without_a_task_id_is_orphaned():
    job = started(job_with(RUNWAY))
    again, decision = claim(job, 1, T + LEASE, LEASE)
    assert decision is Claim.ORPHANED
    assert again == job


def test_reported_attempt_republishes_its_outcome():
    job = record_report(started(job_with(RUNWAY)), outcome(error_class=None, cost=1), T + 2, LEASE)
    assert job.attempt(1).state is AttemptState.REPORTED
    assert claim(job, 1, T + 3, LEASE)[1] is Claim.REPUBLISH


@pytest.mark.parametrize("number", [0, 1, 3])
def test_superseded_or_unknown_attempt_is_stale(number):
    # GIVEN a job on its second attempt
    job = job_with(RUNWAY, REPLICATE)
    assert claim(job, number, T, LEASE) == (job, Claim.STALE)


def test_any_attempt_of_a_finished_job_is_stale():
    job = succeed(started(job_with(RUNWAY)), "gs://out", T + 1)
    assert claim(job, 1, T + 2, LEASE) == (job, Claim.STALE)


# -- report, close ----------------------------------------------------------------------------


def test_unknown_outcome_keeps_the_attempt_running_to_be_polled_again():
    job = started(job_with(RUNWAY))
    unknown = outcome(error_class=ErrorClass.UNKNOWN, code="caller_timeout")
    reported = record_report(job, unknown, T + 5, LEASE)
    assert reported.attempt(1).state is AttemptState.RUNNING
    assert reported.attempt(1).error_code == "caller_timeout"


def test_close_attempt_records_cost_and_sums_it_on_the_job():
    job = job_with(RUNWAY)
    job = close_attempt(job, outcome(cost=50_000), T + 1)
    job = add_attempt(job, REPLICATE, ["global@2027-01-15"], T + 1)
    job = close_attempt(
        job, outcome(attempt=2, backend="replicate", error_class=None, cost=100_000), T + 2
    )
    assert [a.state for a in job.attempts] == [AttemptState.FAILED, AttemptState.SUCCEEDED]
    assert job.cost_micros == 150_000
    assert job.attempts[0].reason == "" and job.attempts[1].reason is None


def test_outcome_is_pending_only_for_the_open_last_attempt():
    job = started(job_with(RUNWAY))
    assert is_outcome_pending(job, outcome())
    assert not is_outcome_pending(job, outcome(attempt=2))
    closed = close_attempt(job, outcome(), T + 1)
    assert not is_outcome_pending(closed, outcome())
    assert not is_outcome_pending(fail(job, "terminal", "x", T + 1), outcome())


# -- after_failure ----------------------------------------------------------------------------

POLICY = RetryPolicy()  # 6 attempts, 2 retries on the same backend, 1 h wall time


def test_terminal_error_fails_at_once():
    assert (
        after_failure(job_with(RUNWAY), outcome(error_class=ErrorClass.TERMINAL), POLICY, T)
        is Next.FAIL
    )


def test_unknown_outcome_waits_even_past_the_caps():
    job = job_with(*[RUNWAY] * 6)
    late = T + POLICY.max_wall_s + 1
    assert after_failure(job, outcome(6, error_class=ErrorClass.UNKNOWN), POLICY, late) is Next.WAIT


def test_retry_same_until_max_retries_then_fallback():
    retry = ErrorClass.RETRY_SAME
    # 1st and 2nd failure on runway: retry there; the 3rd (two retries used): fall back
    assert (
        after_failure(job_with(RUNWAY), outcome(1, error_class=retry), POLICY, T) is Next.RETRY_SAME
    )
    two = job_with(RUNWAY, RUNWAY)
    assert after_failure(two, outcome(2, error_class=retry), POLICY, T) is Next.RETRY_SAME
    three = job_with(RUNWAY, RUNWAY, RUNWAY)
    assert after_failure(three, outcome(3, error_class=retry), POLICY, T) is Next.FALLBACK


def test_retries_are_counted_per_backend():
    job = job_with(RUNWAY, RUNWAY, RUNWAY, REPLICATE)
    out = outcome(4, backend="replicate", error_class=ErrorClass.RETRY_SAME)
    assert after_failure(job, out, POLICY, T) is Next.RETRY_SAME


@pytest.mark.parametrize("error_class", [ErrorClass.FALLBACK, None])
def test_fallback_class_and_unclassified_failures_fall_back(error_class):
    failed = outcome(error_class=error_class).model_copy(update={"succeeded": False})
    assert after_failure(job_with(RUNWAY), failed, POLICY, T) is Next.FALLBACK


def test_attempt_cap_fails_the_job():
    five = job_with(RUNWAY, REPLICATE, RUNWAY, REPLICATE, RUNWAY)
    six = add_attempt(five, REPLICATE, [], T)
    assert after_failure(five, outcome(5), POLICY, T) is Next.FALLBACK
    assert after_failure(six, outcome(6, backend="replicate"), POLICY, T) is Next.FAIL
    assert after_failure(six, outcome(6, error_class=ErrorClass.RETRY_SAME), POLICY, T) is Next.FAIL


def test_wall_time_cap_fails_the_job():
    job = job_with(RUNWAY)
    assert after_failure(job, outcome(), POLICY, T + POLICY.max_wall_s - 1) is Next.FALLBACK
    assert after_failure(job, outcome(), POLICY, T + POLICY.max_wall_s) is Next.FAIL


def test_backoff_doubles_and_is_capped():
    assert [POLICY.backoff(n) for n in (1, 2, 3, 4, 10)] == [2.0, 4.0, 8.0, 16.0, 60.0]


# -- circuit accounting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "counts"),
    [
        (outcome(error_class=None, cost=1), True),
        (outcome(error_class=ErrorClass.FALLBACK, code="unavailable"), True),
        (
            outcome(error_class=ErrorClass.RETRY_SAME, code="throttled"),
            False,
        ),  # rate limit: not broken
        (outcome(error_class=ErrorClass.FALLBACK, code="content_policy"), False),
        (outcome(error_class=ErrorClass.FALLBACK, code="bad_request"), False),
        (outcome(error_class=ErrorClass.RETRY_SAME, code="caller_timeout"), False),
        (outcome(error_class=ErrorClass.TERMINAL, code="invalid_prompt"), False),
        (outcome(error_class=ErrorClass.UNKNOWN, code="lost"), False),
    ],
    ids=lambda v: v if isinstance(v, bool) else f"{v.error_class}-{v.error_code}",
)
def test_counts_against_provider(out, counts):
    assert counts_against_provider(out) is counts
