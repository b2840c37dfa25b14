"""The render queue and slots as gauges, written by the reconciler each sweep: per backend,
how many jobs wait for a slot, how long the longest-waiting one has, and the slots in use
against capacity (so the dashboard has them each minute and the queue alert can fire while
nothing else happens). A backend whose read fails is logged and skipped: the gauges never
fail a sweep.

Depth is counted from one bounded read of the backend's queue (``jobs.QUEUE_READ``, 1000):
a deeper queue shows as 1000, and its oldest job is the oldest of the 1000 read.
"""

from __future__ import annotations

import logging

from aiprod.ports import DocumentStore
from aiprod.repositories import jobs
from aiprod.repositories import slots as slot_records
from aiprod.services.slots import SlotBook
from aiprod.services.telemetry import Telemetry

log = logging.getLogger(__name__)


def sample(
    store: DocumentStore,
    slots: SlotBook | None,
    telemetry: Telemetry,
    backends: list[str],
    now: float,
) -> None:
    """Write each backend's queue and slot gauges (nothing without a slot book: no limit)."""
    if slots is None:
        return
    for backend in backends:
        try:
            waiting = jobs.queued_for(store, backend, jobs.QUEUE_READ)
            since = [j.current.queued_at for j in waiting if j.current.queued_at is not None]
            telemetry.queue_sampled(
                backend,
                depth=len(waiting),
                oldest_age_s=now - min(since, default=now),
                in_use=slot_records.in_use(store, backend),
                capacity=slots.capacity(store, backend),
            )
        except Exception:
            log.exception("queue gauges not written", extra={"backend": backend})
