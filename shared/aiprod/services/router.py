"""route_job: validate a JobRequest, admit it with a budget hold, dispatch attempt 1."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from pydantic import ValidationError

from aiprod import topology
from aiprod.domain import effects
from aiprod.domain.budget import budget_day, scopes_for
from aiprod.domain.catalog import Catalog
from aiprod.domain.effects import CONFLICT_MESSAGE, Effect
from aiprod.domain.health import OUTPUT_STORE
from aiprod.domain.invalid_requests import Named, describe, invalid_job, log_summary, salvage
from aiprod.domain.job_events import duplicate_rejection
from aiprod.domain.jobs import Job, JobStatus, new_job
from aiprod.domain.messages import IMAGE_BUCKETS, JobEvent, JobRequest, RejectReason
from aiprod.domain.payloads import raw_payload_hash
from aiprod.domain.selection import plan_route
from aiprod.domain.semantic_qa import qa_hold_micros
from aiprod.domain.tenants import Channel, TenantRefused
from aiprod.faults import checkpoint
from aiprod.repositories import jobs
from aiprod.services import dispatch
from aiprod.services.books import Books
from aiprod.services.tenancy import Tenancy, channel_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Admission:
    job: Job
    created: bool  # False: the job existed already (a redelivery or a reused job_id)
    refused: JobEvent | None = None  # job.duplicate_rejected: the message reused the job_id
    owed: tuple[Effect, ...] = ()  # what the committed job implies (``effects.after_admission``)

    @property
    def conflict(self) -> bool:
        return self.refused is not None


def _admitted(job: Job, created: bool, refused: JobEvent | None = None) -> Admission:
    return Admission(job, created, refused, tuple(effects.after_admission(job, refused)))


class Router:
    def __init__(self, books: Books, catalog: Catalog):
        self._store, self._outbox, self._catalog = books.store, books.outbox, catalog
        self._settings, self._health, self._clock = books.settings, books.health, books.clock
        self._ledger, self._telemetry, self._slots = books.ledger, books.telemetry, books.slots
        self._tenancy = Tenancy(books.store)

    def handle(
        self, data: bytes, attributes: dict[str, str] | None = None, subscription: str | None = None
    ) -> None:
        """Admit one JobRequest. ``subscription`` is the push subscription it came through
        (``services.tenancy``): the job's tenant is that topic's, whatever the body says."""
        channel = channel_of(subscription, self._settings.prefix)
        try:
            context = {IMAGE_BUCKETS: self._settings.image_buckets}
            request = JobRequest.model_validate_json(data, context=context)
            tenant = self._tenancy.tenant_for(channel, request.tenant)
        except ValidationError as exc:
            self._handle_invalid(data, describe(exc), channel, log_summary(exc))
            return
        except TenantRefused as exc:
            self._handle_invalid(data, str(exc), channel, "tenant: refused by its topic")
            return
        if tenant != request.tenant:  # a tenant topic's job that left ``tenant`` out
            request = request.model_copy(update={"tenant": tenant})
        circuits, observed = self._health.readings()  # one batched read
        now = self._clock()
        day = budget_day(now, self._settings.timezone)
        budget = [self._ledger.snapshot(self._store, s, day) for s in scopes_for(request.tenant)]
        admission = self._store.run_transaction(
            lambda tx: self._admit(tx, request, (circuits, observed), budget, day, now)
        )
        checkpoint("router.after_commit", request.job_id)  # crash tests: hold taken, no task yet
        self._record(admission)  # once: a redelivery finds the job created already
        self._outbox.send(admission.owed)

    def _admit(self, tx, request: JobRequest, health, budget, day: str, now: float) -> Admission:
        circuits, observed = health
        payload_hash, keep_s = request.payload_hash(), self._settings.retention.job_s
        existing = jobs.load(tx, request.job_id)
        if existing is not None:
            if request.same_payload(existing.payload_hash):
                return _admitted(existing, False)
            refused = duplicate_rejection(
                existing, payload_hash, CONFLICT_MESSAGE, request.tenant, request.metadata
            )
            return _admitted(existing, False, refused)
        circuits = dict(circuits)
        self._health.refresh_for_probe(tx, circuits, now)
        qa_hold = qa_hold_micros(self._settings.providers.semantic_qa, request.duration_s)
        thresholds = self._settings.thresholds
        plan = plan_route(
            request, self._catalog, circuits, budget, thresholds, now, observed, qa_hold
        )
        body = request.model_dump(mode="json")
        if plan.first is None:
            job = _rejected(body, payload_hash, request, plan.rejection, plan.message, now)
            job = job.model_copy(update={"keep_s": keep_s})
            jobs.save(tx, job)
            return _admitted(job, True)
        chain = [c.step() for c in plan.chain]
        job = new_job(
            body,
            payload_hash,
            request.tenant,
            now,
            status=JobStatus.RUNNING,
            chain=chain,
            max_wall_s=self._settings.retry.max_wall_s,  # the reconciler's wall_deadline_at
            keep_s=keep_s,  # kept this long once over: its job_id is known (idempotency)
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
            job = job.model_copy(update={"keep_s": keep_s})
        else:
            job, _ = reserved
            self._health.claim_probe(tx, circuits.get(job.current.backend), now)
            self._health.claim_probe(tx, circuits.get(OUTPUT_STORE), now)
        jobs.save(tx, job)
        return _admitted(job, True)

    def _record(self, admission: Admission) -> None:
        """Log and count what the admission decided, before its messages go out."""
        job = admission.job
        context = {"job_id": job.job_id, "tenant": job.tenant}
        if admission.conflict:
            log.warning(CONFLICT_MESSAGE, extra={**context, "reason": RejectReason.CONFLICT.value})
            self._telemetry.job_rejected(RejectReason.CONFLICT)
        elif job.status is JobStatus.REJECTED and admission.created:
            # an invalid request's message names its fields (user keys): logged apart
            said = "invalid request" if job.reason == RejectReason.INVALID else job.message
            log.warning("job rejected: %s", said, extra={**context, "reason": str(job.reason)})
            self._telemetry.job_rejected(job.reason)
        elif job.status is JobStatus.REJECTED:
            pass  # a redelivered rejected job: its event is owed only until noted out
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

    def _handle_invalid(self, data: bytes, message: str, channel: Channel, where: str) -> None:
        """An invalid request that names a usable job_id is stored as a REJECTED job and
        answered with ``job.rejected`` (``domain.invalid_requests``); one that does not goes
        to the dead-letter topic (there is nobody to answer). The rejected job's tenant is
        its topic's, when configured: never one the message named for itself. ``where`` is
        what the log says: field locations and error types, never the input."""
        named = salvage(data)
        if named is not None:
            named = replace(named, tenant=self._tenancy.configured(channel))
        if named is None:
            log.error(
                "undecodable job message sent to dead-letter: %s",
                where,
                extra={"reason": RejectReason.INVALID.value},
            )
            self._outbox.send([effects.DeadLetter(data, topology.JOBS, RejectReason.INVALID.value)])
            self._telemetry.job_rejected(RejectReason.INVALID)  # once sent: no job records it
            return
        log.warning("invalid job message: %s", where, extra={"job_id": named.job_id})
        now = self._clock()
        admission = self._store.run_transaction(
            lambda tx: self._admit_invalid(tx, named, raw_payload_hash(data), message, now)
        )
        self._record(admission)
        self._outbox.send(admission.owed)

    def _admit_invalid(self, tx, named: Named, payload_hash: str, message: str, now: float):
        existing = jobs.load(tx, named.job_id)
        if existing is None:
            job = invalid_job(named, payload_hash, message, now)
            job = job.model_copy(update={"keep_s": self._settings.retention.job_s})
            jobs.save(tx, job)
            return _admitted(job, True)
        if existing.payload_hash == payload_hash:
            return _admitted(existing, False)
        why = f"{CONFLICT_MESSAGE} (and this request is invalid: {message})"
        return _admitted(
            existing, False, duplicate_rejection(existing, payload_hash, why, named.tenant)
        )


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
