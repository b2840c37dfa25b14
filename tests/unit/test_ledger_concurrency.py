"""Property: any interleaving of concurrent holds, settles and releases keeps the books exact.

Workers run on threads against the embedded store; the store checks the invariants after
every commit (spent + held within the limit, allotments conserved, no shard past its
allotment), so a single bad instant fails the test, not only the final state.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from aiprod.adapters.embedded_store import EmbeddedStore
from aiprod.config import Settings
from aiprod.domain.ledger import day_key
from aiprod.services.ledger import Ledger
from support.ledger_workload import DAY, Op, books, invariant_violations, run_workload

LIMIT = 5_000_000
TENANT_LIMIT = 2_000_000


class CheckedStore(EmbeddedStore):
    """Checks the ledger's invariants after every commit, while the lock is still held."""

    def __init__(self) -> None:
        super().__init__()
        self.violations: list[str] = []
        self.commits = 0

    def run_transaction(self, body):
        with self._lock:
            result = super().run_transaction(body)
            self.commits += 1
            self.violations += invariant_violations(self)
            return result


OPS = st.builds(
    Op,
    amount=st.integers(1, 1_500_000),
    ratio=st.sampled_from([0.0, 0.5, 0.9, 1.0, 1.0, 1.2]),  # release, below, exact, overrun
    tenant=st.booleans(),
)


@settings(max_examples=60, deadline=None)
@given(
    scripts=st.lists(st.lists(OPS, min_size=1, max_size=25), min_size=2, max_size=6),
    shards=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
def test_concurrent_holds_and_settles_keep_the_books_exact(scripts, shards, seed):
    # GIVEN a 5 USD global day, a 2 USD tenant day, and `shards` shards per scope
    store = CheckedStore()
    config = Settings(
        global_limit_micros=LIMIT, tenant_limits={"t": TENANT_LIMIT}, ledger_shards=shards
    )
    book = Ledger(config)

    # WHEN several workers hold, settle (below, at and above the hold) and release at once
    outcome = run_workload(store, book, scripts, seed)

    # THEN no commit ever broke an invariant, and at the end nothing is held and every
    # scope spent exactly what was charged to it
    assert outcome.errors == []
    assert store.violations == []
    final = books(store)
    for scope in ("global", "tenant:t"):
        entry = final.get(day_key(scope, DAY), {})
        assert entry.get("held_micros", 0) == 0
        assert entry.get("spent_micros", 0) == outcome.charged.get(scope, 0)
    assert outcome.held_ok + outcome.refused == sum(len(s) for s in scripts)
