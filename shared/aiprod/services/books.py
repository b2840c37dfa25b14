"""What the budget-holding handlers share (route_job and handle_outcome): where state lives,
where messages go, the budget and circuit books, settings, time and telemetry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiprod.config import Settings
from aiprod.ports import DocumentStore
from aiprod.services.health import HealthBook
from aiprod.services.ledger import Ledger
from aiprod.services.outbox import Outbox
from aiprod.services.queue import RenderQueue
from aiprod.services.slots import SlotBook
from aiprod.services.telemetry import Telemetry


@dataclass(frozen=True)
class Books:
    store: DocumentStore
    outbox: Outbox
    settings: Settings
    health: HealthBook
    ledger: Ledger
    clock: Callable[[], float]
    telemetry: Telemetry
    slots: SlotBook | None = None  # None: no capacity limit (a dispatch never queues)
    queue: RenderQueue | None = None
