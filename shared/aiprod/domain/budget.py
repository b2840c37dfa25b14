"""The budget as admission sees it: a scope's day in totals, its state against the thresholds,
which scopes a job's hold must fit, and which day a moment belongs to. Pure.

The holds and settlements themselves are the sharded ledger's (``domain.ledger``): a hold
reserves the worst case before a provider is called, settlement replaces it with the
provider-reported cost, and ``spent + held <= limit`` holds on every shard.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from aiprod.domain.ledger import Shard, day_key


class BudgetState(StrEnum):
    NORMAL = "normal"
    WARNING = "warning"  # route new jobs cheapest-first
    CRITICAL = "critical"  # admit no new jobs; admitted jobs may still hold for fallbacks
    EXHAUSTED = "exhausted"


@dataclass(frozen=True)
class Thresholds:
    """Shares of a day's limit: from ``warning`` new jobs go cheapest-first, from ``critical``
    none are admitted. The defaults are the product's policy (``AIPROD_BUDGET_WARNING`` /
    ``AIPROD_BUDGET_CRITICAL`` override them)."""

    warning: float = 0.70
    critical: float = 0.90


@dataclass(frozen=True)
class BudgetTotals:
    """One scope's budget day summed over its shards: the limit and what is held, spent and
    overrun against it. What admission reads (``Ledger.snapshot``) and operators see; the
    holds and settlements themselves are the shards' (``domain.ledger``)."""

    scope: str
    day: str
    limit_micros: int
    held_micros: int = 0
    spent_micros: int = 0
    overrun_micros: int = 0

    @property
    def key(self) -> str:
        return day_key(self.scope, self.day)

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


def totals(scope: str, day: str, limit_micros: int, shards: Iterable[Shard]) -> BudgetTotals:
    """A scope's day from its shards (any subset that exists; a missing shard holds nothing)."""
    shards = list(shards)
    return BudgetTotals(
        scope=scope,
        day=day,
        limit_micros=limit_micros,
        held_micros=sum(s.held_micros for s in shards),
        spent_micros=sum(s.spent_micros for s in shards),
        overrun_micros=sum(s.overrun_micros for s in shards),
    )


def budget_day(now: float, timezone: str) -> str:
    """The budget day a moment belongs to, in the configured time zone."""
    return datetime.fromtimestamp(now, ZoneInfo(timezone)).date().isoformat()


def scopes_for(tenant: str | None) -> tuple[str, ...]:
    """Every scope a job's hold must fit: the global budget, and its tenant's when named."""
    return ("global",) if tenant is None else ("global", f"tenant:{tenant}")


def tightest(entries: list[BudgetTotals], thresholds: Thresholds) -> BudgetState:
    order = list(BudgetState)
    return max((e.state(thresholds) for e in entries), key=order.index, default=BudgetState.NORMAL)


def headroom(entries: list[BudgetTotals]) -> int:
    return min((e.headroom for e in entries), default=0)
