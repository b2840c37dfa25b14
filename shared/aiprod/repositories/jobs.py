"""Jobs: ``jobs/{job_id}``, the whole job (request, chain, attempts) as one document.

Every save also writes the job's computed ``lease_expires_at`` and ``wall_deadline_at`` at
the top level (None once the job is over, which a range query never matches), and
``late_task_due_at`` (a provider task found after its attempt closed, over or not), so the
reconciler finds what is due with single-field range queries and no composite index.
"""

from __future__ import annotations

import logging

from aiprod.domain.jobs import Job
from aiprod.domain.transitions import announce, announce_accepted
from aiprod.ports import DocumentStore, Transaction

log = logging.getLogger(__name__)
COLLECTION = "jobs"
# The top-level fields whose ``<= now`` finds a job the reconciler must look at.
DUE_FIELDS = ("lease_expires_at", "wall_deadline_at", "late_task_due_at")


def decode(doc: dict) -> Job:
    return Job.model_validate(doc, strict=False)


def encode(job: Job) -> dict:
    return job.model_dump(mode="json")


def load(reader: Transaction | DocumentStore, job_id: str) -> Job | None:
    doc = reader.get(COLLECTION, job_id)
    return None if doc is None else decode(doc)


def save(tx: Transaction, job: Job) -> None:
    tx.set(COLLECTION, job.job_id, encode(job))


def due(store: DocumentStore, now: float, batch: int) -> tuple[list[Job], list[str]]:
    """Jobs whose lease or wall time ran out by ``now``: at most ``batch`` per field, each
    once (a plain read: the reconciler re-reads each in its own conditioned transaction),
    and the ids of those whose document does not decode (one bad document must not stop
    the others)."""
    found: dict[str, dict] = {}
    for field in DUE_FIELDS:
        for doc in store.query(COLLECTION, field, "<=", now, batch):
            job_id = doc.get("job_id")
            if not isinstance(job_id, str):  # each one counts: no two merged under "None"
                job_id = f"<no job_id, created_at {doc.get('created_at')}, #{len(found)}>"
            found.setdefault(job_id, doc)
    readable, unreadable = [], []
    for job_id, doc in found.items():
        try:
            readable.append(decode(doc))
        except ValueError:  # pydantic's ValidationError is a ValueError
            unreadable.append(job_id)
    return readable, unreadable


def quarantine(store: DocumentStore, job_id: str, now: float) -> None:
    """Take an unreadable job document out of the reconciler's queries (its due fields
    cleared, the moment noted), so a few bad documents cannot fill every sweep's batch. The
    rest of the document is kept as it is, for an operator to repair."""

    def body(tx: Transaction) -> None:
        doc = tx.get(COLLECTION, job_id)
        if doc is not None:
            cleared = dict.fromkeys((*DUE_FIELDS, "queue_key"))
            tx.set(COLLECTION, job_id, {**doc, **cleared, "quarantined_at": now})

    store.run_transaction(body)


def every(store: DocumentStore, limit: int) -> list[Job]:
    """Every job, up to ``limit`` (for local runs and small projects; no order promised)."""
    return [decode(doc) for doc in store.list(COLLECTION, limit)]


def task_owned(store: DocumentStore, task_id: str) -> bool:
    """Is this provider task id stored on some job's attempt already?"""
    return bool(store.query(COLLECTION, "provider_task_ids", "array_contains", task_id, 1))


def updated_since(store: DocumentStore, since: float, limit: int) -> list[Job]:
    """Jobs changed at or after ``since`` (the budget audit's scan). A document that does
    not decode is skipped and logged (the reconciler quarantines it): its hold then shows
    as unexplained, which is what the audit should say."""
    return readable(store.query(COLLECTION, "updated_at", ">=", since, limit))


def created_since(store: DocumentStore, since: float, limit: int) -> list[Job]:
    """Jobs created at or after ``since``, oldest first, at most ``limit`` (``aiprod jobs
    list``: one single-field range query; any other filter is applied by the caller)."""
    return readable(store.query(COLLECTION, "created_at", ">=", since, limit))


def readable(docs: list[dict]) -> list[Job]:
    """The documents that decode; one that does not is logged and skipped, so it cannot
    block the others (the reconciler quarantines it)."""
    found = []
    for doc in docs:
        try:
            found.append(decode(doc))
        except ValueError:  # pydantic's ValidationError is a ValueError
            log.error("unreadable job document skipped", extra={"job_id": str(doc.get("job_id"))})
    return found


def note_announced(store: DocumentStore, job_id: str) -> None:
    """Mark the job's final event as published, in its own small transaction."""
    _note(store, job_id, lambda job: job.announced, announce)


def note_accepted(store: DocumentStore, job_id: str) -> None:
    """Mark the job's admission events (job.accepted, job.queued) as published."""
    _note(store, job_id, lambda job: job.accepted_announced, announce_accepted)


def _note(store: DocumentStore, job_id: str, noted, mark) -> None:
    def body(tx: Transaction) -> None:
        stored = load(tx, job_id)
        if stored is not None and not noted(stored):
            save(tx, mark(stored))

    store.run_transaction(body)
