"""The ledger's books under concurrent workers, on each store (embedded and the emulator).

The property test in tests/unit explores many interleavings on the embedded store and
checks every commit; this smaller fixed workload runs the same service code against the
Firestore emulator's optimistic transactions and checks the books at the end.
"""

from __future__ import annotations

import random

from aiprod.config import Settings
from aiprod.domain.ledger import day_key
from aiprod.ports import DocumentStore
from aiprod.services.ledger import Ledger
from support.ledger_workload import DAY, Op, books, invariant_violations, run_workload


def _scripts(workers: int, ops: int, seed: int) -> list[list[Op]]:
    rng = random.Random(seed)
    ratios = [0.0, 0.5, 1.0, 1.0, 1.2]
    return [
        [
            Op(rng.randint(50_000, 900_000), rng.choice(ratios), rng.random() < 0.4)
            for _ in range(ops)
        ]
        for _ in range(workers)
    ]


def test_concurrent_workers_leave_exact_books(store: DocumentStore):
    # GIVEN a 3 USD day (a 1 USD tenant) on 4 shards, and 6 workers of 8 holds each:
    # more than the budget admits, so some holds are refused
    config = Settings(
        global_limit_micros=3_000_000, tenant_limits={"t": 1_000_000}, ledger_shards=4
    )
    book = Ledger(config, rng=random.Random(7))
    scripts = _scripts(workers=6, ops=8, seed=11)

    # WHEN they hold, settle, overrun and release concurrently
    outcome = run_workload(store, book, scripts, seed=3)

    # THEN nothing failed, some holds were refused, and the books are exact and sound
    assert outcome.errors == []
    assert outcome.refused > 0 and outcome.held_ok > 0
    assert invariant_violations(store) == []
    final = books(store)
    for scope in ("global", "tenant:t"):
        entry = final[day_key(scope, DAY)]
        assert entry["held_micros"] == 0
        assert entry["spent_micros"] == outcome.charged[scope]
