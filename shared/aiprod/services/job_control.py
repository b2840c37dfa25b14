"""control_job: a control message (cancel a job) applied to the job, after which the
provider is asked to stop the job's task where it can.

The rules are ``domain.cancellation``'s; this handler runs them in a transaction, publishes
what the committed state owes (``effects.after_cancel``: a refusal, or the cancel's outcome
for handle_outcome, which settles the hold and ends the job CANCELLED), and only then calls
the provider: a provider call never runs inside a transaction body. A provider that cannot
stop its task, or a stop that fails, closes the attempt at once: its task goes on as a late
task, which the reconciler follows and charges what it cost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pydantic import ValidationError

from aiprod import topology
from aiprod.config import Settings
from aiprod.domain import effects
from aiprod.domain.cancellation import CancelStep, close_now, request_cancel
from aiprod.domain.effects import Effect
from aiprod.domain.jobs import CancelRequest, Job
from aiprod.domain.messages import ControlRequest
from aiprod.ports import DocumentStore, Transaction, VideoBackend
from aiprod.repositories import jobs
from aiprod.services.outbox import Outbox

log = logging.getLogger(__name__)


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

    def handle(self, data: bytes, attributes: dict[str, str] | None = None) -> None:
        try:
            request = ControlRequest.model_validate_json(data)
        except ValidationError as exc:
            # the fields and what is wrong with them, never the input (it is user data)
            where = [".".join(map(str, e["loc"])) + f": {e['type']}" for e in exc.errors()[:3]]
            log.error("malformed control message sent to dead-letter: %s", "; ".join(where))
            self._outbox.send([effects.DeadLetter(data, topology.JOB_CONTROL, "invalid")])
            return
        now = self._clock()
        cancel = CancelRequest(
            reason=request.reason, requested_by=request.requested_by, requested_at=now
        )
        job, step, owed = self._store.run_transaction(
            lambda tx: self._request(tx, request.job_id, cancel, now)
        )
        context = {"job_id": request.job_id, "event": f"cancel_{step.value}"}
        if step in (CancelStep.NOT_FOUND, CancelStep.FINISHED):
            log.warning("cancel refused: %s", step.value, extra=context)
        else:
            log.info("cancel requested: %s", step.value, extra=context)
        self._outbox.send(owed)
        if step is CancelStep.STOP_TASK:
            self._stop(job, now)

    def _request(
        self, tx: Transaction, job_id: str, cancel: CancelRequest, now: float
    ) -> tuple[Job | None, CancelStep, list[Effect]]:
        job = jobs.load(tx, job_id)
        if job is None:
            return (
                None,
                CancelStep.NOT_FOUND,
                effects.after_cancel(None, CancelStep.NOT_FOUND, job_id),
            )
        changed, step = request_cancel(job, cancel, now, self._lease_s, self._can_stop)
        if changed is not job:
            jobs.save(tx, changed)
        return changed, step, effects.after_cancel(changed, step, job_id)

    def _can_stop(self, backend: str) -> bool:
        try:
            return self._backend_for(backend).can_cancel
        except Exception:  # an adapter that cannot even be built cannot stop anything
            log.exception("backend %s unavailable to cancel with", backend)
            return False

    def _stop(self, job: Job, now: float) -> None:
        """Ask the provider to stop the task; its end (cancelled, or finished first) is
        reported by whoever polls it. Refused or failed: the attempt is closed now."""
        attempt = job.current
        context = {"job_id": job.job_id, "attempt": attempt.number, "backend": attempt.backend}
        try:
            task = effects.task_for(job, attempt)
            backend = self._backend_for(attempt.backend)
            if backend.cancel(attempt.provider_task_id, task):
                log.info("provider asked to stop its task", extra={**context, "event": "task_stop"})
                return
            log.warning("provider did not take the stop: closing the attempt", extra=context)
        except Exception:
            log.exception("could not ask the provider to stop: closing the attempt", extra=context)
        owed = self._store.run_transaction(lambda tx: self._close(tx, job.job_id, attempt.number))
        self._outbox.send(owed)

    def _close(self, tx: Transaction, job_id: str, number: int) -> list[Effect]:
        """Close the attempt we could not stop, if it is still that one and still open."""
        job = jobs.load(tx, job_id)
        if job is None or job.is_terminal or job.current is None or job.current.number != number:
            return []
        closed = close_now(job, self._clock(), self._lease_s)
        if closed is job:
            return []
        jobs.save(tx, closed)
        return effects.reported(closed)
