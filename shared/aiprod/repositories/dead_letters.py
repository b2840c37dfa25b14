"""Dead letters: ``dead_letters/{message_id}``, each message the inbox pulled, kept until it is
replayed. The document form is ``DeadLetter.to_doc`` (also what ``aiprod dlq list --json``
prints), so stored letters and the operator's view never disagree. Each carries
``expire_at`` (first seen plus the retention), so the store's TTL policy deletes it, replayed
or not."""

from __future__ import annotations

from aiprod.domain.dead_letters import DeadLetter
from aiprod.domain.retention import letter_expiry
from aiprod.ports import EXPIRE_AT, DocumentStore, Transaction

COLLECTION = "dead_letters"


def create(store: DocumentStore, letter: DeadLetter, keep_s: float) -> bool:
    """Keep ``letter`` for ``keep_s`` unless one with its id is kept already (its first-seen
    time and replay flag win); True when it was new."""
    doc = {**letter.to_doc(), EXPIRE_AT: letter_expiry(letter.first_seen_at, keep_s)}

    def body(tx: Transaction) -> bool:
        if tx.get(COLLECTION, letter.id) is not None:
            return False
        tx.set(COLLECTION, letter.id, doc)
        return True

    return store.run_transaction(body)


def load_many(store: DocumentStore, ids: list[str]) -> dict[str, DeadLetter]:
    """The kept letters among ``ids``, by id."""
    found = store.get_many(COLLECTION, list(dict.fromkeys(ids)))
    return {letter_id: DeadLetter.from_doc(doc) for letter_id, doc in found.items()}


def not_replayed(store: DocumentStore, limit: int) -> list[DeadLetter]:
    """Letters not yet replayed, oldest first."""
    docs = store.query(COLLECTION, "replayed", "==", False, limit=limit)
    return sorted((DeadLetter.from_doc(d) for d in docs), key=lambda x: x.first_seen_at)


def mark_replayed(store: DocumentStore, letter: DeadLetter, message_id: str, now: float) -> None:
    def body(tx: Transaction) -> None:
        doc = tx.get(COLLECTION, letter.id) or letter.to_doc()
        update = {"replayed": True, "replayed_at": now, "replay_message_id": message_id}
        tx.set(COLLECTION, letter.id, {**doc, **update})

    store.run_transaction(body)
