"""An attempt waiting for a render slot, the order the queue serves, and its start when a
slot frees. Pure.

An admitted job is funded: its hold is taken at admission whether it runs or waits. A queued
attempt has no lease (time in the queue is not a lost worker) but its job's wall time runs.

Order, for one backend's free slot: first the tenant holding the fewest of its slots (so one
tenant's 1,000-job batch does not starve another's 3 jobs), and within a tenant its
``priority: speed`` jobs, then the oldest (``Job.queue_key``). A backend whose own queue is
empty takes a job queued elsewhere that may spill to it: ``priority: speed``, or waited past
the spill bound, with this backend later in its chain and not tried yet.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiprod.domain.jobs import Attempt, AttemptState, ChainStep, Job, queue_rank, replace_attempt
from aiprod.domain.messages import Priority
from aiprod.domain.slots import tenant_key


def with_slot(job: Job, slot_key: str | None, now: float) -> Job:
    """The current (new) attempt runs with ``slot_key``, or waits for one (QUEUED)."""
    attempt = job.current
    if slot_key is not None:
        return replace_attempt(job, attempt.model_copy(update={"slot_key": slot_key}), now)
    queued = attempt.model_copy(
        update={"state": AttemptState.QUEUED, "queued_at": now, "lease_expires_at": None}
    )
    return replace_attempt(job, queued, now)


def holds_slot(attempt: Attempt | None) -> bool:
    """The attempt took a render slot and has not given it back."""
    return attempt is not None and attempt.slot_key is not None and not attempt.slot_returned


def frees_slot(attempt: Attempt | None) -> bool:
    """Does closing this attempt give its render slot back? Not while a late provider task
    still renders for it: the slot is kept until that task is charged."""
    return holds_slot(attempt) and attempt.late_task_lease is None


def slot_given_back(job: Job, number: int, now: float) -> Job:
    """Note that attempt ``number`` gave its slot back, so no later path (a late task that
    turns up after the close, charged or given up) gives it back a second time."""
    attempt = job.require(number)
    return replace_attempt(job, attempt.model_copy(update={"slot_returned": True}), now)


def is_queued(job: Job) -> bool:
    attempt = job.current
    return not job.is_terminal and attempt is not None and attempt.state is AttemptState.QUEUED


def start_queued(job: Job, slot_key: str, now: float, lease_s: float) -> Job | None:
    """A slot freed: the queued attempt is dispatched with it. None when the job's current
    attempt is not waiting any more (another drainer started it, or it was closed)."""
    if not is_queued(job):
        return None
    attempt = job.current
    update = {
        "state": AttemptState.DISPATCHED,
        "slot_key": slot_key,
        "lease_expires_at": max(now, attempt.not_before) + lease_s,
    }
    return replace_attempt(job, attempt.model_copy(update=update), now)


def fairest(heads: list[Job], held: Mapping[str, int]) -> Job | None:
    """The job a free slot goes to, among each tenant's first queued job: the tenant holding
    the fewest of the backend's slots, then speed before the rest, then the oldest."""

    def order(job: Job) -> tuple[int, int, float, str]:
        waiting = job.current.queued_at or 0.0
        return (held.get(tenant_key(job.tenant), 0), queue_rank(job.request), waiting, job.job_id)

    return min(heads, key=order, default=None)


def may_spill(job: Job, now: float, spill_after_s: float, stuck: bool = False) -> bool:
    """May this queued job take free capacity on another backend of its chain? A speed job
    may at once, any job once it waited ``spill_after_s``, or when the backend it waits for
    admits nothing now (``stuck``: its circuit is open)."""
    if not is_queued(job):
        return False
    speed = job.request.get("priority") == Priority.SPEED
    return speed or stuck or now - (job.current.queued_at or now) >= spill_after_s


def past_wall_time(job: Job, now: float) -> bool:
    """Out of wall time: not to be started (the reconciler fails it and frees its hold)."""
    return job.wall_deadline_at is not None and now >= job.wall_deadline_at


def spill_step(job: Job, backend: str) -> ChainStep | None:
    """The step on ``backend`` a queued job may move to: later in its chain than the backend
    it waits for, and not tried by an earlier attempt. None when there is none."""
    backends = [step.backend for step in job.chain]
    waiting_on = job.current.backend
    if backend not in backends or waiting_on not in backends:
        return None
    tried = {a.backend for a in job.attempts[:-1]}
    if backends.index(backend) <= backends.index(waiting_on) or backend in tried:
        return None
    return job.chain[backends.index(backend)]


def spilled(
    job: Job, step: ChainStep, ledger_keys: list[str], slot_key: str, now: float, lease_s: float
) -> Job:
    """The queued attempt moves to ``step``'s backend and starts there, holding its budget
    under ``ledger_keys``: nothing was sent for it, so it is the same attempt, not a
    fallback, and the backend it waited for stays untried."""
    attempt = job.current
    update = {
        "backend": step.backend,
        "model": step.model,
        "hold_micros": step.hold_micros,
        "ledger_keys": ledger_keys,
        "not_before": 0.0,  # a retry's backoff was for the backend it waited for
        "state": AttemptState.DISPATCHED,
        "slot_key": slot_key,
        "lease_expires_at": now + lease_s,
    }
    return replace_attempt(job, attempt.model_copy(update=update), now)


def jobs_ahead(own: int, others: Mapping[str, int], held: Mapping[str, int], mine: str) -> int:
    """About how many queued jobs start before a job with ``own`` of its tenant's jobs ahead
    of it: each freed slot goes to the tenant holding the fewest, so the tenants take turns,
    and each other tenant (``others``: how many it has waiting) starts as many as ``own``,
    one more if it holds fewer slots than the job's tenant ``mine`` (``held``). Jobs that
    spill elsewhere make the real number smaller."""
    ahead = own
    for tenant, waiting in others.items():
        turns = own + (1 if held.get(tenant, 0) < held.get(mine, 0) else 0)
        ahead += min(waiting, turns)
    return ahead
