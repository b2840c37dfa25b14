"""What the spend audit charged with no attempt behind it, and when it last ran.

- ``unattributed_charges/{charge_id}`` (``replicate:<prediction id>``,
  ``runway:total@<day>``): an ``UnattributedCharge``, the amount charged so far, the shard it
  is on, the provider's ids;
- ``spend_audit_runs/{UTC hour}`` (``2027-01-15T08``): the reconciler's hourly audit, claimed
  by the first sweep of the hour.

One record per charge id, written in the same transaction as the ledger charge: a re-run
finds it and charges only what a grown total adds, never the same task twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from aiprod.ports import DocumentStore, Transaction

COLLECTION = "unattributed_charges"
RUNS = "spend_audit_runs"


@dataclass(frozen=True)
class UnattributedCharge:
    charge_id: str
    provider: str
    day: str
    scope: str
    amount_micros: int
    shard_key: str
    provider_ids: list[str]
    reason: str
    charged_at: float
    unattributed: bool = True


_FIELDS = tuple(f.name for f in fields(UnattributedCharge))


def decode(doc: dict) -> UnattributedCharge:
    return UnattributedCharge(**{name: doc[name] for name in _FIELDS if name in doc})


def load(tx: Transaction, charge_id: str) -> UnattributedCharge | None:
    doc = tx.get(COLLECTION, charge_id)
    return None if doc is None else decode(doc)


def save(tx: Transaction, charge: UnattributedCharge) -> None:
    tx.set(COLLECTION, charge.charge_id, asdict(charge))


def of_day(store: DocumentStore, day: str, limit: int = 100_000) -> list[UnattributedCharge]:
    return [decode(doc) for doc in store.query(COLLECTION, "day", "==", day, limit=limit)]


def claim_run(store: DocumentStore, hour: str, now: float) -> bool:
    """Claim the audit of ``hour`` (create-if-absent); True for the one sweep that did."""

    def body(tx: Transaction) -> bool:
        if tx.get(RUNS, hour) is not None:
            return False
        tx.set(RUNS, hour, {"hour": hour, "claimed_at": now})
        return True

    return store.run_transaction(body)
