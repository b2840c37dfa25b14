"""Reserve an attempt: its hold and the DISPATCHED attempt, in the caller's transaction.

Its task is owed by the committed job (``effects.dispatched``) and sent by the outbox.
"""

from __future__ import annotations

from aiprod.domain.budget import scopes_for
from aiprod.domain.jobs import ChainStep, Job, add_attempt
from aiprod.domain.queueing import with_slot
from aiprod.ports import Transaction
from aiprod.services.ledger import Ledger
from aiprod.services.slots import SlotBook


def reserve_attempt(
    tx: Transaction,
    book: Ledger,
    job: Job,
    options: list[tuple[ChainStep, float]],
    day: str,
    now: float,
    lease_s: float,
    slots: SlotBook | None = None,
) -> tuple[Job, int] | None:
    """In the caller's transaction: hold the budget for the first option that fits every
    scope of the job, and add it as the next attempt: DISPATCHED with a render slot, or
    QUEUED when its backend has none free (``slots``; None: no capacity limit). Returns the
    job and the index of the option taken, or None when none fits."""
    scopes = scopes_for(job.tenant)
    for index, (step, not_before) in enumerate(options):
        keys = book.reserve(tx, scopes, day, step.hold_micros)
        if keys is None:
            continue
        lease_until = max(now, not_before) + lease_s
        job = add_attempt(job, step, keys, now, not_before=not_before, lease_expires_at=lease_until)
        if slots is not None:
            job = with_slot(job, slots.take(tx, step.backend), now)
        return job, index
    return None
