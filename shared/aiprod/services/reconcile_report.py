"""What one reconciler sweep did: a count per action, for its log line, its metric and the
``aiprod reconcile`` table."""

from __future__ import annotations

from dataclasses import asdict, dataclass

SKIPPED = "skipped"


@dataclass
class ReconcileReport:
    """How many jobs each action touched in one sweep."""

    redispatched: int = 0  # never claimed: its task published again
    reported: int = 0  # a finished provider task: outcome stored and published
    extended: int = 0  # the provider task is still running: lease extended
    timed_out: int = 0  # nothing to poll: failed as lease_expired (the job falls back)
    overdue: int = 0  # past the job's wall time: failed as wall_time_exceeded
    republished: int = 0  # a stored outcome never applied: published again
    restarted: int = 0  # its worker was lost before sending anything: dispatched again
    adopted: int = 0  # a lost create's task found at the provider: polled from now on
    late_charged: int = 0  # a late provider task finished: what it cost was charged
    dequeued: int = 0  # queued jobs started where a slot was free
    skipped: int = 0  # changed since read: someone else acted first
    errors: int = 0  # failed this time (logged); the next sweep tries again
    unreadable: int = 0  # a job document that does not decode (logged, skipped)

    def count(self, action: str) -> None:
        setattr(self, action, getattr(self, action) + 1)

    def to_json(self) -> dict[str, int]:
        return asdict(self)
