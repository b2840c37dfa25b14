"""The embedded store as a recording fake: it notes the peak budget commitment of every ledger
entry after each commit, and fails reads of chosen collections the way an outage would."""

from __future__ import annotations

from collections import defaultdict

from aiprod.adapters.embedded_store import EmbeddedStore
from aiprod.domain.ledger import day_key
from aiprod.exceptions import StoreUnavailableError
from aiprod.ports import Transaction
from aiprod.repositories.ledger import SHARDS


class _FaultyTransaction(Transaction):
    def __init__(self, tx: Transaction, unavailable: set[str]):
        self._tx, self._unavailable = tx, unavailable

    def get(self, collection: str, doc_id: str):
        if collection in self._unavailable:
            raise StoreUnavailableError(f"{collection} unreadable (injected)")
        return self._tx.get(collection, doc_id)

    def set(self, collection: str, doc_id: str, data) -> None:
        self._tx.set(collection, doc_id, data)


class LedgerWatchingStore(EmbeddedStore):
    """The embedded store, noting after every commit the peak spent + held of each ledger
    entry; reads of the collections named in ``unavailable`` fail as an outage would."""

    def __init__(self) -> None:
        super().__init__()
        self.peak_committed: dict[str, int] = defaultdict(int)
        self.unavailable: set[str] = set()

    def run_transaction(self, body):
        with self._lock:
            result = super().run_transaction(
                lambda tx: body(_FaultyTransaction(tx, self.unavailable))
            )
            committed: dict[str, int] = defaultdict(int)
            for doc in self.list(SHARDS):
                key = day_key(doc["scope"], doc["day"])
                committed[key] += doc["spent_micros"] + doc["held_micros"]
            for key, total in committed.items():
                self.peak_committed[key] = max(self.peak_committed[key], total)
            return result

    def get(self, collection: str, doc_id: str):
        if collection in self.unavailable:
            raise StoreUnavailableError(f"{collection} unreadable (injected)")
        return super().get(collection, doc_id)
