"""A render function's create, safe to lose at any step.

1. The submit intent is written (``submitting_at``) once the request is ready and before
   anything reaches the provider, conditioned on this delivery still holding the claim: a
   delivery whose claim was taken over sends nothing. From here on a lost worker's attempt
   is charged its worst case unless its task is found.
2. The create is sent once (the SDKs never retry it). If its answer was lost (a 5xx, a
   timeout, a garbled reply), the task is looked up at once where the provider allows it
   (Replicate), and adopted if exactly one matches and no attempt owns it.
3. The task id is kept: on the running attempt, or, when the attempt was closed meanwhile
   (its lease ran out while the create was slow), as a late task of that attempt, which is
   polled and charged what it really cost. A task id that cannot be stored after a few
   tries is logged (ERROR, ``event=task_id_unstored``) and the invocation fails.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiprod.config import Settings
from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.messages import RenderTask
from aiprod.domain.submissions import Stored, begin_submit, record_submission
from aiprod.exceptions import ClaimLostError, ProviderError, TransientError
from aiprod.faults import checkpoint
from aiprod.ports import DocumentStore, VideoBackend
from aiprod.repositories import jobs
from aiprod.services import provider_calls

log = logging.getLogger(__name__)
STORE_TASK_ID_TRIES = 3  # then the invocation fails; the id is in the ERROR log line
LOOKUP_DELAY_S = 2.0  # before looking up a create whose answer was lost
LOST_ANSWERS = frozenset({ErrorCode.SUBMIT_UNCONFIRMED, ErrorCode.MALFORMED_RESPONSE})


class Submitter:
    def __init__(
        self,
        backend: VideoBackend,
        store: DocumentStore,
        settings: Settings,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ):
        self._backend, self._store, self._settings = backend, store, settings
        self._clock, self._sleep = clock, sleep

    def submit(self, task: RenderTask, claim_id: str) -> tuple[str, Stored]:
        """Create the provider task (``ProviderError`` when refused, ``ClaimLostError`` when
        this delivery may not send) and say where its id was kept. A create whose answer
        was lost is looked up at once where the provider allows it; found, it goes on as if
        answered (else the UNKNOWN error goes up, and the reconciler decides)."""
        sent: list[float] = []

        def intend() -> None:
            self._intend(task, claim_id)
            sent.append(self._clock())

        try:
            task_id = self._backend.submit(task, before_send=intend)
        except ProviderError as exc:
            task_id = self._found(task, sent[0]) if sent and exc.code in LOST_ANSWERS else None
            if task_id is None:
                raise
        # crash tests: created at the provider, its task id not yet stored
        checkpoint("render.after_create", f"{task.job_id}#{task.attempt}")
        return task_id, self._keep(task, task_id)

    def _found(self, task: RenderTask, sent_at: float) -> str | None:
        """The task a lost answer hid, if the provider can say and no attempt owns it."""
        if not self._backend.can_find:
            return None
        self._sleep(LOOKUP_DELAY_S)  # let the provider's list catch up with the create
        found = provider_calls.find(self._backend, task, sent_at)
        if found is None or jobs.task_owned(self._store, found):
            return None
        log.warning("a create's lost answer was found at the provider", extra=_context(task))
        return found

    def _intend(self, task: RenderTask, claim_id: str) -> None:
        def body(tx) -> bool:
            job = jobs.load(tx, task.job_id)
            now, window = self._clock(), self._settings.submit_lease_s
            started = (
                None if job is None else begin_submit(job, task.attempt, claim_id, now, window)
            )
            if started is None:
                return False
            jobs.save(tx, started)
            return True

        if not self._store.run_transaction(body):
            raise ClaimLostError(f"attempt {task.job_id}#{task.attempt} is no longer ours")

    def _keep(self, task: RenderTask, task_id: str) -> Stored:
        """A submitted task's id is the only way back to a paid render: try a few times, and
        if the store stays down, log the id (for an operator) before giving up."""
        for attempt in range(1, STORE_TASK_ID_TRIES + 1):
            try:
                return self._store.run_transaction(lambda tx: self._record(tx, task, task_id))
            except TransientError:
                if attempt == STORE_TASK_ID_TRIES:
                    log.error(
                        "provider task %s was submitted but its id could not be stored",
                        task_id,
                        extra={**_context(task), "event": "task_id_unstored"},
                    )
                    raise
                self._sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    def _record(self, tx, task: RenderTask, task_id: str) -> Stored:
        job = jobs.load(tx, task.job_id)
        if job is None:
            return Stored.LOST
        now = self._clock()
        recorded, stored = record_submission(
            job, task.attempt, task_id, now, self._settings.lease_s
        )
        if recorded is not job:
            jobs.save(tx, recorded)
        return stored


def _context(task: RenderTask) -> dict:
    return {"job_id": task.job_id, "attempt": task.attempt, "backend": task.backend}
