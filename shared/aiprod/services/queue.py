"""The render queue: jobs waiting for a render slot, dispatched oldest first as slots free.

Whoever frees a slot drains its backend right after its commit (handle_outcome, when it
closes an attempt that held one); the reconciler drains every backend each sweep as the
safety net. Each start is one transaction: take a slot, move the queued attempt to
DISPATCHED (conditioned on it still waiting), then its task is published. Two drainers at
once start each job once; a drain that finds no free slot stops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiprod.config import Settings
from aiprod.domain import effects
from aiprod.domain.effects import Effect
from aiprod.domain.queueing import is_queued, start_queued
from aiprod.ports import DocumentStore
from aiprod.repositories import jobs
from aiprod.services.outbox import Outbox
from aiprod.services.slots import SlotBook
from aiprod.services.telemetry import Telemetry, null_telemetry

log = logging.getLogger(__name__)
HEAD_READ = 4
DRAIN_BATCH = 20  # most jobs one drain starts (the reconciler's next sweep goes on)


class RenderQueue:
    def __init__(
        self,
        store: DocumentStore,
        outbox: Outbox,
        slots: SlotBook,
        settings: Settings,
        clock: Callable[[], float],
        telemetry: Telemetry | None = None,
    ):
        self._store, self._outbox, self._slots = store, outbox, slots
        self._settings, self._clock = settings, clock
        self._telemetry = telemetry or null_telemetry()

    def drain(self, backend: str, most: int = DRAIN_BATCH) -> int:
        """Start up to ``most`` queued jobs of ``backend`` while slots are free; how many
        started (a closed attempt frees one slot: its drain starts at most one)."""
        started = 0
        for _ in range(most):
            # a freed slot usually starts one; a few more are read past unreadable ones
            head = jobs.queued_for(self._store, backend, HEAD_READ)
            if not head:
                break
            job_id = head[0].job_id
            owed = self._store.run_transaction(lambda tx, j=job_id: self._start(tx, j))
            if owed is None:
                break  # no free slot: the next freed one drains again
            if owed:
                self._outbox.send(owed)
                started += 1
                self._telemetry.queue_waited(head[0], self._clock())
                log.info("queued job dispatched", extra={"job_id": job_id, "backend": backend})
        return started

    def drain_all(self, backends: list[str]) -> int:
        """Drain every backend (the reconciler's safety net); one failing does not stop
        the others."""
        started = 0
        for backend in backends:
            try:
                started += self.drain(backend)
            except Exception:
                log.exception("queue not drained", extra={"backend": backend})
        return started

    def _start(self, tx, job_id: str) -> list[Effect] | None:
        job = jobs.load(tx, job_id)
        if job is None or not is_queued(job):
            return []  # started or closed meanwhile
        slot = self._slots.take(tx, job.current.backend)
        if slot is None:
            return None
        now = self._clock()
        started = start_queued(job, slot, now, self._settings.lease_s)
        jobs.save(tx, started)
        return effects.dispatched(started)
