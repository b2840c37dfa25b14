"""Reserve an attempt: its hold, its render slot (or its place in the queue) and the attempt
itself, in the caller's transaction.

Its task is owed by the committed job (``effects.dispatched``) and sent by the outbox.
"""

from __future__ import annotations

from aiprod.domain.budget import scopes_for
from aiprod.domain.jobs import ChainStep, Job, add_attempt
from aiprod.domain.messages import Priority
from aiprod.domain.queueing import with_slot
from aiprod.ports import Transaction
from aiprod.services.ledger import Ledger
from aiprod.services.slots import SlotBook

Options = list[tuple[ChainStep, float]]


def reserve_attempt(
    tx: Transaction,
    book: Ledger,
    job: Job,
    options: Options,
    day: str,
    now: float,
    lease_s: float,
    slots: SlotBook | None = None,
) -> tuple[Job, int] | None:
    """In the caller's transaction: hold the budget for the first option that fits every
    scope of the job, and add it as the next attempt: DISPATCHED with a render slot, or
    QUEUED when its backend has none free (``slots``; None: no capacity limit). A
    ``priority: speed`` job first takes a free slot on any of its options whose hold fits.
    Returns the job and the index of the option taken, or None when none fits."""
    if slots is not None and job.request.get("priority") == Priority.SPEED:
        running = _first_free(tx, book, job, options, day, now, lease_s, slots)
        if running is not None:
            return running
    scopes = scopes_for(job.tenant)
    for index, (step, not_before) in enumerate(options):
        keys = book.reserve(tx, scopes, day, step.hold_micros)
        if keys is None:
            continue
        job = _added(job, step, keys, now, not_before, lease_s)
        if slots is not None:
            job = with_slot(job, slots.take(tx, step.backend, job.tenant, now), now)
        return job, index
    return None


def _first_free(tx, book, job, options: Options, day, now, lease_s, slots: SlotBook):
    """The first option with a free slot whose hold fits, started there; None: every
    capable backend is full (the job then waits for its first choice)."""
    scopes = scopes_for(job.tenant)
    for index, (step, not_before) in enumerate(options):
        slot = slots.take(tx, step.backend, job.tenant, now)
        if slot is None:
            continue
        keys = book.reserve(tx, scopes, day, step.hold_micros)
        if keys is None:
            slots.untake(tx, slot, job.tenant)
            continue
        return with_slot(_added(job, step, keys, now, not_before, lease_s), slot, now), index
    return None


def _added(job: Job, step: ChainStep, keys: list[str], now: float, not_before, lease_s) -> Job:
    lease_until = max(now, not_before) + lease_s
    return add_attempt(job, step, keys, now, not_before=not_before, lease_expires_at=lease_until)
