"""The DocumentStore contract: EmbeddedStore and FirestoreStore (on the emulator) alike."""

from __future__ import annotations

import threading

import pytest

from aiprod.ports import DocumentStore, Transaction

NESTED = {
    "status": "RUNNING",
    "count": 3,
    "micros": 12_345_678_901,
    "ratio": 0.25,
    "nothing": None,
    "flag": True,
    "tags": ["a", "b"],
    "attempts": [{"n": 1, "keys": ["global@2026-01-01"], "outcome": None}],
    "request": {"prompt": "a cat", "metadata": {"team": "x", "depth": {"deeper": 1.5}}},
    "empty": {},
}


def test_missing_document_is_none(store: DocumentStore):
    assert store.get("jobs", "nope") is None


def test_set_then_get_round_trips_nested_values(store: DocumentStore):
    # GIVEN a document with nested maps, lists, ints, floats, booleans and None
    store.set("jobs", "j1", NESTED)
    # THEN it reads back equal, with the same types
    got = store.get("jobs", "j1")
    assert got == NESTED
    assert isinstance(got["count"], int) and isinstance(got["ratio"], float)


def test_set_replaces_the_whole_document(store: DocumentStore):
    store.set("jobs", "j1", {"a": 1, "b": 2})
    store.set("jobs", "j1", {"a": 3})
    assert store.get("jobs", "j1") == {"a": 3}


def test_transaction_returns_the_body_result_and_commits(store: DocumentStore):
    def body(tx: Transaction) -> str:
        assert tx.get("ledger", "x") is None
        tx.set("ledger", "x", {"held": 5})
        return "done"

    assert store.run_transaction(body) == "done"
    assert store.get("ledger", "x") == {"held": 5}


def test_a_failing_body_writes_nothing(store: DocumentStore):
    store.set("ledger", "x", {"held": 1})

    def body(tx: Transaction) -> None:
        tx.get("ledger", "x")
        tx.set("ledger", "x", {"held": 99})
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        store.run_transaction(body)
    assert store.get("ledger", "x") == {"held": 1}


def test_a_transaction_reads_its_own_writes_and_others_see_them_only_after_commit(
    store: DocumentStore,
):
    seen_outside = []

    def body(tx: Transaction) -> dict | None:
        tx.set("ledger", "a", {"n": 1})
        seen_outside.append(store.get("ledger", "a"))
        return tx.get("ledger", "a")

    assert store.run_transaction(body) == {"n": 1}
    assert seen_outside == [None]
    assert store.get("ledger", "a") == {"n": 1}


def test_concurrent_creates_of_one_document_have_exactly_one_winner(store: DocumentStore):
    # GIVEN four writers that each create the document if it is absent
    winners: list[int] = []
    errors: list[BaseException] = []

    def create_as(me: int) -> None:
        def body(tx: Transaction) -> bool:
            if tx.get("jobs", "once") is not None:
                return False
            tx.set("jobs", "once", {"owner": me})
            return True

        try:
            if store.run_transaction(body):
                winners.append(me)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=create_as, args=(i,)) for i in range(4)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    # THEN exactly one created it, and the stored owner is that one
    assert errors == []
    assert len(winners) == 1
    assert store.get("jobs", "once") == {"owner": winners[0]}


def test_get_many_returns_the_existing_documents_by_id(store: DocumentStore):
    store.set("ledger", "a", {"n": 1})
    store.set("ledger", "b", {"n": 2})
    assert store.get_many("ledger", ["a", "b", "missing"]) == {"a": {"n": 1}, "b": {"n": 2}}
    assert store.get_many("ledger", []) == {}


def test_a_transactions_batched_read_sees_its_own_writes_and_guards_what_it_writes(
    store: DocumentStore,
):
    # GIVEN two shards, one of which the body writes before reading both in one batch
    store.set("ledger", "a", {"n": 1})
    store.set("ledger", "b", {"n": 2})

    def body(tx: Transaction) -> dict:
        tx.set("ledger", "a", {"n": 10})
        seen = tx.get_many("ledger", ["a", "b", "missing"])
        tx.set("ledger", "b", {"n": seen["b"]["n"] + 1})
        if calls.append(1) or len(calls) == 1:
            store.set("ledger", "b", {"n": 100})  # another writer, between read and commit
        return seen

    calls: list[int] = []
    seen = store.run_transaction(body)

    # THEN the batch saw the body's own write, skipped the missing id, and a write based on
    # a batched read that moved before the commit was not committed from a stale view
    assert seen["a"] == {"n": 10} and "missing" not in seen
    after = store.get("ledger", "b")["n"]
    assert after in (101, 3) and (after == 101) == (len(calls) == 2)


def test_query_compares_a_top_level_field_and_skips_missing_values(store: DocumentStore):
    for i, lease in enumerate([10.0, 20.0, None, 30.0]):
        store.set("jobs", f"j{i}", {"i": i, "lease": lease})
    store.set("jobs", "no-field", {"i": 99})
    assert sorted(d["i"] for d in store.query("jobs", "lease", "<", 25.0)) == [0, 1]
    assert [d["i"] for d in store.query("jobs", "lease", "==", 30.0)] == [3]
    assert len(store.query("jobs", "lease", ">=", 0.0, limit=2)) == 2


def test_query_array_contains_finds_a_value_in_a_list_field(store: DocumentStore):
    store.set("jobs", "a", {"ids": ["t1", "t2"]})
    store.set("jobs", "b", {"ids": ["t3"]})
    store.set("jobs", "c", {"ids": []})
    store.set("jobs", "d", {"other": 1})
    assert [d["ids"] for d in store.query("jobs", "ids", "array_contains", "t2")] == [["t1", "t2"]]
    assert store.query("jobs", "ids", "array_contains", "t9") == []


def test_concurrent_read_modify_write_is_exact(store: DocumentStore):
    # GIVEN a counter and 4 threads each adding 1 five times in transactions
    store.set("counters", "c", {"n": 0})
    threads, increments = 4, 5
    errors: list[BaseException] = []

    def increment(tx: Transaction) -> None:
        current = tx.get("counters", "c") or {"n": 0}
        tx.set("counters", "c", {"n": current["n"] + 1})

    def worker() -> None:
        try:
            for _ in range(increments):
                store.run_transaction(increment)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    # THEN no increment was lost and none failed
    assert errors == []
    assert store.get("counters", "c") == {"n": threads * increments}


def test_list_returns_the_collection_documents(store: DocumentStore):
    for i in range(3):
        store.set("things", f"t{i}", {"i": i})
    store.set("other", "o", {"i": 99})
    assert sorted(doc["i"] for doc in store.list("things")) == [0, 1, 2]
    assert len(store.list("things", limit=2)) == 2
    assert store.list("empty-collection") == []
