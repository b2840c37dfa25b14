"""Mapping between stored documents and domain values, inside or outside a transaction."""

from __future__ import annotations

from dataclasses import asdict

from aiprod.domain.health import Circuit, CircuitState
from aiprod.domain.jobs import Job
from aiprod.ports import DocumentStore, Transaction

JOBS = "jobs"
BACKENDS = "backends"


def load_job(tx: Transaction | DocumentStore, job_id: str) -> Job | None:
    doc = tx.get(JOBS, job_id)
    return None if doc is None else to_job(doc)


def to_job(doc: dict) -> Job:
    return Job.model_validate(doc, strict=False)


def save_job(tx: Transaction, job: Job) -> None:
    """The whole job, plus its computed ``lease_expires_at`` and ``wall_deadline_at`` at the
    top level (what the reconciler's range queries read; None once the job is over)."""
    tx.set(JOBS, job.job_id, job.model_dump(mode="json"))


def load_circuit(tx: Transaction | DocumentStore, backend: str) -> Circuit:
    doc = tx.get(BACKENDS, backend)
    if doc is None:
        return Circuit(backend=backend)
    return Circuit(**{**doc, "state": CircuitState(doc["state"])})


def save_circuit(tx: Transaction, circuit: Circuit) -> None:
    tx.set(BACKENDS, circuit.backend, {**asdict(circuit), "state": circuit.state.value})
