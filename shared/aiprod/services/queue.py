"""The render queue: jobs waiting for a render slot, started as slots free, in the fair
order of ``domain.queueing`` (tenant holding the fewest slots, then speed, then oldest).

Whoever frees a slot drains its backend right after its commit (handle_outcome, when it
closes an attempt that held one); the reconciler drains every backend each sweep as the
safety net. Each start is one transaction: take a slot, move the queued attempt to
DISPATCHED (conditioned on it still waiting), then its task is published. A backend whose
own queue is empty takes a job that may spill to it from another backend's queue: the
queued attempt moves there, its hold exchanged for the new step's in the same transaction.
Two drainers at once start each job once; a drain that finds no free slot stops.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from aiprod.config import Settings
from aiprod.domain import effects
from aiprod.domain.budget import budget_day, scopes_for
from aiprod.domain.effects import Effect
from aiprod.domain.health import Circuit
from aiprod.domain.jobs import Job
from aiprod.domain.queueing import (
    fairest,
    is_queued,
    may_spill,
    past_wall_time,
    spill_step,
    spilled,
    start_queued,
)
from aiprod.ports import DocumentStore, Transaction
from aiprod.repositories import jobs, queue
from aiprod.services.health import HealthBook
from aiprod.services.ledger import Ledger
from aiprod.services.outbox import Outbox
from aiprod.services.slots import SlotBook
from aiprod.services.telemetry import Telemetry, null_telemetry

log = logging.getLogger(__name__)
DRAIN_BATCH = 20  # most jobs one drain starts (the reconciler's next sweep goes on)
EXTRA_PICKS = 4  # picks a drain may waste on jobs started or closed by someone else
SPILL_READ = 4  # jobs read per tenant and rank when looking for one that may move here
Circuits = dict[str, Circuit]


class _NotStarted(Exception):
    """Abandon a start's transaction: nothing of it is written."""


class RenderQueue:
    def __init__(
        self,
        store: DocumentStore,
        outbox: Outbox,
        slots: SlotBook,
        settings: Settings,
        clock: Callable[[], float],
        ledger: Ledger,
        backends: Sequence[str],
        telemetry: Telemetry | None = None,
        health: HealthBook | None = None,
    ):
        self._store, self._outbox, self._slots = store, outbox, slots
        self._settings, self._clock = settings, clock
        self._ledger, self._backends = ledger, tuple(backends)
        self._telemetry = telemetry or null_telemetry()
        self._health = health

    def drain(self, backend: str, most: int = DRAIN_BATCH) -> int:
        """Start up to ``most`` queued jobs on ``backend`` while slots are free; how many
        started (a closed attempt frees one slot: its drain starts at most one)."""
        started, passed = 0, set[str]()
        circuits = self._health.snapshot(report=False) if self._health else {}
        for _ in range(most + EXTRA_PICKS):
            if started >= most:
                break
            job = self._next(backend, passed, circuits)
            if job is None:
                break
            try:
                owed = self._store.run_transaction(
                    lambda tx, j=job: self._start(tx, j, backend, circuits)
                )
            except _NotStarted:
                owed = []
            if owed is None:
                break  # no free slot: the next freed one drains again
            if not owed:
                passed.add(job.job_id)
                continue
            self._outbox.send(owed)
            started += 1
            self._telemetry.queue_waited(job, self._clock())
            log.info("queued job dispatched", extra={"job_id": job.job_id, "backend": backend})
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

    def _next(self, backend: str, passed: set[str], circuits: Circuits) -> Job | None:
        """The job the backend's next free slot goes to (a plain read: the start re-checks).
        A job admitted to this backend starts whatever its circuit says (it fails fast and
        falls back by the usual rules); one queued elsewhere moves here only while this
        backend's circuit admits new work."""
        now = self._clock()
        heads = [j for j in queue.queue_heads(self._store, backend) if j.job_id not in passed]
        if heads:
            return self._fairest(backend, heads)
        if not _admits(circuits, backend, now):
            return None  # (saves the scan: nothing may move here now)
        movable = [
            job
            for other in self._backends
            if other != backend
            for job in queue.queue_heads(self._store, other, SPILL_READ, by_rank=True)
            if job.job_id not in passed and self._may_move(job, backend, circuits, now)
        ]
        return self._fairest(backend, movable)

    def _fairest(self, backend: str, candidates: list[Job]) -> Job | None:
        """``queueing.fairest``, reading the slots each tenant holds only when tenants
        compete (one candidate is its own answer)."""
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        return fairest(candidates, self._slots.held_by_tenant(self._store, backend))

    def _may_move(self, job: Job, backend: str, circuits: Circuits, now: float) -> bool:
        """May this job, queued on another backend, start on ``backend`` instead? Only while
        ``backend``'s circuit admits new work; its own backend's circuit not admitting counts
        as having waited long enough."""
        if not _admits(circuits, backend, now):
            return False
        stuck = not _admits(circuits, job.current.backend, now)
        bound = self._settings.queue_spill_after_s
        return may_spill(job, now, bound, stuck) and spill_step(job, backend) is not None

    def _start(
        self, tx: Transaction, picked: Job, backend: str, circuits: Circuits
    ) -> list[Effect] | None:
        job = jobs.load(tx, picked.job_id)
        now = self._clock()
        if job is None or not is_queued(job) or past_wall_time(job, now):
            return []  # started or closed meanwhile; past its wall time the reconciler ends it
        circuits = dict(circuits)
        if self._health is not None:
            self._health.refresh_for_probe(tx, circuits, now)
        step = None
        if job.current.backend != backend:
            if not self._may_move(job, backend, circuits, now):
                return []
            step = spill_step(job, backend)
        slot = self._slots.take(tx, backend, job.tenant, now)
        if slot is None:
            return None
        lease_s = self._settings.lease_s
        if step is None:
            started = start_queued(job, slot, now, lease_s)
        else:
            started = self._moved(tx, job, step, slot, now, lease_s)
        if self._health is not None:
            self._health.claim_probe(tx, circuits.get(backend), now)  # half-open: the probe
        jobs.save(tx, started)
        return effects.dispatched(started)

    def _moved(self, tx: Transaction, job: Job, step, slot: str, now: float, lease_s: float):
        """Exchange the queued attempt's hold for ``step``'s, and start it there."""
        waiting = job.current
        self._ledger.settle(tx, waiting.ledger_keys, waiting.hold_micros, 0)
        day = budget_day(now, self._settings.timezone)
        keys = self._ledger.reserve(tx, scopes_for(job.tenant), day, step.hold_micros)
        if keys is None:
            raise _NotStarted  # the new step's hold does not fit: it stays where it waits
        log.info(
            "queued job moved to a free backend",
            extra={"job_id": job.job_id, "from": waiting.backend, "backend": step.backend},
        )
        return spilled(job, step, keys, slot, now, lease_s)


def _admits(circuits: Circuits, backend: str, now: float) -> bool:
    circuit = circuits.get(backend)
    return circuit is None or circuit.admits(now)
