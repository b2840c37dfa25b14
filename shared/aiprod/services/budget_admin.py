"""Operator views of the budget (``aiprod budget show`` / ``set``): every scope's day as the
ledger holds it, and run-time limits.

Built on the store rather than ``Ledger.snapshot``: a day's shards are found by query on their
``day`` field, so the view counts every shard that exists, whatever ``AIPROD_LEDGER_SHARDS``
says in the shell that runs the command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from aiprod.config import Settings
from aiprod.domain import ledger
from aiprod.domain.budget import BudgetState, BudgetTotals, totals
from aiprod.domain.ledger import Pool, Shard
from aiprod.domain.messages import TENANT_PATTERN
from aiprod.domain.money import MoneyFormatError, parse_usd
from aiprod.exceptions import OperatorInputError
from aiprod.ports import DocumentStore
from aiprod.repositories import ledger as books
from aiprod.services.ledger import set_limit

SCOPE = re.compile(rf"^(global|tenant:{TENANT_PATTERN.strip('^$')})$")
MAX_DOCS = 100_000


@dataclass(frozen=True)
class DayBooks:
    """What the store holds for one budget day: shards and pools by scope, run-time limits."""

    day: str
    shards: dict[str, list[Shard]]
    pools: dict[str, Pool]
    runtime_limits: dict[str, int]

    @property
    def scopes(self) -> list[str]:
        found = set(self.shards) | set(self.pools) | set(self.runtime_limits)
        return sorted(found, key=lambda s: (s != "global", s))

    def pool_or_new(self, scope: str, settings: Settings) -> Pool:
        """The scope's pool, or the one a first hold would create (the whole limit unallotted)."""
        return self.pools.get(scope) or ledger.new_pool(
            scope, self.day, self.limit(scope, settings)
        )

    def limit(self, scope: str, settings: Settings) -> int:
        if scope in self.pools:
            return self.pools[scope].limit_micros
        return self.runtime_limits.get(scope, settings.limit_for(scope))

    def limit_source(self, scope: str) -> str:
        if scope in self.pools:
            return "pool"
        return "runtime" if scope in self.runtime_limits else "config"


def read_books(store: DocumentStore, day: str) -> DayBooks:
    shards: dict[str, list[Shard]] = {}
    for shard in sorted(books.shards_of_day(store, day, MAX_DOCS), key=lambda s: s.index):
        shards.setdefault(shard.scope, []).append(shard)
    pools = {pool.scope: pool for pool in books.pools_of_day(store, day, MAX_DOCS)}
    return DayBooks(day, shards, pools, books.runtime_limits(store, MAX_DOCS))


@dataclass(frozen=True)
class ScopeView:
    """One scope's day for an operator: the summed entry, its state, and where it stands."""

    entry: BudgetTotals
    state: BudgetState
    shards_used: int
    unallotted_micros: int  # the pool's; negative once the limit was lowered below commitments
    limit_source: str  # pool (today's), runtime (``aiprod budget set``) or config (environment)

    @property
    def over_committed(self) -> bool:
        return self.entry.committed > self.entry.limit_micros

    def to_json(self) -> dict:
        entry = self.entry
        return {
            "scope": entry.scope,
            "day": entry.day,
            "limit_micros": entry.limit_micros,
            "held_micros": entry.held_micros,
            "spent_micros": entry.spent_micros,
            "headroom_micros": entry.headroom,
            "overrun_micros": entry.overrun_micros,
            "utilization_pct": round(100 * entry.utilization(), 2),
            "state": self.state.value,
            "shards_used": self.shards_used,
            "unallotted_micros": self.unallotted_micros,
            "limit_source": self.limit_source,
        }


def scope_view(found: DayBooks, scope: str, settings: Settings) -> ScopeView:
    shards = found.shards.get(scope, [])
    entry = totals(scope, found.day, found.limit(scope, settings), shards)
    pool = found.pool_or_new(scope, settings)
    return ScopeView(
        entry,
        entry.state(settings.thresholds),
        len(shards),
        pool.unallotted_micros,
        found.limit_source(scope),
    )


def day_view(store: DocumentStore, settings: Settings, day: str) -> list[ScopeView]:
    """Every scope with shards, a pool or a run-time limit, global first."""
    found = read_books(store, day)
    return [scope_view(found, scope, settings) for scope in found.scopes]


@dataclass(frozen=True)
class LimitChange:
    before: ScopeView
    after: ScopeView


def change_limit(
    store: DocumentStore, settings: Settings, scope: str, day: str, limit: int
) -> LimitChange:
    """Store a run-time limit and resize ``day``'s allotments to it (``services.ledger``)."""
    found = read_books(store, day)
    before = scope_view(found, scope, settings)
    used = max((s.index + 1 for s in found.shards.get(scope, [])), default=0)
    # Resize every shard that exists, even past this shell's AIPROD_LEDGER_SHARDS.
    wide = replace(settings, ledger_shards=max(settings.ledger_shards, used))
    set_limit(store, wide, scope, day, limit)
    return LimitChange(before, scope_view(read_books(store, day), scope, settings))


def parse_scope(text: str) -> str:
    if not SCOPE.match(text):
        raise OperatorInputError(f"scope {text!r} is neither 'global' nor 'tenant:<name>'")
    return text


def parse_limit(text: str) -> int:
    """An operator's limit in USD as integer micro-USD (``aiprod budget set``)."""
    try:
        return parse_usd(text)
    except MoneyFormatError as exc:
        raise OperatorInputError(f"limit {text!r} {exc}") from exc
