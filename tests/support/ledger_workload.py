"""A concurrent hold/settle workload on the real Ledger service, and the books it must keep.

Used by the property test (embedded store, every commit checked) and by its smaller twin on
the Firestore emulator (final books checked), so both stores face the same interleavings.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from aiprod.config import Settings
from aiprod.domain.ledger import day_key, parse_shard_key
from aiprod.ports import DocumentStore
from aiprod.repositories.ledger import POOLS, SHARDS
from aiprod.services.budget_admin import read_books
from aiprod.services.budget_audit import check_structure
from aiprod.services.ledger import Ledger

DAY = "2027-01-15"


@dataclass(frozen=True)
class Op:
    """Hold ``amount`` in ``scopes``; settle at ``ratio`` of it (0: release)."""

    amount: int
    ratio: float
    tenant: bool


@dataclass
class Outcome:
    held_ok: int = 0
    refused: int = 0
    charged: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: list[BaseException] = field(default_factory=list)


def run_workload(store: DocumentStore, book: Ledger, scripts: list[list[Op]], seed: int) -> Outcome:
    """Each script runs on its own thread: holds in order, settling open holds at random."""
    outcome = Outcome()
    lock = threading.Lock()

    def worker(script: list[Op], rng: random.Random) -> None:
        open_holds: list[tuple[Op, list[str]]] = []
        try:
            for op in script:
                scopes = ("global", "tenant:t") if op.tenant else ("global",)
                keys = store.run_transaction(
                    lambda tx, s=scopes, a=op.amount: book.reserve(tx, s, DAY, a)
                )
                with lock:
                    outcome.held_ok += keys is not None
                    outcome.refused += keys is None
                if keys is not None:
                    open_holds.append((op, keys))
                while open_holds and rng.random() < 0.5:
                    _settle(
                        store, book, open_holds.pop(rng.randrange(len(open_holds))), outcome, lock
                    )
            while open_holds:
                _settle(store, book, open_holds.pop(), outcome, lock)
        except BaseException as exc:
            with lock:
                outcome.errors.append(exc)

    threads = [
        threading.Thread(target=worker, args=(script, random.Random(seed + i)))
        for i, script in enumerate(scripts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return outcome


def _settle(store, book: Ledger, item, outcome: Outcome, lock) -> None:
    op, keys = item
    actual = int(op.amount * op.ratio)
    store.run_transaction(lambda tx: book.settle(tx, keys, op.amount, actual))
    with lock:
        for key in keys:
            outcome.charged[parse_shard_key(key)[0]] += actual


def books(store: DocumentStore) -> dict[str, dict[str, int]]:
    """Per scope-day: limit, unallotted, allot, held, spent, overrun (summed over shards)."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for doc in store.list(SHARDS, limit=100_000):
        entry = totals[day_key(doc["scope"], doc["day"])]
        for name in ("allot_micros", "held_micros", "spent_micros", "overrun_micros"):
            entry[name] += doc[name]
        entry["over_allot"] += max(
            0, doc["held_micros"] + doc["spent_micros"] - doc["allot_micros"]
        )
    for pool in store.list(POOLS, limit=100_000):
        entry = totals[day_key(pool["scope"], pool["day"])]
        entry["limit_micros"] = pool["limit_micros"]
        entry["unallotted_micros"] = pool["unallotted_micros"]
    return {key: dict(values) for key, values in totals.items()}


def invariant_violations(store: DocumentStore) -> list[str]:
    """What breaks the ledger's promises right now (empty when the books are sound): the
    production audit's structural checks, and holds never taking spent + held past the limit
    (only a provider's overrun may)."""
    days = read_books(store, DAY)
    found = [str(d) for d in check_structure(days, Settings())]
    found += [
        f"{scope}@{DAY}: shards without a pool" for scope in set(days.shards) - set(days.pools)
    ]
    for key, t in books(store).items():
        committed = t.get("held_micros", 0) + t.get("spent_micros", 0)
        limit = t.get("limit_micros")
        if limit is not None and committed - t.get("overrun_micros", 0) > limit:
            found.append(f"{key}: holds took spent + held to {committed} past the limit {limit}")
    return found
