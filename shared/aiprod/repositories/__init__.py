"""Repositories: one module per aggregate, each the only code that knows its collection's
name and how its documents are encoded. Services load and save domain values through them,
on a ``Transaction`` (inside a transaction body) or a ``DocumentStore`` (a plain read), and
never spell a collection name.

- ``jobs``: a job and its attempts (``jobs``)
- ``circuits``: a backend's circuit breaker (``backends``)
- ``ledger``: a scope's budget day, and run-time limits (``budget_pools``, ``ledger``,
  ``budget_limits``)
- ``tenants``: a configured tenant (``tenants``)
- ``dead_letters``: a kept dead-lettered message (``dead_letters``)
- ``unattributed``: the spend audit's charges and hourly runs (``unattributed_charges``,
  ``spend_audit_runs``)
"""
