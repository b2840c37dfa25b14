"""``aiprod spend``: what was spent over the last budget days, by day, tenant or backend.

By day and by tenant come from the ledger's days (the ``day == D`` shards of each day: every
scope's spent, summed over its shards). The ledger keeps no backend, so by backend sums the
cost of every attempt whose ledger shards are on those days (jobs read with one
``updated_at >= start`` range query, at most ``max_jobs``), plus the spend audit's
unattributed charges per provider; ``ledger_micros`` is the ledger's own total for the same
scope, so the two can be compared (they differ only when the job scan was cut short).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from aiprod.domain.ledger import parse_shard_key
from aiprod.ports import DocumentStore
from aiprod.repositories import jobs, unattributed
from aiprod.repositories import ledger as books
from aiprod.services.budget_audit import MARGIN_S, day_start

GROUPINGS = ("day", "tenant", "backend")
MAX_SHARDS = 100_000
MAX_JOBS = 20_000


@dataclass
class SpendHistory:
    by: str
    days: list[str]
    scope: str  # global, or tenant:<name> when one tenant was asked for
    rows: dict[str, int] = field(default_factory=dict)  # key (day, tenant, backend) → spent
    ledger_micros: int = 0  # the scope's spent over the days, from the ledger
    truncated: bool = False  # by backend: the job scan hit its limit

    def to_json(self) -> dict:
        rows = [{self.by: key, "spent_micros": spent} for key, spent in self.rows.items()]
        return {
            "by": self.by,
            "days": self.days,
            "scope": self.scope,
            "rows": rows,
            "total_micros": sum(self.rows.values()),
            "ledger_micros": self.ledger_micros,
            "truncated": self.truncated,
        }


def last_days(today: str, count: int) -> list[str]:
    """The ``count`` budget days ending with ``today``, oldest first."""
    end = date.fromisoformat(today)
    return [(end - timedelta(days=n)).isoformat() for n in range(count - 1, -1, -1)]


def spend(
    store: DocumentStore, days: list[str], by: str, tenant: str | None, timezone: str
) -> SpendHistory:
    scope = "global" if tenant is None else f"tenant:{tenant}"
    spent = _ledger_spent(store, days)  # (scope, day) → spent
    history = SpendHistory(by, days, scope)
    history.ledger_micros = sum(v for (s, _), v in spent.items() if s == scope)
    if by == "day":
        history.rows = {day: spent.get((scope, day), 0) for day in days}
    elif by == "tenant":
        history.rows = _by_tenant(spent, tenant)
    else:
        since = day_start(days[0], timezone) - MARGIN_S
        history.rows, history.truncated = _by_backend(store, days, tenant, since)
    return history


def _ledger_spent(store: DocumentStore, days: list[str]) -> dict[tuple[str, str], int]:
    spent: dict[tuple[str, str], int] = defaultdict(int)
    for day in days:
        for shard in books.shards_of_day(store, day, MAX_SHARDS):
            spent[(shard.scope, day)] += shard.spent_micros
    return spent


def _by_tenant(spent: dict[tuple[str, str], int], tenant: str | None) -> dict[str, int]:
    """Each tenant's scope; ``-`` is the rest of the global spend (jobs with no tenant and
    the spend audit's unattributed charges)."""
    rows: dict[str, int] = defaultdict(int)
    for (scope, _), amount in spent.items():
        if scope.startswith("tenant:") and tenant in (None, scope.removeprefix("tenant:")):
            rows[scope.removeprefix("tenant:")] += amount
    if tenant is None:
        total = sum(v for (s, _), v in spent.items() if s == "global")
        rows["-"] = total - sum(rows.values())
    return dict(sorted(rows.items()))


def _by_backend(
    store: DocumentStore, days: list[str], tenant: str | None, since: float
) -> tuple[dict[str, int], bool]:
    rows: dict[str, int] = defaultdict(int)
    scanned = jobs.updated_since(store, since, MAX_JOBS)
    wanted = set(days)
    for job in scanned:
        if tenant is not None and job.tenant != tenant:
            continue
        for attempt in job.attempts:
            ledger_days = {parse_shard_key(key)[1] for key in attempt.ledger_keys}
            if ledger_days & wanted:
                rows[attempt.backend] += attempt.cost_micros
    if tenant is None:  # unattributed charges are on the global scope only
        for day in days:
            for charge in unattributed.of_day(store, day):
                rows[charge.provider] += charge.amount_micros
    return dict(sorted(rows.items())), len(scanned) >= MAX_JOBS
