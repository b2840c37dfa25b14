"""Operator actions: ``operator_audit/{audit_id}``, one record per change an operator made
by hand (who, when, what, the state before and after). Written in the transaction that
makes the change, so a record exists exactly when the change does."""

from __future__ import annotations

from aiprod.ports import DocumentStore, Transaction

COLLECTION = "operator_audit"


def save(tx: Transaction, audit_id: str, record: dict) -> None:
    tx.set(COLLECTION, audit_id, {**record, "audit_id": audit_id})


def since(store: DocumentStore, moment: float, limit: int = 500) -> list[dict]:
    """Records written at or after ``moment``, oldest first."""
    return store.query(COLLECTION, "at", ">=", moment, limit)
