"""How long finished records are kept: when a document may be deleted by the store. Pure.

Firestore deletes a document some time after the instant in its ``expire_at`` field (a TTL
policy, infra/storage.tf; deletion typically follows within a day, never before). Only
records nothing will write again get one:

- a job once it is over (terminal, with no late provider task still polled): its end plus
  the job retention. The job document is the idempotency record of its ``job_id``, so a
  redelivered or re-sent message is recognized for at least that long; after it, the same
  ``job_id`` is accepted again as a new job;
- a budget day's ledger documents: the day's end plus the ledger retention (``aiprod spend
  --days N`` reads those days; BigQuery keeps the events for longer history);
- a dead letter: when it was first seen plus the job retention.

A running job never has one, so it can never expire under a render.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

DAY_S = 86_400.0
# Where a calendar day ends last (UTC-12): whatever zone the budget day follows, the day is
# over by then, so a day is kept at least its retention after it ends, without the zone.
LATEST_DAY_END = timedelta(days=1, hours=12)


@dataclass(frozen=True)
class Retention:
    """Seconds each kind of record is kept once finished (``AIPROD_RETENTION_DAYS``,
    ``AIPROD_LEDGER_RETENTION_DAYS``)."""

    job_s: float = 30 * DAY_S  # jobs (the idempotency window) and dead letters
    ledger_s: float = 400 * DAY_S  # budget days: a year of ``aiprod spend`` history, and more

    def __post_init__(self) -> None:
        if self.job_s <= 0 or self.ledger_s <= 0:
            # checked at start-up: zero would let the store delete a finished job at once
            raise ValueError("AIPROD_RETENTION_DAYS and AIPROD_LEDGER_RETENTION_DAYS must be > 0")


def job_expiry(finished_at: float, keep_s: float | None) -> float | None:
    """When an ended job's record may go (None: kept for good, a job admitted before
    retention existed)."""
    return None if keep_s is None else finished_at + keep_s


def day_expiry(day: str, keep_s: float) -> float:
    """When a budget day's documents may go: ``keep_s`` after the day ended everywhere."""
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)
    return (start + LATEST_DAY_END).timestamp() + keep_s


def letter_expiry(first_seen_at: float, keep_s: float) -> float:
    """When a kept dead letter may go, replayed or not."""
    return first_seen_at + keep_s
