"""In-process document store with the port's transaction semantics.

Transactions are serialized by one lock, which is exact and fast inside one process; writes
are buffered (reads see them) and applied together at the end. The contract suite holds it
to the same behaviour as the Firestore adapter.
"""

from __future__ import annotations

import copy
import operator
import threading
from collections.abc import Callable

from aiprod.ports import Document, DocumentStore, QueryOp, T, Transaction

RANGE_OPS = frozenset({"<", "<=", ">", ">="})
COMPARE = {
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    ">": operator.gt,
    ">=": operator.ge,
    "array_contains": lambda field, value: isinstance(field, list) and value in field,
}


class _EmbeddedTransaction(Transaction):
    def __init__(self, docs: dict[str, dict[str, Document]]):
        self._docs = docs
        self._writes: dict[tuple[str, str], Document] = {}

    def get(self, collection: str, doc_id: str) -> Document | None:
        if (collection, doc_id) in self._writes:
            return copy.deepcopy(self._writes[collection, doc_id])
        return copy.deepcopy(self._docs.get(collection, {}).get(doc_id))

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        self._writes[collection, doc_id] = copy.deepcopy(data)

    def commit(self) -> None:
        for (collection, doc_id), data in self._writes.items():
            self._docs.setdefault(collection, {})[doc_id] = data


class EmbeddedStore(DocumentStore):
    def __init__(self) -> None:
        self._docs: dict[str, dict[str, Document]] = {}
        self._lock = threading.RLock()

    def run_transaction(self, body: Callable[[Transaction], T]) -> T:
        with self._lock:
            tx = _EmbeddedTransaction(self._docs)
            result = body(tx)
            tx.commit()
            return result

    def get(self, collection: str, doc_id: str) -> Document | None:
        with self._lock:
            return copy.deepcopy(self._docs.get(collection, {}).get(doc_id))

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        with self._lock:
            self._docs.setdefault(collection, {})[doc_id] = copy.deepcopy(data)

    def list(self, collection: str, limit: int = 1000) -> list[Document]:
        with self._lock:
            docs = list(self._docs.get(collection, {}).values())[:limit]
            return copy.deepcopy(docs)

    def get_many(self, collection: str, doc_ids: list[str]) -> dict[str, Document]:
        with self._lock:
            found = self._docs.get(collection, {})
            return {i: copy.deepcopy(found[i]) for i in doc_ids if i in found}

    def query(
        self, collection: str, field: str, op: QueryOp, value: object, limit: int = 500
    ) -> list[Document]:
        compare = COMPARE[op]
        with self._lock:
            docs = self._docs.get(collection, {}).values()
            hits = [d for d in docs if d.get(field) is not None and compare(d[field], value)]
            if op in RANGE_OPS:  # as Firestore: a range query comes ordered by its field
                hits.sort(key=lambda d: d[field])
            return copy.deepcopy(hits[:limit])
