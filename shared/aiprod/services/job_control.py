"""control_job: a control message (cancel a job) applied to the job, then, where the job's
task is at a provider, the provider asked to stop it.

The rules are ``domain.cancellation``'s; this handler runs them in a transaction, publishes
what the committed state owes (``effects.after_cancel``: a refusal, or the cancel's outcome
for handle_outcome, which settles the hold and ends the job CANCELLED), and only then calls
the provider: a provider call never runs inside a transaction body. Each later change is its
own transaction, applied only while the attempt is still the one it was read as, so a render
function or the reconciler that got there first wins.

Who may cancel what is the channel's (``services.tenancy``, ``domain.tenants.controls``): the
shared job-control topic (operators, ``control_publishers``) any job; a tenant's control
topic only that tenant's jobs. Any other job, and every job from a subscription we do not
serve or whose tenant is not configured, is refused as if it did not exist (``not_found``,
naming the asking tenant, not the job's), so a tenant learns nothing of others' jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import ValidationError

from aiprod import topology
from aiprod.config import Settings
from aiprod.domain import effects
from aiprod.domain.cancellation import CancelStep, Reach, close_now, request_cancel
from aiprod.domain.control_messages import ControlRequest
from aiprod.domain.effects import Effect
from aiprod.domain.invalid_requests import log_summary
from aiprod.domain.jobs import Attempt, CancelRequest, Job
from aiprod.domain.leases import lease_expired
from aiprod.domain.messages import ErrorClass, RenderTask
from aiprod.domain.submissions import adopt_task
from aiprod.domain.tenants import Channel, controls
from aiprod.domain.transitions import record_report
from aiprod.ports import DocumentStore, Transaction, VideoBackend
from aiprod.repositories import jobs
from aiprod.services import provider_calls
from aiprod.services.outbox import Outbox
from aiprod.services.tenancy import Tenancy, channel_of

log = logging.getLogger(__name__)
Change = Callable[[Job], Job]  # applied to the attempt as read, or not at all


class JobControl:
    def __init__(
        self,
        store: DocumentStore,
        outbox: Outbox,
        settings: Settings,
        clock: Callable[[], float],
        backend_for: Callable[[str], VideoBackend],
    ):
        self._store, self._outbox, self._lease_s = store, outbox, settings.lease_s
        self._clock, self._backend_for = clock, backend_for
        self._prefix, self._tenancy = settings.prefix, Tenancy(store)

    def handle(
        self,
        data: bytes,
        attributes: dict[str, str] | None = None,
        subscription: str | None = None,
    ) -> None:
        """A control message pushed through ``subscription`` (None: the shared topic)."""
        try:
            request = ControlRequest.model_validate_json(data)
        except ValidationError as exc:
            # the fields and what is wrong with them, never the input (it is user data)
            log.error("malformed control message sent to dead-letter: %s", log_summary(exc))
            self._outbox.send([effects.DeadLetter(data, topology.JOB_CONTROL, "invalid")])
            return
        channel = self._tenancy.vetted(channel_of(subscription, self._prefix, topology.JOB_CONTROL))
        if not channel.known:  # a stale or foreign subscription: it may cancel nothing
            log.warning("control message from %r, which names no configured tenant", channel.name)
        now = self._clock()
        cancel = CancelRequest(
            reason=request.reason, requested_by=request.requested_by, requested_at=now
        )
        job, step, owed = self._store.run_transaction(
            lambda tx: self._request(tx, request.job_id, cancel, now, channel)
        )
        context = {"job_id": request.job_id, "event": f"cancel_{step.value}"}
        if channel.tenant is not None:  # the asking tenant (configured: ``vetted``)
            context["tenant"] = channel.tenant
        if step in (CancelStep.NOT_FOUND, CancelStep.FINISHED):
            log.warning("cancel refused: %s", step.value, extra=context)
        else:
            log.info("cancel requested: %s", step.value, extra=context)
        self._outbox.send(owed)
        follow_up = {
            CancelStep.STOP_TASK: self._stop,
            CancelStep.LOOK: self._look_then_close,
            CancelStep.FIND: self._find,
        }.get(step)
        if follow_up is not None:
            follow_up(job)

    def _request(
        self, tx: Transaction, job_id: str, cancel: CancelRequest, now: float, channel: Channel
    ) -> tuple[Job | None, CancelStep, list[Effect]]:
        job = jobs.load(tx, job_id)
        if job is None or not controls(channel, job.tenant):  # another's job: none to see
            missing, asker = CancelStep.NOT_FOUND, channel.tenant if channel.known else None
            return None, missing, effects.after_cancel(None, missing, job_id, asker)
        changed, step = request_cancel(job, cancel, now, self._lease_s, self._reach)
        if changed is not job:
            jobs.save(tx, changed)
        return changed, step, effects.after_cancel(changed, step, job_id)

    def _reach(self, backend: str) -> Reach:
        try:
            adapter = self._backend_for(backend)
            return Reach(can_stop=adapter.can_cancel, can_find=adapter.can_find)
        except Exception:  # an adapter that cannot even be built can do nothing for us
            log.exception("backend %s unavailable to cancel with", backend)
            return Reach()

    def _stop(self, job: Job) -> None:
        """Ask the provider to stop the task; its end (cancelled, or finished first) closes
        the attempt when its watcher sees it: the render function polling it under a live
        lease, or, when nobody watches (its lease is over), a render function handed the
        task now (a second watcher would only repeat the report). A refused or failed
        stop: the task is looked at, and the attempt closed unless it finished."""
        attempt = job.current
        context = _context(job)
        try:
            if self._backend_for(attempt.backend).cancel(attempt.provider_task_id, _task(job)):
                log.info("provider asked to stop its task", extra={**context, "event": "task_stop"})
                if lease_expired(attempt, self._clock()):
                    self._outbox.send(effects.resumed(job))
                return
            log.warning("provider did not take the stop", extra=context)
        except Exception:
            log.exception("could not ask the provider to stop its task", extra=context)
        self._look_then_close(job)

    def _look_then_close(self, job: Job) -> None:
        """A task we cannot stop: if it has finished, its own outcome ends the job (a
        success is delivered: the cancel came too late); otherwise the attempt is closed
        now, and the task, kept as a late task, is charged what it costs when it ends."""
        attempt, now = job.current, self._clock()
        try:
            backend = self._backend_for(attempt.backend)
        except Exception:  # no adapter to look with: close, the task is followed as late
            log.exception("backend %s unavailable to look with", attempt.backend)
            self._close(job)
            return
        result = provider_calls.look(backend, attempt.provider_task_id, _task(job))
        if result.done and result.error_class != ErrorClass.UNKNOWN:
            started = attempt.claimed_at or attempt.dispatched_at
            outcome = provider_calls.outcome_for(
                _task(job), attempt.provider_task_id, result, started, now
            )
            finished = lambda j: record_report(j, outcome, now, self._lease_s)  # noqa: E731
            self._change(job, finished, effects.reported)
            return
        self._close(job)

    def _find(self, job: Job) -> None:
        """A create whose answer was lost: look the task up; found (and nobody's), it is the
        attempt's and is stopped; not found, the attempt closes charging its worst case."""
        attempt = job.current
        backend = self._backend_for(attempt.backend)
        sent_at = attempt.submitting_at or attempt.claimed_at or attempt.dispatched_at
        found = provider_calls.find(backend, _task(job), sent_at)
        if found is None:
            self._close(job)
            return
        now = self._clock()
        if not jobs.task_owned(self._store, found):
            self._change(job, lambda j: adopt_task(j, found, now, self._lease_s), lambda j: [])
        # adopted now, or by the reconciler meanwhile: stop it if it is this attempt's task
        current = jobs.load(self._store, job.job_id)
        mine = current is not None and not current.is_terminal and current.current is not None
        if mine and current.current.provider_task_id == found:
            log.warning("a lost create's task was found: stopping it", extra=_context(job))
            self._stop(current)
        elif current is not None and current.current is not None:
            self._close(current)  # someone else's task: this attempt's create made none seen

    def _close(self, job: Job) -> None:
        now = self._clock()
        self._change(job, lambda j: close_now(j, now, self._lease_s), effects.reported)

    def _change(self, seen: Job, change: Change, owed: Callable[[Job], list[Effect]]) -> Job | None:
        """Apply ``change`` while the attempt is still the one read (same number, same
        state, same task), then publish what the changed job owes; None when it moved on."""
        before = seen.current

        def body(tx: Transaction) -> Job | None:
            job = jobs.load(tx, seen.job_id)
            current = None if job is None else job.current
            if job is None or job.is_terminal or current is None:
                return None
            if _shape(current) != _shape(before):
                return None
            changed = change(job)
            if changed is job:
                return None
            jobs.save(tx, changed)
            return changed

        changed = self._store.run_transaction(body)
        if changed is not None:
            self._outbox.send(owed(changed))
        return changed


def _shape(attempt: Attempt) -> tuple:
    """What must not have changed for a cancel's later step to apply."""
    return attempt.number, attempt.state, attempt.provider_task_id


def _task(job: Job) -> RenderTask:
    return effects.task_for(job, job.current)


def _context(job: Job) -> dict:
    attempt = job.current
    return {"job_id": job.job_id, "attempt": attempt.number, "backend": attempt.backend}
