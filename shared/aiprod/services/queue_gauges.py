"""The render queue and slots as gauges, written by the reconciler each sweep: per backend,
how many jobs wait for a slot, how long the longest-waiting one has, and the slots in use
against capacity (so the dashboard has them each minute and the queue alert can fire while
nothing else happens). A backend whose read fails is logged and skipped: the gauges never
fail a sweep.

Depth is counted from one bounded read of the backend's queue (``queue.QUEUE_READ``, 1000):
a deeper queue shows as 1000. The oldest job is read apart, from each tenant's (and rank's)
first job, so a deep queue cannot hide it.
"""

from __future__ import annotations

import logging

from aiprod.ports import DocumentStore
from aiprod.repositories import queue
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
            since = queue.oldest_queued_at(store, backend)
            telemetry.queue_sampled(
                backend,
                depth=len(queue.queued_for(store, backend, queue.QUEUE_READ)),
                oldest_age_s=now - (now if since is None else since),
                in_use=slot_records.in_use(store, backend),
                capacity=slots.capacity(store, backend),
            )
        except Exception:
            log.exception("queue gauges not written", extra={"backend": backend})
