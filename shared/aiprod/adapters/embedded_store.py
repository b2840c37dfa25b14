"""In-process document store with the port's transaction semantics.

Transactions are serialized by one lock, which is exact and fast inside one process; writes
are buffered (reads see them) and applied together at the end. The contract suite holds it
to the same behaviour as the Firestore adapter.
"""

from __future__ import annotations

import bisect
import operator
import threading
from collections.abc import Callable
from functools import partial

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


def _copied(value):
    """A deep copy of a document's JSON-like value (maps, lists and immutable scalars), so a
    caller's changes never reach the store; a few times faster than ``copy.deepcopy``,
    which every read and write here goes through."""
    if isinstance(value, dict):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_copied(item) for item in value)
    return value


class _RangeIndex:
    """One field of one collection, its values sorted with their document ids, so a range
    query reads only what it returns (the render queue's drains query often). Built on the
    field's first range query; a field whose values do not compare falls back to a scan."""

    def __init__(self, field: str, docs: dict[str, Document]):
        self.field = field
        self.entries = sorted(
            (doc[field], doc_id) for doc_id, doc in docs.items() if doc.get(field) is not None
        )

    def moved(self, doc_id: str, before: Document | None, after: Document | None) -> None:
        old = None if before is None else before.get(self.field)
        new = None if after is None else after.get(self.field)
        if old == new:
            return
        if old is not None:
            at = bisect.bisect_left(self.entries, (old, doc_id))
            if at < len(self.entries) and self.entries[at] == (old, doc_id):
                del self.entries[at]
        if new is not None:
            bisect.insort(self.entries, (new, doc_id))

    def ids(self, op: QueryOp, value: object, limit: int) -> list[str]:
        first = partial(bisect.bisect_left, self.entries, value, key=_value)
        past = partial(bisect.bisect_right, self.entries, value, key=_value)
        lo, hi = {
            ">=": (first(), None),
            ">": (past(), None),
            "<=": (0, past()),
            "<": (0, first()),
        }[op]
        return [doc_id for _, doc_id in self.entries[lo:hi][:limit]]


def _value(entry: tuple[object, str]) -> object:
    return entry[0]


class _EmbeddedTransaction(Transaction):
    def __init__(self, docs: dict[str, dict[str, Document]], write=None):
        self._docs = docs
        self._write = write
        self._writes: dict[tuple[str, str], Document] = {}

    def get(self, collection: str, doc_id: str) -> Document | None:
        if (collection, doc_id) in self._writes:
            return _copied(self._writes[collection, doc_id])
        return _copied(self._docs.get(collection, {}).get(doc_id))

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        self._writes[collection, doc_id] = _copied(data)

    def commit(self) -> None:
        for (collection, doc_id), data in self._writes.items():
            self._write(collection, doc_id, data)


class EmbeddedStore(DocumentStore):
    def __init__(self) -> None:
        self._docs: dict[str, dict[str, Document]] = {}
        self._lock = threading.RLock()
        # per collection, per field: its range index, or None once its values did not compare
        self._indexes: dict[str, dict[str, _RangeIndex | None]] = {}

    def run_transaction(self, body: Callable[[Transaction], T]) -> T:
        with self._lock:
            tx = _EmbeddedTransaction(self._docs, self._write)
            result = body(tx)
            tx.commit()
            return result

    def get(self, collection: str, doc_id: str) -> Document | None:
        with self._lock:
            return _copied(self._docs.get(collection, {}).get(doc_id))

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        with self._lock:
            self._write(collection, doc_id, _copied(data))

    def _write(self, collection: str, doc_id: str, data: Document) -> None:
        docs = self._docs.setdefault(collection, {})
        indexes = self._indexes.get(collection, {})
        for field, index in indexes.items():
            try:
                if index is not None:
                    index.moved(doc_id, docs.get(doc_id), data)
            except TypeError:  # a value that does not compare with the others: scan instead
                indexes[field] = None
        docs[doc_id] = data

    def list(self, collection: str, limit: int = 1000) -> list[Document]:
        with self._lock:
            docs = list(self._docs.get(collection, {}).values())[:limit]
            return _copied(docs)

    def get_many(self, collection: str, doc_ids: list[str]) -> dict[str, Document]:
        with self._lock:
            found = self._docs.get(collection, {})
            return {i: _copied(found[i]) for i in doc_ids if i in found}

    def query(
        self, collection: str, field: str, op: QueryOp, value: object, limit: int = 500
    ) -> list[Document]:
        compare = COMPARE[op]
        with self._lock:
            if op in RANGE_OPS:
                ids = self._indexed(collection, field, op, value, limit)
                if ids is not None:
                    found = self._docs.get(collection, {})
                    return _copied([found[doc_id] for doc_id in ids])
            docs = self._docs.get(collection, {}).values()
            hits = [d for d in docs if d.get(field) is not None and compare(d[field], value)]
            if op in RANGE_OPS:  # as Firestore: a range query comes ordered by its field
                hits.sort(key=lambda d: d[field])
            return _copied(hits[:limit])

    def _indexed(self, collection: str, field: str, op, value, limit: int) -> list[str] | None:
        """The ids a range query returns, from the field's index; None: scan instead."""
        indexes = self._indexes.setdefault(collection, {})
        try:
            if field not in indexes:
                indexes[field] = _RangeIndex(field, self._docs.get(collection, {}))
            index = indexes[field]
            return None if index is None else index.ids(op, value, limit)
        except TypeError:  # values that do not compare with each other, or with ``value``
            indexes[field] = None
            return None
