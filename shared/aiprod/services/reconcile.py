"""reconcile: finish what a lost message or a dead process left open. Runs every minute.

Candidates come from range queries on fields every save keeps (``jobs.DUE_FIELDS``), a
bounded batch at a time, oldest first. For each, ``domain.leases.due`` decides; the change is
one transaction conditioned on the job's current attempt being exactly as the sweep read it,
and the publish follows the commit. Hence: a render function that claims the attempt
meanwhile wins (``skipped``); two sweeps at once change each job once; a lost publish is
repeated at the next expiry, because the change stored it first (a timeout is stored on the
attempt as its outcome, REPORTED, as a render function stores a provider's outcome).

Holds: every hold belongs to an attempt (taken in the transaction that adds the attempt,
settled in the one that closes it). The sweep closes an expired attempt only by sending its
outcome down the normal path to handle_outcome, so closing it releases its hold, a timeout
falls back like any failure, and a job past its wall time ends with ``job.failed`` and
nothing held. It never submits to a provider: a stored provider task is polled, once.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from functools import partial

from aiprod.config import Settings
from aiprod.domain import effects, leases
from aiprod.domain.effects import Effect
from aiprod.domain.jobs import Job
from aiprod.domain.leases import Due
from aiprod.domain.messages import ErrorClass, RenderOutcome
from aiprod.domain.submissions import MAX_KEEP_TRIES, adopt_task, record_known_cost
from aiprod.domain.transitions import record_report
from aiprod.ports import DocumentStore, VideoBackend
from aiprod.repositories import jobs
from aiprod.services import provider_calls, queue_gauges
from aiprod.services.attempt_costs import AttemptCosts
from aiprod.services.health import HealthBook
from aiprod.services.ledger import Ledger
from aiprod.services.outbox import Outbox
from aiprod.services.provider_calls import look, outcome_for
from aiprod.services.queue import RenderQueue
from aiprod.services.reconcile_report import SKIPPED, ReconcileReport
from aiprod.services.slots import SlotBook
from aiprod.services.telemetry import Telemetry, null_telemetry

log = logging.getLogger(__name__)
ERROR_BACKOFF_S = 300.0  # a job whose sweep step failed is looked at again after this
RECHECK_S = 60.0  # a stored task still running, nobody watching it: polled each minute


class Reconciler:
    def __init__(
        self,
        store: DocumentStore,
        outbox: Outbox,
        settings: Settings,
        backend: Callable[[str], VideoBackend],
        clock: Callable[[], float],
        batch: int = 200,
        telemetry: Telemetry | None = None,
        health: HealthBook | None = None,
        ledger: Ledger | None = None,
        hourly: Callable[[float], object] | None = None,
        queue: RenderQueue | None = None,
        backends: list[str] | None = None,
        slots: SlotBook | None = None,  # a late task's slot is given back when it is charged
    ):
        self._store, self._outbox, self._backend = store, outbox, backend
        self._costs = AttemptCosts(store, ledger or Ledger(settings), clock, slots)
        self._telemetry, self._health, self._hourly = telemetry or null_telemetry(), health, hourly
        self._queue, self._backends, self._slots = queue, backends or [], slots
        self._lease_s, self._clock, self._batch = settings.lease_s, clock, batch
        self._steps: dict[Due, Callable[[Job, float], str]] = {
            Due.REDISPATCH: self._redispatch,
            Due.RESTART: self._restart,
            Due.POLL: self._poll,
            Due.TIME_OUT: self._time_out,
            Due.OVERDUE: self._overdue,
            Due.REPUBLISH: self._republish,
        }

    def run(self, now: float | None = None) -> ReconcileReport:
        """One sweep. A job that fails is logged and counted, and does not stop the others
        (the next sweep tries it again)."""
        now = self._clock() if now is None else now
        report, stuck = ReconcileReport(), 0
        found, unreadable = jobs.due(self._store, now, self._batch)
        for job_id in unreadable:
            self._set_aside(job_id, now)
            report.count("unreadable")
            self._telemetry.reconciler_action("unreadable")
        for job in found:
            context = {"job_id": job.job_id, "attempt": len(job.attempts)}
            self._late_tasks(job, now, report)
            step = self._steps.get(leases.due(job, now))
            if step is None:
                continue
            stuck += 1
            try:
                action = step(job, now)
            except Exception:
                log.exception("reconcile failed; tried again after the others", extra=context)
                report.count("errors")
                self._telemetry.reconciler_action("errors")
                self._push_back(job, now)
                continue
            report.count(action)
            self._telemetry.reconciler_action(action)
            level = logging.WARNING if action in ("timed_out", "overdue") else logging.INFO
            log.log(
                level, "reconcile: %s", action, extra={**context, "event": f"reconcile_{action}"}
            )
        self._telemetry.stuck_attempts(stuck)
        if self._queue is not None:  # the safety net: start queued jobs where a slot is free
            report.dequeued += self._queue.drain_all(self._backends)
            queue_gauges.sample(self._store, self._slots, self._telemetry, self._backends, now)
        if self._health is not None:
            # Reading the circuits reports each one's state gauge: once a minute, so the
            # circuit alert has data while no job arrives to read them.
            self._health.snapshot()
        self._audit_spend(now)
        return report

    def _audit_spend(self, now: float) -> None:
        """The hourly spend audit against the providers (the first sweep of each hour runs
        it); its failure is logged and never fails the sweep."""
        if self._hourly is None:
            return
        try:
            self._hourly(now)
        except Exception:
            log.exception("spend audit failed; the next hour tries again")

    def _push_back(self, job: Job, now: float) -> None:
        """A failing job goes behind the others (its lease moved on), so a failing batch
        cannot starve the rest; past its wall time it is closed (its task kept late)."""
        later = partial(leases.extend, now=now, lease_s=ERROR_BACKOFF_S)
        try:
            if leases.overdue(job, now) and job.current.state in leases.CLOSABLE:
                self._overdue(job, now)
                return
            self._change(job, later, _nothing, "errors")
        except Exception:
            log.warning(
                "reconcile: could not push a failing job back", extra={"job_id": job.job_id}
            )

    def _set_aside(self, job_id: str, now: float) -> None:
        """An unreadable job document: logged, and quarantined (out of the next sweeps'
        queries) when it has an id to write to; an operator repairs it."""
        log.error("reconcile: unreadable job document set aside", extra={"job_id": job_id})
        if job_id.startswith("<"):
            return
        try:
            jobs.quarantine(self._store, job_id, now)
        except Exception:
            log.exception("reconcile: could not quarantine", extra={"job_id": job_id})

    def _late_tasks(self, job: Job, now: float, report: ReconcileReport) -> None:
        for action in self._costs.follow_due(job, self._backend, now, self._lease_s):
            report.count(action)

    def _restart(self, job: Job, now: float) -> str:
        restart = partial(leases.restart, now=now, lease_s=self._lease_s)
        return self._change(job, restart, effects.dispatched, "restarted")

    def _redispatch(self, job: Job, now: float) -> str:
        redispatch = partial(leases.redispatch, now=now, lease_s=self._lease_s)
        return self._change(job, redispatch, effects.dispatched, "redispatched")

    def _poll(self, job: Job, now: float) -> str:
        """Look at the stored provider task once; never submit again."""
        attempt = job.current
        task = effects.task_for(job, attempt)
        result = look(self._backend(attempt.backend), attempt.provider_task_id, task)
        if result.unkept and attempt.keep_failures + 1 >= MAX_KEEP_TRIES:
            result = dataclasses.replace(result, done=True)
        if result.done and result.error_class != ErrorClass.UNKNOWN:
            started = attempt.claimed_at or attempt.dispatched_at
            outcome = outcome_for(task, attempt.provider_task_id, result, started, now)
            return self._close(job, outcome, now, "reported")
        if leases.overdue(job, now):
            return self._overdue(job, now)
        extend = partial(leases.extend, now=now, lease_s=min(self._lease_s, RECHECK_S))
        if result.unkept:  # its cost is known: written now, with the failed try to keep it
            noted = partial(
                record_known_cost, number=attempt.number, cost_micros=result.cost_micros, now=now
            )
            return self._change(job, lambda j: extend(noted(j)), _nothing, "extended")
        return self._change(job, extend, _nothing, "extended")

    def _time_out(self, job: Job, now: float) -> str:
        """Close the attempt (charging its worst case if a create may have reached the
        provider), unless the provider lets us find the task its lost answer hid: then the
        task is adopted and polled like any stored one."""
        attempt = job.current
        if leases.unconfirmed_create(attempt):
            sent_at = attempt.submitting_at or attempt.claimed_at or attempt.dispatched_at
            task = effects.task_for(job, attempt)
            task_id = provider_calls.find(self._backend(attempt.backend), task, sent_at)
            if task_id is not None and not jobs.task_owned(self._store, task_id):
                # its task is published again: a render function resumes polling it
                adopt = partial(adopt_task, task_id=task_id, now=now, lease_s=self._lease_s)
                return self._change(job, adopt, effects.resumed, "adopted")
        return self._close(job, leases.timeout_outcome(job, now), now, "timed_out")

    def _overdue(self, job: Job, now: float) -> str:
        return self._close(job, leases.overdue_outcome(job, now), now, "overdue")

    def _close(self, job: Job, outcome: RenderOutcome, now: float, action: str) -> str:
        """Store the outcome on the attempt (REPORTED), then publish it to handle_outcome."""

        def report(current: Job) -> Job:
            return record_report(current, outcome, now, self._lease_s, leases.CLOSABLE)

        return self._change(job, report, effects.reported, action)

    def _republish(self, job: Job, now: float) -> str:
        extend = partial(leases.extend, now=now, lease_s=self._lease_s)
        return self._change(job, extend, effects.reported, "republished")

    def _change(
        self,
        seen: Job,
        change: Callable[[Job], Job],
        owed: Callable[[Job], list[Effect]],
        action: str,
    ) -> str:
        """Apply ``change`` only if the current attempt is still exactly as read, then publish
        what the changed job owes; ``skipped`` when someone else changed it first."""

        def body(tx) -> list[Effect] | None:
            job = jobs.load(tx, seen.job_id)
            if job is None or job.is_terminal or job.current != seen.current:
                return None
            changed = change(job)
            jobs.save(tx, changed)
            return owed(changed)

        sent = self._store.run_transaction(body)
        if sent is None:
            return SKIPPED
        self._outbox.send(sent)
        return action


def _nothing(job: Job) -> list[Effect]:
    """A lease extended: the job owes no message."""
    return []
