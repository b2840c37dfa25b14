"""``aiprod budget audit``: do a day's books agree with the jobs that moved them?

- per shard: ``held`` is the sum of the holds of the open attempts whose ``ledger_keys`` name
  it; ``spent`` the sum of the costs of the closed ones; ``overrun`` their costs past the hold;
  and ``held + spent <= allot``;
- per scope: ``pool.unallotted + sum(allot) == limit``.

Only jobs updated since the day began (less a day's margin for clock and time-zone slack) are
scanned: an attempt on day D was dispatched on D, so its job was updated on D or later. The
ledger is read before and after the scan; a busy system may move it in between, so the audit
re-reads until it stands still (or says that it did not).

The spend audit's unattributed charges (``repositories.unattributed``) are spent on a global
shard with no attempt behind them: each shard is expected to have spent those too, and the
report carries their count and sum (the ``unattributed`` line).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from aiprod.config import Settings
from aiprod.domain import ledger
from aiprod.domain.jobs import Job
from aiprod.ports import DocumentStore
from aiprod.repositories import jobs, unattributed
from aiprod.services.budget_admin import MAX_DOCS, DayBooks, read_books

MARGIN_S = 86_400.0


@dataclass(frozen=True)
class Discrepancy:
    key: str  # a shard key (``global@2027-01-15#003``) or a scope's day (``global@2027-01-15``)
    check: str  # held | spent | overrun | allotment | conservation
    found: int
    expected: int


@dataclass(frozen=True)
class Expected:
    """Per shard key: what the attempts say it should hold, have spent, and have overrun."""

    held: dict[str, int]
    spent: dict[str, int]
    overrun: dict[str, int]
    attempts: int


@dataclass(frozen=True)
class AuditReport:
    day: str
    shards: int
    jobs_scanned: int
    attempts: int
    discrepancies: list[Discrepancy]
    steady: bool  # the ledger did not move while the jobs were read
    truncated: bool  # the job scan hit its limit (then some attempts were not seen)
    unattributed: int = 0  # the spend audit's charges on this day (no attempt behind them)
    unattributed_micros: int = 0

    @property
    def ok(self) -> bool:
        return not self.discrepancies


def audit(
    store: DocumentStore, settings: Settings, day: str, tries: int = 3, max_jobs: int = MAX_DOCS
) -> AuditReport:
    since = day_start(day, settings.timezone) - MARGIN_S
    books = read_books(store, day)
    for attempt in range(1, tries + 1):
        scanned = jobs.updated_since(store, since, max_jobs)
        after = read_books(store, day)
        steady = after == books
        if steady or attempt == tries:
            break
        books = after
    charges = unattributed.of_day(store, day)
    expected = expected_from(scanned, day)
    for charge in charges:
        expected.spent[charge.shard_key] = expected.spent.get(charge.shard_key, 0)
        expected.spent[charge.shard_key] += charge.amount_micros
    shards = sum(len(s) for s in after.shards.values())
    found = check(after, expected, settings)
    truncated, charged = len(scanned) >= max_jobs, sum(c.amount_micros for c in charges)
    seen = (day, shards, len(scanned), expected.attempts)
    return AuditReport(*seen, found, steady, truncated, len(charges), charged)


def expected_from(scanned: list[Job], day: str) -> Expected:
    """What each shard of ``day`` should show, from the attempts that name it."""
    held: dict[str, int] = defaultdict(int)
    spent: dict[str, int] = defaultdict(int)
    overrun: dict[str, int] = defaultdict(int)
    attempts = 0
    for job in scanned:
        for attempt in job.attempts:
            keys = [k for k in attempt.ledger_keys if ledger.parse_shard_key(k)[1] == day]
            attempts += bool(keys)
            for key in keys:
                if attempt.holds_budget:
                    held[key] += attempt.hold_micros
                else:
                    spent[key] += attempt.cost_micros
                    overrun[key] += max(0, attempt.cost_micros - attempt.hold_micros)
    return Expected(dict(held), dict(spent), dict(overrun), attempts)


def check(books: DayBooks, expected: Expected, settings: Settings) -> list[Discrepancy]:
    """Every discrepancy, shard by shard (against the attempts, then its allotment), then
    each scope's conservation: the order ``aiprod budget audit`` prints them in."""
    structure = check_structure(books, settings)
    per_shard = check_against(books, expected) + [d for d in structure if d.check == "allotment"]
    scopes = [d for d in structure if d.check != "allotment"]
    return sorted(per_shard, key=lambda d: d.key) + scopes


def check_against(books: DayBooks, expected: Expected) -> list[Discrepancy]:
    """Each shard's held, spent and overrun against what the attempts naming it say."""
    found: list[Discrepancy] = []
    shards = _shards_by_key(books)
    named = set(expected.held) | set(expected.spent) | set(expected.overrun)
    for key in sorted(set(shards) | named):
        shard = shards.get(key) or ledger.Shard(*ledger.parse_shard_key(key))
        pairs = (
            ("held", shard.held_micros, expected.held.get(key, 0)),
            ("spent", shard.spent_micros, expected.spent.get(key, 0)),
            ("overrun", shard.overrun_micros, expected.overrun.get(key, 0)),
        )
        found += [Discrepancy(key, name, a, b) for name, a, b in pairs if a != b]
    return found


def check_structure(books: DayBooks, settings: Settings) -> list[Discrepancy]:
    """The sharded ledger's own invariants, true at every commit whatever is in flight: no
    shard commits past its allotment, and a scope's pool plus allotments is its limit."""
    found: list[Discrepancy] = []
    for key, shard in sorted(_shards_by_key(books).items()):
        committed = shard.held_micros + shard.spent_micros
        if committed > shard.allot_micros:
            found.append(Discrepancy(key, "allotment", committed, shard.allot_micros))
    for scope in sorted(set(books.shards) | set(books.pools)):
        pool = books.pool_or_new(scope, settings)
        allotted = sum(s.allot_micros for s in books.shards.get(scope, []))
        total = pool.unallotted_micros + allotted
        if total != pool.limit_micros:
            found.append(Discrepancy(pool.key, "conservation", total, pool.limit_micros))
    return found


def _shards_by_key(books: DayBooks) -> dict[str, ledger.Shard]:
    return {s.key: s for scope in books.shards.values() for s in scope}


def day_start(day: str, timezone: str) -> float:
    """The epoch second a budget day begins in the configured time zone."""
    midnight = datetime.combine(date.fromisoformat(day), datetime.min.time())
    return midnight.replace(tzinfo=ZoneInfo(timezone)).timestamp()
