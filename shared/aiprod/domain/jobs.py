"""A job and its attempts: the document's shape, its states, and how attempts are added.

The state changes a message makes (claim, report, close, finish) are pure functions in
``domain.transitions``; services load a Job in a transaction, apply one, and save the result.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field, computed_field

from aiprod.domain.messages import ErrorClass, Priority, RejectReason, RenderOutcome
from aiprod.domain.retention import job_expiry
from aiprod.domain.slots import tenant_key


class JobStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"  # a cancel request ended it (``domain.cancellation``)


TERMINAL_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.REJECTED, JobStatus.CANCELLED}
)


class AttemptState(StrEnum):
    # Every open state but QUEUED carries a lease: past it, the reconciler takes over.
    QUEUED = "QUEUED"  # hold taken, waiting for a render slot (no lease: the queue is not late)
    DISPATCHED = "DISPATCHED"  # hold taken, task published, nobody has claimed it
    RUNNING = "RUNNING"  # claimed under a lease; provider task id stored once submitted
    REPORTED = "REPORTED"  # outcome stored and published, not yet applied
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class ChainStep(BaseModel):
    backend: str
    model: str
    hold_micros: int


class CancelRequest(BaseModel):
    """A cancel asked for (``aiprod cancel``, or a message on the control topic): kept on the
    job from the request on, so every handler that ends the job ends it CANCELLED."""

    reason: str = ""
    requested_by: str | None = None
    requested_at: float


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
    queued_at: float | None = None  # when it waited for a render slot (None: it never did)
    slot_key: str | None = None  # the render slot it holds until it closes (domain.slots)
    slot_returned: bool = False  # its slot was given back (once: a late task may come after)
    claim_id: str | None = None  # the delivery that holds the claim (a stale one cannot submit)
    submitting_at: float | None = None  # intent: from now on a create may reach the provider
    restarts: int = 0  # times a claim was lost before anything was sent (started again)
    redispatched: int = 0  # times the reconciler republished the task (it looked lost)
    provider_task_id: str | None = None
    known_cost_micros: int = 0  # what the provider reported, written the first time it is seen
    keep_failures: int = 0  # failed tries to keep a finished output (bounded)
    cost_estimated: bool = False  # closed charging its hold: a create nobody could confirm
    late_task_lease: float | None = None  # a task id that came after the close, being polled
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
    announced: bool = False  # its final event is out (job.completed / failed / rejected)
    accepted_announced: bool = False  # job.accepted (and job.queued) is out (after_admission)
    cancel: CancelRequest | None = None  # a cancel was asked for: the job ends CANCELLED
    keep_s: float | None = None  # kept this long once over: the retention it was admitted under

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

    @computed_field
    @property
    def late_task_due_at(self) -> float | None:
        """When a late provider task (found after its attempt closed) must be looked at: the
        reconciler polls it and charges what it cost, whether or not the job is over."""
        leases = [a.late_task_lease for a in self.attempts if a.late_task_lease is not None]
        return min(leases, default=None)

    @computed_field
    @property
    def expire_at(self) -> float | None:
        """When the store may delete the job (``domain.retention``): only once it is over and
        no late provider task is still polled on it; never while it runs."""
        if not self.is_terminal or self.late_task_due_at is not None:
            return None
        return job_expiry(self.finished_at or self.updated_at, self.keep_s)

    @computed_field
    @property
    def queue_key(self) -> str | None:
        """Where the job waits for a render slot:
        ``{backend}|{tenant}|{rank}|{queued_at}|{job_id}``, so a range query from
        ``{backend}|{tenant}|`` reads one tenant's queue on a backend in its order (speed
        first, then oldest) and the queue's fair order picks among tenants
        (``domain.queueing``). None when its current attempt is not queued."""
        current = self.current
        if self.is_terminal or current is None or current.state is not AttemptState.QUEUED:
            return None
        who, rank = tenant_key(self.tenant), queue_rank(self.request)
        return f"{current.backend}|{who}|{rank}|{current.queued_at or 0.0:017.6f}|{self.job_id}"

    @computed_field
    @property
    def provider_task_ids(self) -> list[str]:
        """Every provider task id stored on the job's attempts: a task found by a lookup is
        adopted only if no attempt anywhere owns it already."""
        return [a.provider_task_id for a in self.attempts if a.provider_task_id]

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def attempt(self, number: int) -> Attempt | None:
        return self.attempts[number - 1] if 0 < number <= len(self.attempts) else None

    def require(self, number: int) -> Attempt:
        attempt = self.attempt(number)
        if attempt is None:
            raise ValueError(f"job {self.job_id} has no attempt {number}")
        return attempt

    def backends_tried(self) -> list[str]:
        return [a.backend for a in self.attempts]

    def retries_on(self, backend: str) -> int:
        return sum(1 for a in self.attempts if a.backend == backend) - 1


def queue_rank(request: dict) -> int:
    """A job's place among its tenant's queued jobs: ``priority: speed`` first (0), then the
    rest (1); oldest first within a rank."""
    return 0 if request.get("priority") == Priority.SPEED else 1


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


def replace_attempt(job: Job, attempt: Attempt, now: float) -> Job:
    attempts = list(job.attempts)
    attempts[attempt.number - 1] = attempt
    return job.model_copy(update={"attempts": attempts, "updated_at": now})


def recount(job: Job) -> Job:
    """The job's totals, summed again from its attempts."""
    totals = {
        "cost_micros": sum(a.cost_micros for a in job.attempts),
        "overrun_micros": sum(a.overrun_micros for a in job.attempts),
    }
    return job.model_copy(update=totals)
