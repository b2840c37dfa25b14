"""Budget arithmetic in integer micro-USD: holds, settlement, thresholds. No I/O.

A hold reserves the worst case before a provider is called; settlement replaces it with the
provider-reported cost. ``spent + held <= limit`` is the invariant every hold preserves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo


class BudgetState(StrEnum):
    NORMAL = "normal"
    WARNING = "warning"  # route new jobs cheapest-first
    CRITICAL = "critical"  # admit no new jobs; admitted jobs may still hold for fallbacks
    EXHAUSTED = "exhausted"


@dataclass(frozen=True)
class Thresholds:
    warning: float = 0.70
    critical: float = 0.90


@dataclass(frozen=True)
class LedgerEntry:
    """One scope's day: its limit and what is held and spent against it."""

    scope: str
    day: str
    limit_micros: int
    held_micros: int = 0
    spent_micros: int = 0
    overrun_micros: int = 0

    @property
    def key(self) -> str:
        return ledger_key(self.scope, self.day)

    @property
    def committed(self) -> int:
        return self.held_micros + self.spent_micros

    @property
    def headroom(self) -> int:
        return max(0, self.limit_micros - self.committed)

    def utilization(self) -> float:
        return 1.0 if self.limit_micros <= 0 else self.committed / self.limit_micros

    def state(self, thresholds: Thresholds) -> BudgetState:
        used = self.utilization()
        if used >= 1.0:
            return BudgetState.EXHAUSTED
        if used >= thresholds.critical:
            return BudgetState.CRITICAL
        if used >= thresholds.warning:
            return BudgetState.WARNING
        return BudgetState.NORMAL

    def fits(self, amount: int) -> bool:
        return self.committed + amount <= self.limit_micros

    def hold(self, amount: int) -> LedgerEntry:
        if amount < 0 or not self.fits(amount):
            raise ValueError(f"hold of {amount} does not fit {self.key} (headroom {self.headroom})")
        return replace(self, held_micros=self.held_micros + amount)

    def settle(self, held: int, actual: int) -> LedgerEntry:
        """Replace a hold by the actual cost (0 releases it); an overrun is charged and noted."""
        if held < 0 or actual < 0 or held > self.held_micros:
            raise ValueError(f"cannot settle hold {held} (actual {actual}) on {self.key}")
        return replace(
            self,
            held_micros=self.held_micros - held,
            spent_micros=self.spent_micros + actual,
            overrun_micros=self.overrun_micros + max(0, actual - held),
        )


def ledger_key(scope: str, day: str) -> str:
    return f"{scope}@{day}"


def budget_day(now: float, timezone: str) -> str:
    """The budget day a moment belongs to, in the configured time zone."""
    return datetime.fromtimestamp(now, ZoneInfo(timezone)).date().isoformat()


def scopes_for(tenant: str | None) -> tuple[str, ...]:
    """Every scope a job's hold must fit: the global budget, and its tenant's when named."""
    return ("global",) if tenant is None else ("global", f"tenant:{tenant}")


def tightest(entries: list[LedgerEntry], thresholds: Thresholds) -> BudgetState:
    order = list(BudgetState)
    return max((e.state(thresholds) for e in entries), key=order.index, default=BudgetState.NORMAL)


def headroom(entries: list[LedgerEntry]) -> int:
    return min((e.headroom for e in entries), default=0)
