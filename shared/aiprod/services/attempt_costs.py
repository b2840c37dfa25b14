"""Costs that must survive until an attempt is settled: a cost the provider reported before
its output could be kept (written on the attempt the first time it is seen), and what a late
task cost (charged on its closed attempt, replacing the estimate it was closed with).

Each is one transaction: read the job, apply the pure rule (``domain.submissions``), write
the job and, for a late task, the ledger correction, together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiprod.domain import effects
from aiprod.domain.jobs import Attempt, Job
from aiprod.domain.leases import LATE_TASK_GIVE_UP_S
from aiprod.domain.queueing import holds_slot, slot_given_back
from aiprod.domain.submissions import (
    charge_late_task,
    extend_late_task,
    record_known_cost,
    void_estimate,
)
from aiprod.ports import DocumentStore, VideoBackend
from aiprod.repositories import jobs
from aiprod.services.ledger import Ledger
from aiprod.services.provider_calls import look
from aiprod.services.slots import SlotBook

log = logging.getLogger(__name__)


class AttemptCosts:
    def __init__(
        self,
        store: DocumentStore,
        ledger: Ledger,
        clock: Callable[[], float],
        slots: SlotBook | None = None,
    ):
        self._store, self._ledger, self._clock, self._slots = store, ledger, clock, slots

    def note_unkept(self, job_id: str, number: int, cost_micros: int) -> int:
        """A finished render whose output could not be kept this time: its cost is written
        on the attempt; returns how many tries to keep it have failed (0: not running)."""

        def body(tx) -> int:
            job = jobs.load(tx, job_id)
            if job is None:
                return 0
            noted = record_known_cost(job, number, cost_micros, self._clock())
            if noted is job:
                return 0
            jobs.save(tx, noted)
            return noted.require(number).keep_failures

        return self._store.run_transaction(body)

    def charge_late(self, job_id: str, number: int, cost_micros: int) -> int | None:
        """Charge a late task's cost on its closed attempt; the ledger change, or None when
        there was nothing to charge (charged already, or the attempt not closed yet)."""

        def body(tx) -> int | None:
            job = jobs.load(tx, job_id)
            if job is None:
                return None
            charged, change = charge_late_task(job, number, cost_micros, self._clock())
            if charged is job:
                return None
            before, after = job.require(number), charged.require(number)
            overrun = max(0, after.overrun_micros - before.overrun_micros)
            self._ledger.correct(tx, before.ledger_keys, change, overrun)
            jobs.save(tx, self._free_slot(tx, charged, number))
            return change

        change = self._store.run_transaction(body)
        if change is not None:
            log.warning(
                "late provider task charged: %d micro-USD (change %+d)",
                cost_micros,
                change,
                extra={"job_id": job_id, "attempt": number, "event": "late_task_charged"},
            )
        return change

    def void_estimate(self, job_id: str, number: int) -> int | None:
        """A create the provider refused, on an attempt already closed (or closing) charging
        the estimate of a create that may have made a task: the estimate goes (returns the
        ledger change; None when there was no estimate to void)."""

        def body(tx) -> int | None:
            job = jobs.load(tx, job_id)
            if job is None:
                return None
            voided, change = void_estimate(job, number, self._clock())
            if voided is job:
                return None
            if change:
                self._ledger.correct(tx, job.require(number).ledger_keys, change)
            jobs.save(tx, voided)
            return change

        change = self._store.run_transaction(body)
        if change is None:
            return None
        log.warning(
            "a refused create charges nothing: its estimate is voided (change %+d)",
            change,
            extra={"job_id": job_id, "attempt": number, "event": "estimate_voided"},
        )
        return change

    def follow_due(
        self, job: Job, backend_for: Callable[[str], VideoBackend], now: float, lease_s: float
    ) -> list[str]:
        """Each of the job's late tasks that is due, looked at once; the actions taken."""
        actions = []
        for attempt in job.attempts:
            if attempt.late_task_lease is None or attempt.late_task_lease > now:
                continue
            try:
                backend = backend_for(attempt.backend)
                actions.append(self.follow_late(job, attempt, backend, now, lease_s))
            except Exception:
                log.exception("late task not looked at", extra={"job_id": job.job_id})
                actions.append("errors")
        return actions

    def follow_late(
        self, job: Job, attempt: Attempt, backend: VideoBackend, now: float, lease_s: float
    ) -> str:
        """The reconciler's look at a late task: charge it when it has finished, else look
        again after a lease, and give up (left to the spend audit) after a day."""
        task = effects.task_for(job, attempt)
        result = look(backend, attempt.provider_task_id, task, cost_only=True)
        if result.settles_cost:
            charged = self.charge_late(job.job_id, attempt.number, result.cost_micros)
            return "skipped" if charged is None else "late_charged"
        context = {"job_id": job.job_id, "attempt": attempt.number, "backend": attempt.backend}
        stop_late_task(backend, attempt.provider_task_id, task, context)
        waited = now - (attempt.finished_at or now)
        given_up = waited > LATE_TASK_GIVE_UP_S
        if given_up:
            log.error(
                "late provider task %s given up after a day: the spend audit will see it",
                attempt.provider_task_id,
                extra={"job_id": job.job_id, "attempt": attempt.number},
            )
        self.look_later(job.job_id, attempt.number, None if given_up else now + lease_s)
        return "extended"

    def _free_slot(self, tx, job: Job, number: int) -> Job:
        """A late task over (charged, or given up): the render slot it kept is free, unless
        its attempt gave it back when it closed (the task turned up after that)."""
        attempt = job.require(number)
        if not holds_slot(attempt) or self._slots is None:
            return job
        self._slots.give_back(tx, attempt.slot_key, job.tenant)
        return slot_given_back(job, number, self._clock())

    def look_later(self, job_id: str, number: int, until: float | None) -> None:
        """Poll the late task again at ``until`` (None: given up, left to the spend audit)."""

        def body(tx) -> None:
            job = jobs.load(tx, job_id)
            if job is not None and job.require(number).late_task_lease is not None:
                extended = extend_late_task(job, number, until, self._clock())
                jobs.save(tx, extended if until else self._free_slot(tx, extended, number))

        self._store.run_transaction(body)


def stop_late_task(backend: VideoBackend, task_id: str, task, context: dict) -> None:
    """A late task renders for an attempt that is closed: nobody will use its output, so its
    provider is asked to stop it where it can (its cost is still charged when it ends). A
    refused or failed stop is logged; the task is followed and charged all the same."""
    if not backend.can_cancel:
        return
    try:
        backend.cancel(task_id, task)
        log.info("late provider task asked to stop", extra={**context, "event": "late_task_stop"})
    except Exception:
        log.warning("late provider task not stopped; still followed", extra=context, exc_info=True)
