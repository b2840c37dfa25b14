"""Per-backend circuit breaker, as pure transitions over a small record.

Three consecutive provider-health failures open the circuit for a cooldown that doubles each
time it trips again (capped); after the cooldown one half-open probe is let through, and its
success closes the circuit. Errors that say nothing about the provider's health (a bad
request, the caller's own timeout) are not recorded here at all.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

FAILURES_TO_OPEN = 3
BASE_COOLDOWN_S = 60.0
MAX_COOLDOWN_S = 3600.0
PROBE_TIMEOUT_S = 600.0
# Our own output bucket has a circuit too: when keeping outputs keeps failing on our side
# (bucket missing or forbidden, storage down), new jobs are refused instead of paying
# providers for renders that cannot be delivered.
OUTPUT_STORE = "output-store"
OPERATOR_OPENED = "operator_opened"  # the last_error of a circuit an operator opened


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class Circuit:
    backend: str
    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    trips: int = 0
    open_until: float = 0.0
    probe_started_at: float | None = None
    last_error: str | None = None
    # An operator opened it (``aiprod circuits --open``): a render already running that
    # succeeds does not close it; the probe after ``open_until`` (or ``--close``) does.
    operator_hold: bool = False

    def admits(self, now: float) -> bool:
        """Would a new attempt be allowed now (closed, or a probe slot is free)?"""
        if self.state is CircuitState.CLOSED:
            return True
        return now >= self.open_until and not self._probe_in_flight(now)

    def needs_probe(self, now: float) -> bool:
        return self.state is not CircuitState.CLOSED and self.admits(now)

    def elect_probe(self, now: float) -> Circuit:
        """Half-open: this caller is the one probe (decided inside a transaction)."""
        return replace(self, state=CircuitState.HALF_OPEN, probe_started_at=now)

    def record_success(self) -> Circuit:
        if self.operator_hold and self.state is CircuitState.OPEN:
            return self
        return replace(
            self,
            state=CircuitState.CLOSED,
            consecutive_failures=0,
            trips=0,
            probe_started_at=None,
            last_error=None,
            operator_hold=False,
        )

    def record_failure(self, now: float, error: str) -> Circuit:
        failures = self.consecutive_failures + 1
        probe_failed = self.state is CircuitState.HALF_OPEN
        if probe_failed or (failures >= FAILURES_TO_OPEN and self.state is CircuitState.CLOSED):
            trips = self.trips + 1
            cooldown = min(BASE_COOLDOWN_S * 2 ** (trips - 1), MAX_COOLDOWN_S)
            return replace(
                self,
                state=CircuitState.OPEN,
                consecutive_failures=failures,
                trips=trips,
                open_until=now + cooldown,
                probe_started_at=None,
                last_error=error,
                operator_hold=False,
            )
        return replace(self, consecutive_failures=failures, last_error=error)

    def forced_open(self, now: float, hold_s: float) -> Circuit:
        """An operator opens it: no attempt for ``hold_s``, then one probe decides as usual."""
        return replace(
            self,
            state=CircuitState.OPEN,
            open_until=now + hold_s,
            probe_started_at=None,
            last_error=OPERATOR_OPENED,
            operator_hold=True,
        )

    def forced_closed(self) -> Circuit:
        """An operator closes it: as a successful probe would (failures and trips forgotten)."""
        return replace(self, operator_hold=False).record_success()

    def _probe_in_flight(self, now: float) -> bool:
        started = self.probe_started_at
        return started is not None and now - started < PROBE_TIMEOUT_S
