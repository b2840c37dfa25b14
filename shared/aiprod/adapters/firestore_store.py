"""Firestore behind the ``DocumentStore`` port: the only module that imports its SDK.

Transactions are optimistic, not Firestore's locking server transactions: the body reads
documents plainly (remembering each one's ``update_time``, or that it was absent), its writes
are buffered, and the commit is one atomic batch in which every written document carries a
precondition: unchanged since it was read, or still absent. A conflicting commit fails at
once (FAILED_PRECONDITION / ALREADY_EXISTS) and the body re-runs after a short random delay.

Why: a locking transaction holds its read locks until commit, so concurrent writers of one
document queue behind each other (on the emulator a blocked writer waits about 2 s and is
aborted: under 1 commit/s with 4 writers). Measured here on the emulator, optimistic batches
on one document sustain about 110 commits/s with 8 writers, exactly.

Plain reads are not one snapshot: a body can read one document before another writer's
commit and a second one after it (a torn view). Whatever the body writes is guarded by its
preconditions, so a torn view never commits; and when the body raises instead (its logic
met a state that cannot happen in a consistent view), the versions it read are checked
again and, if any moved, the body re-runs rather than failing. Documents read but not
written (circuit states, for instance) are advisory by design.

Only public SDK calls: an absent document is written with ``create`` (exists=False); a read
one with ``update`` under a ``last_update_time`` write option, naming every field: the new
values, and a delete for each field the read document had and the new one lacks. ``update``
replaces each named top-level field whole (a map value included), and the precondition
guarantees the document is still the one read, so the result is exactly a replace.

``expire_at`` (``ports.EXPIRE_AT``, epoch seconds) is written as a Timestamp, as Firestore
TTL policies require (infra/storage.tf), and read back as epoch seconds.

The client is built on first use (never at import or construction). Transient SDK faults
surface as ``StoreUnavailableError`` so the message is redelivered.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import NamedTuple

from google.api_core import exceptions as gexc
from google.cloud import firestore

from aiprod.exceptions import StoreUnavailableError, TransientError
from aiprod.ports import EXPIRE_AT, Document, DocumentStore, QueryOp, T, Transaction

TRANSIENT: tuple[type[BaseException], ...] = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.Aborted,
    gexc.InternalServerError,
    gexc.ResourceExhausted,
    gexc.Cancelled,
    gexc.Unknown,
    gexc.GatewayTimeout,
    gexc.RetryError,
)
CONFLICT = (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Aborted, gexc.Conflict)
_ABSENT = object()


class _OptimisticTransaction(Transaction):
    """Plain reads, remembered; buffered writes, committed with preconditions."""

    def __init__(self, client: firestore.Client):
        self._client = client
        self._seen: dict[str, object] = {}  # document path -> _Read, or _ABSENT
        self._writes: dict[str, tuple[object, Document]] = {}

    def get(self, collection: str, doc_id: str) -> Document | None:
        ref = self._client.collection(collection).document(doc_id)
        if ref.path in self._writes:
            return dict(self._writes[ref.path][1])
        snapshot = ref.get()
        self._seen.setdefault(ref.path, _read(snapshot))
        return _decoded(snapshot)

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        ref = self._client.collection(collection).document(doc_id)
        self._writes[ref.path] = (ref, dict(data))

    def get_many(self, collection: str, doc_ids: list[str]) -> dict[str, Document]:
        refs = {d: self._client.collection(collection).document(d) for d in doc_ids}
        writes = self._writes
        found = {d: dict(writes[r.path][1]) for d, r in refs.items() if r.path in writes}
        unread = [r for d, r in refs.items() if d not in found]
        for snapshot in self._client.get_all(unread) if unread else ():
            self._seen.setdefault(snapshot.reference.path, _read(snapshot))
            if snapshot.exists:
                found[snapshot.reference.id] = _decoded(snapshot)
        return {d: found[d] for d in doc_ids if d in found}

    def view_moved(self) -> bool:
        """Did any document this body read change (or appear) since it was read?"""
        paths = list(self._seen)
        if not paths:
            return False
        refs = [self._client.document(path) for path in paths]
        now = {s.reference.path: s for s in self._client.get_all(refs)}
        for path, seen in self._seen.items():
            snapshot = now.get(path)
            current = snapshot.update_time if snapshot is not None and snapshot.exists else _ABSENT
            if current != getattr(seen, "update_time", _ABSENT):
                return True
        return False

    def commit(self) -> None:
        if not self._writes:
            return
        batch = self._client.batch()
        for path, (ref, data) in self._writes.items():
            seen, data = self._seen.get(path), _encoded(data)
            if seen is _ABSENT:
                batch.create(ref, data)
            elif seen is None:
                batch.set(ref, data)  # written without being read: nothing to guard
            else:
                unchanged = self._client.write_option(last_update_time=seen.update_time)
                batch.update(ref, replacing(seen.fields, data), option=unchanged)
        batch.commit()


class _Read(NamedTuple):
    """A document as a transaction read it: its version and its top-level field names."""

    update_time: object
    fields: frozenset[str]


def _read(snapshot) -> object:
    if not snapshot.exists:
        return _ABSENT
    return _Read(snapshot.update_time, frozenset(snapshot.to_dict() or ()))


def replacing(old_fields: frozenset[str], data: Document) -> dict:
    """``update`` field paths that turn a document with ``old_fields`` into exactly ``data``:
    each new field (its key quoted: one name, dots and all), a delete for each old one it
    lacks, and never none (``update`` refuses that: then a field never there is deleted)."""
    paths = {firestore.Client.field_path(key): value for key, value in data.items()}
    gone = old_fields - data.keys() or ({"aiprod_no_such_field"} if not data else set())
    paths.update((firestore.Client.field_path(key), firestore.DELETE_FIELD) for key in gone)
    return paths


def _encoded(data: Document) -> Document:
    """As stored: ``expire_at`` in epoch seconds becomes a Timestamp (TTL needs one)."""
    expire_at = data.get(EXPIRE_AT)
    if type(expire_at) not in (int, float):  # None (kept for good), or already a datetime
        return data
    return {**data, EXPIRE_AT: datetime.fromtimestamp(expire_at, UTC)}


def _decoded(snapshot) -> Document | None:
    """As the port promises: ``expire_at`` back in epoch seconds."""
    doc = snapshot.to_dict()
    if doc is not None and isinstance(doc.get(EXPIRE_AT), datetime):
        doc[EXPIRE_AT] = doc[EXPIRE_AT].timestamp()
    return doc


class FirestoreStore(DocumentStore):
    def __init__(
        self,
        project: str | None = None,
        client: firestore.Client | None = None,
        max_attempts: int = 40,
        retry_jitter_s: float = 0.02,
    ):
        self._project = project
        self._client = client
        self._max_attempts = max_attempts
        self._jitter_s = retry_jitter_s
        self._lock = threading.Lock()
        self.conflicts = 0  # commits refused by a precondition (for benchmarks)

    @property
    def client(self) -> firestore.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = firestore.Client(project=self._project)
        return self._client

    def run_transaction(self, body: Callable[[Transaction], T]) -> T:
        for attempt in range(1, self._max_attempts + 1):
            tx = _OptimisticTransaction(self.client)
            try:
                with _translated("transaction read"):
                    result = body(tx)
            except TransientError:
                raise
            except Exception:
                with _translated("transaction re-check"):
                    torn = tx.view_moved()
                if not torn:
                    raise
                self.conflicts += 1  # the body met a torn view: run it again
                time.sleep(random.uniform(0, self._jitter_s * min(attempt, 10)))
                continue
            try:
                with _translated("transaction commit", passthrough=CONFLICT):
                    tx.commit()
                return result
            except CONFLICT:
                self.conflicts += 1
                time.sleep(random.uniform(0, self._jitter_s * min(attempt, 10)))
        raise StoreUnavailableError(f"transaction conflicted {self._max_attempts} times")

    def get(self, collection: str, doc_id: str) -> Document | None:
        with _translated("get"):
            return _decoded(self.client.collection(collection).document(doc_id).get())

    def set(self, collection: str, doc_id: str, data: Document) -> None:
        with _translated("set"):
            self.client.collection(collection).document(doc_id).set(_encoded(data))

    def list(self, collection: str, limit: int = 1000) -> list[Document]:
        with _translated("list"):
            query = self.client.collection(collection).limit(limit)
            return [_decoded(snap) for snap in query.stream()]

    def get_many(self, collection: str, doc_ids: list[str]) -> dict[str, Document]:
        if not doc_ids:
            return {}
        refs = [self.client.collection(collection).document(i) for i in doc_ids]
        with _translated("get_many"):
            return {s.id: _decoded(s) for s in self.client.get_all(refs) if s.exists}

    def query(
        self, collection: str, field: str, op: QueryOp, value: object, limit: int = 500
    ) -> list[Document]:
        where = firestore.FieldFilter(field, op, value)
        with _translated("query"):
            found = self.client.collection(collection).where(filter=where).limit(limit)
            return [_decoded(snap) for snap in found.stream()]


@contextmanager
def _translated(operation: str, passthrough: tuple = ()) -> Iterator[None]:
    """Turn the SDK's transient faults into ``StoreUnavailableError``; leave the rest alone."""
    try:
        yield
    except passthrough:
        raise
    except TRANSIENT as exc:
        raise StoreUnavailableError(f"firestore {operation} failed: {exc}") from exc
