"""A transaction's write replaces the document it read, exactly, and only if it is unchanged;
``expire_at`` round-trips as epoch seconds, and Firestore holds it as a Timestamp (its TTL
policies ignore any other type). EmbeddedStore and FirestoreStore (on the emulator) alike.

The Firestore adapter writes a read document with the public ``update`` and a
``last_update_time`` precondition, naming every field (and deleting the ones that went):
these tests pin that this is a whole-document replace, whatever the keys and values.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from aiprod.ports import EXPIRE_AT, DocumentStore, Transaction

BEFORE = {
    "status": "RUNNING",
    "gone": 1,  # absent from the new version: must not survive
    "nested": {"keep": 1, "drop": 2},  # a map is replaced whole, never merged
    "a.b": "dotted",  # one field name with a dot, not a path
    "with space": 1,
    "tick`": 1,
    "list": [1, 2, 3],
}
AFTER = {
    "status": "SUCCEEDED",
    "nested": {"keep": 5, "user.key": {"x.y": 1}, "`q`": 2},  # user metadata keys, as given
    "a.b": "still one field",
    "with space": None,
    "tick`": {},
    "list": [],
    "new": {"deep": {"x": 1.5}},
}


def test_a_read_document_is_replaced_whole_by_a_transaction(store: DocumentStore):
    # GIVEN a document with odd keys, a map and a field the new version drops
    store.set("jobs", "j1", BEFORE)

    # WHEN a transaction reads it and writes the new version
    def body(tx: Transaction) -> None:
        assert tx.get("jobs", "j1") == BEFORE
        tx.set("jobs", "j1", AFTER)

    store.run_transaction(body)

    # THEN the stored document is exactly the new version
    assert store.get("jobs", "j1") == AFTER


def test_a_read_document_can_be_emptied_and_filled_again(store: DocumentStore):
    store.set("jobs", "j1", {"a": 1})
    store.run_transaction(lambda tx: tx.get("jobs", "j1") and tx.set("jobs", "j1", {}))
    assert store.get("jobs", "j1") == {}
    store.run_transaction(lambda tx: tx.get("jobs", "j1") == {} and tx.set("jobs", "j1", {}))
    assert store.get("jobs", "j1") == {}
    store.run_transaction(lambda tx: tx.get("jobs", "j1") == {} and tx.set("jobs", "j1", {"b": 2}))
    assert store.get("jobs", "j1") == {"b": 2}


def test_a_replace_of_a_document_changed_since_read_does_not_commit(store: DocumentStore):
    # GIVEN a document another writer changes between the body's read and its commit, once
    store.set("jobs", "j1", {"n": 1, "old": True})
    runs: list[dict] = []

    def body(tx: Transaction) -> None:
        seen = tx.get("jobs", "j1")
        runs.append(seen)
        if len(runs) == 1:
            store.set("jobs", "j1", {"n": 100, "other": "writer"})
        tx.set("jobs", "j1", {"n": seen["n"] + 1})

    store.run_transaction(body)

    # THEN Firestore ran the body again on the other writer's version; the embedded store
    # serializes bodies, so its in-body writer is simply ordered first (as in
    # test_document_store's batched-read test)
    after = store.get("jobs", "j1")
    assert (after, len(runs)) in (({"n": 101}, 2), ({"n": 2}, 1))
    assert (len(runs) == 2) == hasattr(store, "client")


def test_expire_at_round_trips_as_epoch_seconds(store: DocumentStore):
    # GIVEN documents with an expiry, written plainly, created and replaced in transactions
    when = 1_790_000_000.25
    store.set("dead_letters", "plain", {"id": "plain", EXPIRE_AT: when})
    store.run_transaction(lambda tx: tx.set("dead_letters", "made", {EXPIRE_AT: when}))
    store.set("dead_letters", "kept", {"id": "kept", EXPIRE_AT: None})

    def replace(tx: Transaction) -> None:
        tx.set("dead_letters", "kept", {**tx.get("dead_letters", "kept"), EXPIRE_AT: when + 1})

    store.run_transaction(replace)

    # THEN every read gives epoch seconds back (None stays None: kept for good)
    assert store.get("dead_letters", "plain")[EXPIRE_AT] == when
    assert store.get("dead_letters", "made")[EXPIRE_AT] == when
    assert store.get("dead_letters", "kept")[EXPIRE_AT] == when + 1
    many = store.get_many("dead_letters", ["plain", "kept"])
    assert [many["plain"][EXPIRE_AT], many["kept"][EXPIRE_AT]] == [when, when + 1]
    assert {d[EXPIRE_AT] for d in store.list("dead_letters")} == {when, when + 1}
    assert store.query("dead_letters", "id", "==", "plain")[0][EXPIRE_AT] == when
    assert store.run_transaction(lambda tx: tx.get("dead_letters", "plain"))[EXPIRE_AT] == when


@pytest.fixture
def firestore_store(project_id: str, emulators) -> DocumentStore:
    """The Firestore adapter alone (the embedded store keeps epoch seconds: no TTL there)."""
    from aiprod_tools.stack.provision import emulator_store

    return emulator_store(emulators.env(project_id))


@pytest.mark.emulator
def test_firestore_holds_expire_at_as_a_timestamp(firestore_store: DocumentStore):
    """What a TTL policy needs: the stored value is a Timestamp, not a number."""
    store, client = firestore_store, firestore_store.client
    when = 1_790_000_000.5
    store.set("jobs", "plain", {EXPIRE_AT: when})
    store.run_transaction(lambda tx: tx.set("jobs", "made", {EXPIRE_AT: when}))
    store.run_transaction(
        lambda tx: tx.get("jobs", "plain") and tx.set("jobs", "plain", {EXPIRE_AT: when})
    )
    for doc_id in ("plain", "made"):
        raw = client.collection("jobs").document(doc_id).get().to_dict()[EXPIRE_AT]
        assert isinstance(raw, datetime) and raw.tzinfo is not None
        assert raw.timestamp() == when
