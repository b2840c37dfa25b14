"""route_job: validate a JobRequest, admit it with a budget hold, dispatch attempt 1."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from pydantic import ValidationError

from aiprod import topology
from aiprod.domain import effects
from aiprod.domain.budget import budget_day, scopes_for
from aiprod.domain.catalog import Catalog
from aiprod.domain.effects import CONFLICT_MESSAGE, Effect
from aiprod.domain.health import OUTPUT_STORE
from aiprod.domain.job_events import rejection
from aiprod.domain.jobs import Job, JobStatus, new_job
from aiprod.domain.messages import JOB_ID_PATTERN, JobRequest, RejectReason
from aiprod.domain.selection import plan_route
from aiprod.faults import checkpoint
from aiprod.repositories import jobs
from aiprod.services import dispatch
from aiprod.services.books import Books

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Admission:
    job: Job
    created: bool  # False: the job existed already (a redelivery or a reused job_id)
    conflict: bool = False
    owed: tuple[Effect, ...] = ()  # what the committed job implies (``effects.after_admission``)


def _admitted(job: Job, created: bool, conflict: bool, tenant: str | None) -> Admission:
    return Admission(job, created, conflict, tuple(effects.after_admission(job, conflict, tenant)))


class Router:
    def __init__(self, books: Books, catalog: Catalog):
        self._store, self._outbox, self._catalog = books.store, books.outbox, catalog
        self._settings, self._health, self._clock = books.settings, books.health, books.clock
        self._ledger, self._telemetry, self._slots = books.ledger, books.telemetry, books.slots

    def handle(self, data: bytes, attributes: dict[str, str] | None = None) -> None:
        try:
            request = JobRequest.model_validate_json(data)
        except ValidationError as exc:
            self._outbox.send(self._reject_invalid(data, exc))
            self._telemetry.job_rejected(RejectReason.INVALID)  # once sent: no job records it
            return
        circuits = self._health.snapshot()
        now = self._clock()
        day = budget_day(now, self._settings.timezone)
        budget = [self._ledger.snapshot(self._store, s, day) for s in scopes_for(request.tenant)]
        admission = self._store.run_transaction(
            lambda tx: self._admit(tx, request, circuits, budget, day, now)
        )
        checkpoint("router.after_commit", request.job_id)  # crash tests: hold taken, no task yet
        self._record(admission)  # once: a redelivery finds the job created already
        self._outbox.send(admission.owed)

    def _admit(self, tx, request: JobRequest, circuits, budget, day: str, now: float) -> Admission:
        payload_hash = request.payload_hash()
        existing = jobs.load(tx, request.job_id)
        if existing is not None:
            conflict = existing.payload_hash != payload_hash
            return _admitted(existing, False, conflict, request.tenant)
        circuits = dict(circuits)
        self._health.refresh_for_probe(tx, circuits, now)
        plan = plan_route(request, self._catalog, circuits, budget, self._settings.thresholds, now)
        body = request.model_dump(mode="json")
        if plan.first is None:
            job = _rejected(body, payload_hash, request, plan.rejection, plan.message, now)
            jobs.save(tx, job)
            return _admitted(job, True, False, request.tenant)
        chain = [c.step() for c in plan.chain]
        job = new_job(
            body,
            payload_hash,
            request.tenant,
            now,
            status=JobStatus.RUNNING,
            chain=chain,
            max_wall_s=self._settings.retry.max_wall_s,  # the reconciler's wall_deadline_at
        )
        start = plan.chain.index(plan.first)
        options = [(step, 0.0) for step in chain[start:]]
        lease_s = self._settings.lease_s
        reserved = dispatch.reserve_attempt(
            tx, self._ledger, job, options, day, now, lease_s, self._slots
        )
        if reserved is None:
            message = "no capable backend's hold fits what is left of the budget"
            job = _rejected(body, payload_hash, request, RejectReason.OVER_BUDGET, message, now)
        else:
            job, _ = reserved
            self._health.claim_probe(tx, circuits.get(job.current.backend), now)
            self._health.claim_probe(tx, circuits.get(OUTPUT_STORE), now)
        jobs.save(tx, job)
        return _admitted(job, True, False, request.tenant)

    def _record(self, admission: Admission) -> None:
        """Log and count what the admission decided, before its messages go out."""
        job = admission.job
        context = {"job_id": job.job_id, "tenant": job.tenant}
        if admission.conflict:
            log.warning(CONFLICT_MESSAGE, extra={**context, "reason": RejectReason.CONFLICT.value})
            self._telemetry.job_rejected(RejectReason.CONFLICT)
        elif job.status is JobStatus.REJECTED and admission.created:
            log.warning(
                "job rejected: %s", job.message, extra={**context, "reason": str(job.reason)}
            )
            self._telemetry.job_rejected(job.reason)
        elif job.status is JobStatus.REJECTED:
            pass  # a redelivered rejected job: its event is published again, nothing counted
        elif not admission.owed:
            log.info("duplicate job message: already under way", extra=context)
        elif not admission.created:
            log.info("duplicate job message: publishing attempt 1 again", extra=context)
        else:
            attempt = job.current
            self._telemetry.job_accepted(job)
            log.info(
                "job accepted: %s/%s, hold %d micro-USD",
                attempt.backend,
                attempt.model,
                attempt.hold_micros,
                extra={**context, "backend": attempt.backend, "attempt": 1},
            )

    def _reject_invalid(self, data: bytes, exc: ValidationError) -> list[Effect]:
        """An invalid request is answered with ``job.rejected`` when it names a usable job_id,
        else it goes to the dead-letter topic (there is nobody to answer)."""
        message = _describe(exc)
        job_id = _salvage_job_id(data)
        if job_id is None:
            log.error(
                "undecodable job message sent to dead-letter: %s",
                message,
                extra={"reason": RejectReason.INVALID.value},
            )
            return [effects.DeadLetter(data, topology.JOBS, RejectReason.INVALID.value)]
        log.warning(
            "job rejected as invalid: %s",
            message,
            extra={"job_id": job_id, "reason": RejectReason.INVALID.value},
        )
        return [effects.PublishEvent(rejection(job_id, RejectReason.INVALID, message))]


def _rejected(body: dict, payload_hash: str, request: JobRequest, reason, message, now) -> Job:
    return new_job(
        body,
        payload_hash,
        request.tenant,
        now,
        status=JobStatus.REJECTED,
        reason=reason,
        message=message,
        finished_at=now,
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "message"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)[:1000]


def _salvage_job_id(data: bytes) -> str | None:
    """The job_id of an invalid request, when it has a usable one to answer to."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    job_id = body.get("job_id") if isinstance(body, dict) else None
    if isinstance(job_id, str) and re.fullmatch(JOB_ID_PATTERN, job_id):
        return job_id
    return None
