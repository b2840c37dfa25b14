"""A job and its attempts, with every state change as a pure transition.

Services load a Job inside a transaction, call one of these, and write the result back, so
the rules (which attempt may run, what a duplicate is) live here and are unit-tested alone.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, computed_field

from aiprod.domain.messages import ErrorClass, RejectReason, RenderOutcome


class JobStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.REJECTED})


class AttemptState(StrEnum):
    # Every open state carries a lease: past it, the reconciler takes the attempt over.
    DISPATCHED = "DISPATCHED"  # hold taken, task published, nobody has claimed it
    RUNNING = "RUNNING"  # claimed under a lease; provider task id stored once submitted
    REPORTED = "REPORTED"  # outcome stored and published, not yet applied
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class Claim(StrEnum):
    """What a render function should do with a delivered task."""

    START = "start"  # first claim: submit to the provider
    RESUME = "resume"  # lease expired after a submit: poll the stored task, never resubmit
    REPUBLISH = "republish"  # outcome already known: publish it again (it may have been lost)
    BUSY = "busy"  # another delivery holds a live lease: acknowledge, do nothing
    ORPHANED = "orphaned"  # lease expired before a task id was stored: the reconciler decides
    STALE = "stale"  # attempt finished, superseded or unknown: acknowledge, do nothing


class ChainStep(BaseModel):
    backend: str
    model: str
    hold_micros: int


class Attempt(BaseModel):
    number: int
    backend: str
    model: str
    state: AttemptState = AttemptState.DISPATCHED
    hold_micros: int
    ledger_keys: list[str]
    dispatched_at: float
    not_before: float = 0.0
    lease_expires_at: float | None = None
    claimed_at: float | None = None
    redispatched: int = 0  # times the reconciler republished the task (it looked lost)
    provider_task_id: str | None = None
    outcome: RenderOutcome | None = None
    error_class: ErrorClass | None = None
    error_code: str | None = None
    reason: str | None = None
    cost_micros: int = 0
    overrun_micros: int = 0  # what the provider charged above the hold
    finished_at: float | None = None

    @property
    def holds_budget(self) -> bool:
        return self.state not in (AttemptState.SUCCEEDED, AttemptState.FAILED)


class Job(BaseModel):
    job_id: str
    payload_hash: str
    request: dict
    tenant: str | None = None
    status: JobStatus
    reason: RejectReason | str | None = None
    message: str = ""
    chain: list[ChainStep] = Field(default_factory=list)
    attempts: list[Attempt] = Field(default_factory=list)
    output_uri: str | None = None
    cost_micros: int = 0
    overrun_micros: int = 0
    max_wall_s: float | None = None  # the wall-time cap the job was admitted under
    created_at: float
    updated_at: float
    finished_at: float | None = None
    announced: bool = False  # job.completed / job.failed is out (see effects.after_outcome)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    # Top-level copies for the reconciler's range queries, derived here so every save keeps
    # them right. None once the job is over: a range query never matches None.

    @computed_field
    @property
    def lease_expires_at(self) -> float | None:
        """The open attempt's lease, while the job runs."""
        current = self.current
        return None if self.is_terminal or current is None else current.lease_expires_at

    @computed_field
    @property
    def wall_deadline_at(self) -> float | None:
        """When the job's wall time runs out, while it runs."""
        if self.is_terminal or self.max_wall_s is None:
            return None
        return self.created_at + self.max_wall_s

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def attempt(self, number: int) -> Attempt | None:
        return self.attempts[number - 1] if 0 < number <= len(self.attempts) else None

    def backends_tried(self) -> list[str]:
        return [a.backend for a in self.attempts]

    def retries_on(self, backend: str) -> int:
        return sum(1 for a in self.attempts if a.backend == backend) - 1


def new_job(request: dict, payload_hash: str, tenant: str | None, now: float, **fields) -> Job:
    job_id = request["job_id"]
    base = dict(job_id=job_id, payload_hash=payload_hash, request=request, tenant=tenant)
    return Job(**base, created_at=now, updated_at=now, **fields)


def add_attempt(job: Job, step: ChainStep, ledger_keys: list[str], now: float, **extra) -> Job:
    attempt = Attempt(
        number=len(job.attempts) + 1,
        backend=step.backend,
        model=step.model,
        hold_micros=step.hold_micros,
        ledger_keys=ledger_keys,
        dispatched_at=now,
        lease_expires_at=extra.pop("lease_expires_at", None),
        **extra,
    )
    return job.model_copy(update={"attempts": [*job.attempts, attempt], "updated_at": now})


def claim(job: Job, number: int, now: float, lease_s: float) -> tuple[Job, Claim]:
    """Decide what a delivered task may do, and take the lease when it may run."""
    attempt = job.attempt(number)
    if attempt is None or job.is_terminal or number != len(job.attempts):
        return job, Claim.STALE
    if attempt.state is AttemptState.REPORTED:
        return job, Claim.REPUBLISH
    if attempt.state is AttemptState.DISPATCHED:
        return _lease(job, attempt, now, lease_s, AttemptState.RUNNING), Claim.START
    if attempt.state is not AttemptState.RUNNING:
        return job, Claim.STALE
    if attempt.lease_expires_at is not None and now < attempt.lease_expires_at:
        return job, Claim.BUSY
    if attempt.provider_task_id is None:
        return job, Claim.ORPHANED
    return _lease(job, attempt, now, lease_s, AttemptState.RUNNING), Claim.RESUME


def record_submission(job: Job, number: int, task_id: str, now: float, lease_s: float) -> Job:
    attempt = _require(job, number).model_copy(
        update={"provider_task_id": task_id, "lease_expires_at": now + lease_s}
    )
    return replace_attempt(job, attempt, now)


def record_report(
    job: Job,
    outcome: RenderOutcome,
    now: float,
    lease_s: float,
    from_states: frozenset[AttemptState] = frozenset({AttemptState.RUNNING}),
) -> Job:
    """Store the outcome on the attempt before publishing it, so a lost publish is repeated.

    A REPORTED attempt gets a fresh lease: if the outcome is never applied, the reconciler
    publishes it again when the lease runs out. An UNKNOWN outcome keeps the attempt RUNNING
    and its lease as it was, so the stored task is polled once the lease expires.
    ``from_states``: the reconciler also reports a DISPATCHED attempt (a timeout).
    """
    attempt = _require(job, outcome.attempt)
    if attempt.state not in from_states:
        return job
    if outcome.error_class is ErrorClass.UNKNOWN:
        update = {"reason": outcome.message, "error_code": outcome.error_code}
    else:
        update = {
            "state": AttemptState.REPORTED,
            "outcome": outcome,
            "lease_expires_at": now + lease_s,
        }
    return replace_attempt(job, attempt.model_copy(update=update), now)


def close_attempt(job: Job, outcome: RenderOutcome, now: float) -> Job:
    """Mark the attempt finished as the outcome says (the hold is settled alongside).

    A cost above the hold is charged in full; the excess is kept as ``overrun_micros`` on the
    attempt and the job, so an overrun is visible where the money was spent."""
    held = _require(job, outcome.attempt)
    attempt = held.model_copy(
        update={
            "state": AttemptState.SUCCEEDED if outcome.succeeded else AttemptState.FAILED,
            "outcome": outcome,
            "error_class": outcome.error_class,
            "error_code": outcome.error_code,
            "reason": None if outcome.succeeded else outcome.message,
            "cost_micros": outcome.cost_micros,
            "overrun_micros": max(0, outcome.cost_micros - held.hold_micros),
            "provider_task_id": outcome.provider_task_id or None,
            "finished_at": now,
            "lease_expires_at": None,
        }
    )
    closed = replace_attempt(job, attempt, now)
    totals = {
        "cost_micros": sum(a.cost_micros for a in closed.attempts),
        "overrun_micros": sum(a.overrun_micros for a in closed.attempts),
    }
    return closed.model_copy(update=totals)


def succeed(job: Job, output_uri: str | None, now: float) -> Job:
    return job.model_copy(
        update={
            "status": JobStatus.SUCCEEDED,
            "output_uri": output_uri,
            "finished_at": now,
            "updated_at": now,
        }
    )


def fail(job: Job, reason: str, message: str, now: float) -> Job:
    return job.model_copy(
        update={
            "status": JobStatus.FAILED,
            "reason": reason,
            "message": message,
            "finished_at": now,
            "updated_at": now,
        }
    )


def is_outcome_pending(job: Job, outcome: RenderOutcome) -> bool:
    """True when this outcome is for the attempt that is still open (not a duplicate)."""
    attempt = job.attempt(outcome.attempt)
    return (
        attempt is not None
        and not job.is_terminal
        and outcome.attempt == len(job.attempts)
        and attempt.state in (AttemptState.RUNNING, AttemptState.REPORTED)
    )


def announce(job: Job) -> Job:
    """The final event is out: a redelivered outcome need not publish it again."""
    return job.model_copy(update={"announced": True})


def _lease(job: Job, attempt: Attempt, now: float, lease_s: float, state: AttemptState) -> Job:
    leased = attempt.model_copy(
        update={"state": state, "lease_expires_at": now + lease_s, "claimed_at": now}
    )
    return replace_attempt(job, leased, now)


def _require(job: Job, number: int) -> Attempt:
    attempt = job.attempt(number)
    if attempt is None:
        raise ValueError(f"job {job.job_id} has no attempt {number}")
    return attempt


def replace_attempt(job: Job, attempt: Attempt, now: float) -> Job:
    attempts = list(job.attempts)
    attempts[attempt.number - 1] = attempt
    return job.model_copy(update={"attempts": attempts, "updated_at": now})
