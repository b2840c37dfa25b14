"""Budget checks on what the store recorded, with the production audit (``aiprod budget
audit``, ``services.budget_audit``) as the oracle, and a watcher that samples the ledger while
a scenario runs to catch any moment with spent + held over the limit. The ledger is sharded:
a scope's day is a pool plus shards, so totals are sums over shards.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiprod.config import Settings
from aiprod.domain.ledger import day_key
from aiprod.ports import Document, DocumentStore
from aiprod.repositories.ledger import SHARDS
from aiprod.services.budget_admin import read_books
from aiprod.services.budget_audit import audit, check_structure


def totals_by_scope(store: DocumentStore) -> dict[str, dict[str, int]]:
    """Held, spent and overrun summed over the days of each scope (``global``, ``tenant:x``)."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for entry in store.list(SHARDS):
        for name in ("held_micros", "spent_micros", "overrun_micros"):
            totals[entry["scope"]][name] += entry.get(name, 0)
    return {scope: dict(values) for scope, values in totals.items()}


def expected_spend(jobs: Iterable[Document]) -> dict[str, int]:
    """What each scope should have spent: the cost of every job it covers."""
    spend: dict[str, int] = defaultdict(int)
    for job in jobs:
        spend["global"] += job["cost_micros"]
        if job.get("tenant"):
            spend[f"tenant:{job['tenant']}"] += job["cost_micros"]
    return dict(spend)


def ledger_days(store: DocumentStore) -> list[str]:
    return sorted({shard["day"] for shard in store.list(SHARDS)})


def assert_books_balanced(store: DocumentStore, jobs: Iterable[Document]) -> None:
    """Nothing is held, every scope spent exactly what its jobs cost (no double charge), and
    the audit finds each shard in line with the attempts that name it."""
    jobs = list(jobs)
    for job in jobs:
        assert job["cost_micros"] == sum(a["cost_micros"] for a in job["attempts"]), job["job_id"]
    totals = totals_by_scope(store)
    held = {scope: t["held_micros"] for scope, t in totals.items() if t["held_micros"]}
    assert held == {}, f"holds outlived their jobs: {held}"
    spent = {scope: t["spent_micros"] for scope, t in totals.items() if t["spent_micros"]}
    wanted = {scope: amount for scope, amount in expected_spend(jobs).items() if amount}
    assert spent == wanted, f"ledger spent {spent}, jobs cost {wanted}"
    for day in ledger_days(store):
        report = audit(store, Settings(), day)
        assert report.ok, f"audit of {day}: {report.discrepancies}"


def assert_allotments_conserved(store: DocumentStore) -> None:
    """Each scope's day: what its pool has not allotted plus its shards' allotments is its
    limit, and no shard commits past its allotment (the audit's structural checks)."""
    for day in ledger_days(store):
        books = read_books(store, day)
        assert set(books.shards) <= set(books.pools), f"shards without a pool on {day}"
        found = check_structure(books, Settings())
        assert found == [], f"{day}: {found}"


@dataclass
class LedgerWatch:
    """Samples the ledger on a background thread (``with LedgerWatch(store, limits):``).

    Each sample is one query over every shard (a consistent snapshot); per scope and day the
    shards' spent + held is checked against ``limits`` (a scope not named there is checked
    against the ``global`` limit, which is a tenant's default).
    """

    store: DocumentStore
    limits: dict[str, int]
    interval_s: float = 0.05
    samples: int = 0
    errors: int = 0
    peak: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    breaches: list[tuple[str, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> LedgerWatch:
        self._thread = threading.Thread(target=self._run, name="ledger-watch", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sample()  # the final state counts too

    def sample(self) -> None:
        try:
            shards = self.store.list(SHARDS)
        except Exception:  # a sample lost to a transient read error is only a gap
            self.errors += 1
            return
        self.samples += 1
        committed: dict[tuple[str, str], int] = defaultdict(int)
        for shard in shards:
            if shard["held_micros"] < 0:
                self.breaches.append((shard["scope"], shard["held_micros"]))
            committed[shard["scope"], shard["day"]] += shard["spent_micros"] + shard["held_micros"]
        for (scope, day), amount in committed.items():
            key = day_key(scope, day)
            self.peak[key] = max(self.peak[key], amount)
            if amount > self.limits.get(scope, self.limits["global"]):
                self.breaches.append((key, amount))

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.sample()
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
