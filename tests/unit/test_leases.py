"""Leases, pure: the query fields every save keeps, and what an expired attempt is due."""

from __future__ import annotations

import pytest

from aiprod.domain import leases
from aiprod.domain.jobs import AttemptState, ChainStep, Job, JobStatus, add_attempt, new_job
from aiprod.domain.leases import Due
from aiprod.domain.messages import ErrorClass, RenderOutcome
from aiprod.domain.policy import counts_against_provider
from aiprod.domain.submissions import record_submission
from aiprod.domain.transitions import Claim, claim, close_attempt, record_report

T = 5_000.0
LEASE = 600.0
WALL = 3_600.0
RUNWAY = ChainStep(backend="runway", model="gen4.5", hold_micros=600_000)


def dispatched(now: float = T) -> Job:
    job = new_job(
        {"job_id": "j1", "prompt": "p"},
        "hash",
        None,
        now,
        status=JobStatus.RUNNING,
        chain=[RUNWAY],
        max_wall_s=WALL,
    )
    return add_attempt(job, RUNWAY, ["global@2027-01-15#000"], now, lease_expires_at=now + LEASE)


def running(task_id: str | None = None) -> Job:
    job, decision = claim(dispatched(), 1, T, LEASE)
    assert decision is Claim.START
    return job if task_id is None else record_submission(job, 1, task_id, T, LEASE)[0]


def success(cost: int = 600_000) -> RenderOutcome:
    return RenderOutcome(
        job_id="j1", attempt=1, backend="runway", model="gen4.5", succeeded=True, cost_micros=cost
    )


# -- the query fields -------------------------------------------------------------------------


def test_a_running_job_exposes_its_attempt_lease_and_its_wall_deadline():
    # GIVEN a dispatched job WHEN it is dumped as the store sees it
    doc = dispatched().model_dump(mode="json")

    # THEN the lease and the deadline are top-level fields a range query can read
    assert (doc["lease_expires_at"], doc["wall_deadline_at"]) == (T + LEASE, T + WALL)


def test_a_finished_job_has_neither_so_no_range_query_finds_it():
    job = close_attempt(running("task-1"), success(), T + 5)
    job = job.model_copy(update={"status": JobStatus.SUCCEEDED})
    doc = job.model_dump(mode="json")
    assert (doc["lease_expires_at"], doc["wall_deadline_at"]) == (None, None)


def test_query_fields_in_a_stored_document_are_ignored_on_load():
    job = running("task-1")
    assert Job.model_validate(job.model_dump(mode="json"), strict=False) == job


def test_reporting_an_outcome_gives_the_attempt_a_fresh_lease():
    reported = record_report(running("task-1"), success(), T + 100, LEASE)
    assert reported.current.state is AttemptState.REPORTED
    assert reported.lease_expires_at == T + 100 + LEASE


# -- what is due --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job", "now", "due"),
    [
        (dispatched(), T + LEASE - 1, Due.NOTHING),
        (dispatched(), T + LEASE, Due.REDISPATCH),
        (leases.redispatch(dispatched(), T + LEASE, LEASE), T + 2 * LEASE, Due.TIME_OUT),
        (running(), T + LEASE - 1, Due.NOTHING),
        (running(), T + LEASE, Due.TIME_OUT),
        (running("task-1"), T + LEASE, Due.POLL),
        (record_report(running("task-1"), success(), T, LEASE), T + LEASE, Due.REPUBLISH),
        (record_report(running("task-1"), success(), T, LEASE), T + 1, Due.NOTHING),
    ],
    ids=[
        "dispatched, live lease",
        "dispatched, expired: publish again",
        "dispatched, already republished: time out",
        "running, live lease",
        "running without a task id: time out",
        "running with a task id: poll",
        "reported, expired: publish the outcome again",
        "reported, live lease",
    ],
)
def test_what_an_attempt_is_due(job, now, due):
    assert leases.due(job, now) is due


def test_past_the_wall_time_an_unclaimed_attempt_is_overdue_even_under_its_lease():
    job = dispatched()
    assert leases.due(job, T + WALL) is Due.OVERDUE


def test_past_the_wall_time_a_live_render_is_left_alone_until_its_lease_expires():
    # GIVEN a render claimed just before the wall deadline
    job, _ = claim(dispatched(), 1, T + WALL - 10, LEASE)

    # THEN it is not cut off while its lease lives, and judged when the lease expires
    assert leases.due(job, T + WALL + 1) is Due.NOTHING
    assert leases.due(job, T + WALL - 10 + LEASE) is Due.OVERDUE


def test_timeout_is_a_fallback_that_does_not_count_against_the_provider():
    outcome = leases.timeout_outcome(running(), T + LEASE)
    assert (outcome.error_class, outcome.error_code) == (ErrorClass.FALLBACK, "lease_expired")
    assert not counts_against_provider(outcome)


def test_wall_time_exceeded_is_terminal():
    outcome = leases.overdue_outcome(dispatched(), T + WALL)
    assert (outcome.error_class, outcome.error_code) == (ErrorClass.TERMINAL, "wall_time_exceeded")


def test_a_timeout_is_stored_on_an_unclaimed_attempt_as_its_outcome():
    # GIVEN an attempt nobody claimed WHEN the reconciler reports its timeout
    job = dispatched()
    outcome = leases.timeout_outcome(job, T + LEASE)
    reported = record_report(job, outcome, T + LEASE, LEASE, leases.CLOSABLE)

    # THEN it is REPORTED with that outcome, so a late task delivery only republishes it
    assert reported.current.state is AttemptState.REPORTED
    assert reported.current.outcome == outcome
    assert claim(reported, 1, T + LEASE + 1, LEASE)[1] is Claim.REPUBLISH


def test_close_attempt_records_an_overrun_on_the_attempt_and_the_job():
    job = close_attempt(running("task-1"), success(cost=900_000), T + 5)
    assert (job.current.overrun_micros, job.overrun_micros) == (300_000, 300_000)
    assert job.cost_micros == 900_000


def test_a_create_never_confirmed_is_closed_charging_its_hold():
    # GIVEN a claimed attempt whose create answer was lost: UNKNOWN, no task id stored
    lost = RenderOutcome(
        job_id="j1",
        attempt=1,
        backend="runway",
        model="gen4.5",
        succeeded=False,
        error_class=ErrorClass.UNKNOWN,
        error_code="submit_unconfirmed",
    )
    job = record_report(running(), lost, T, LEASE)

    # WHEN its lease expires (or the wall time passes)
    timed_out = leases.timeout_outcome(job, T + LEASE)
    overdue = leases.overdue_outcome(job, T + WALL)

    # THEN the worst case is charged, not released: the provider may be rendering it
    assert timed_out.cost_micros == overdue.cost_micros == RUNWAY.hold_micros
    assert "never confirmed" in timed_out.message


def test_a_lost_process_with_nothing_submitted_is_closed_charging_nothing():
    assert leases.timeout_outcome(running(), T + LEASE).cost_micros == 0
    assert leases.timeout_outcome(dispatched(), T + LEASE).cost_micros == 0
