"""A transaction body never acts on a torn view: documents that another writer changed
together are seen both before or both after that change, or the body is run again.

Found by the e2e duplicates scenario (tests/e2e/test_duplicates.py): two deliveries of one
render outcome, handled at once, made handle_outcome read the job (attempt still open) before
the other delivery's commit and the ledger shard (hold already released) after it; the
settlement then raised ``ValueError: cannot settle hold ...`` out of ``run_transaction``, so
the function answered 500 to a duplicate it should have acknowledged.
"""

from __future__ import annotations

import threading

from aiprod.ports import DocumentStore, Transaction


def settle(tx: Transaction, between_reads=None) -> None:
    """handle_outcome in miniature: close the job's attempt and release its hold, once."""
    job = tx.get("jobs", "j1")
    if between_reads is not None:
        between_reads()
    shard = tx.get("ledger", "s1")
    if not job["open"]:
        return  # a duplicate: nothing to do
    if shard["held"] < 5:
        raise ValueError("cannot settle a hold that is not there")  # only a torn view gets here
    tx.set("ledger", "s1", {"held": shard["held"] - 5})
    tx.set("jobs", "j1", {"open": False})


def test_a_body_that_read_across_another_commit_is_run_again_not_failed(store: DocumentStore):
    # GIVEN a job whose attempt is open and the hold that goes with it
    store.set("jobs", "j1", {"open": True})
    store.set("ledger", "s1", {"held": 5})
    other = threading.Thread(target=store.run_transaction, args=(settle,))

    def another_delivery_commits() -> None:
        if not other.is_alive() and other.ident is None:
            other.start()
            other.join(timeout=1.0)  # a locking store makes it wait for this transaction

    # WHEN another delivery of the same outcome commits between this body's two reads
    store.run_transaction(lambda tx: settle(tx, between_reads=another_delivery_commits))
    other.join(timeout=10)

    # THEN the body ran again on a consistent view (or never saw the other commit), and the
    # hold was released exactly once
    assert not other.is_alive()
    assert store.get("jobs", "j1") == {"open": False}
    assert store.get("ledger", "s1") == {"held": 0}
