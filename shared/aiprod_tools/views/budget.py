"""Budget views for people (``aiprod budget``, the demo; ``--json`` prints the data instead).

Two tables, from two readings of the ledger:
- ``budget_day_table``: one day as ``aiprod budget show`` reads it (``budget_admin.day_view``:
  every shard found by query, the pool, run-time limits), with overrun, shards used and a note
  for each over-committed scope.
- ``ledger_days_table``: every scope and day that has shards, each summed as admission reads it
  (``Ledger.snapshot``): the demo's closing summary.
"""

from __future__ import annotations

from aiprod.config import Settings
from aiprod.domain.budget import BudgetTotals
from aiprod.domain.money import money
from aiprod.ports import DocumentStore
from aiprod.repositories import ledger as books
from aiprod.services.budget_admin import LimitChange, ScopeView
from aiprod.services.budget_audit import AuditReport
from aiprod.services.ledger import Ledger
from aiprod_tools.views.tables import render_table

BUDGET_HEADERS = ["scope", "limit", "held", "spent", "headroom", "used", "state", "overrun"]


def budget_day_table(day: str, views: list[ScopeView]) -> str:
    """One budget day: each scope's pool and shards, its overrun, a note when over-committed."""
    if not views:
        return f"budget day {day}: no scope has shards or a run-time limit"
    rows = [
        [
            v.entry.scope,
            *_amounts(v.entry),
            f"{100 * v.entry.utilization():.1f}%",
            v.state.value,
            money(v.entry.overrun_micros),
            v.shards_used,
        ]
        for v in views
    ]
    notes = [_over_note(v) for v in views if v.over_committed]
    table = render_table([*BUDGET_HEADERS, "shards"], rows)
    return "\n".join([f"budget day {day}", "", table, *(["", *notes] if notes else [])])


def ledger_days_table(store: DocumentStore, settings: Settings) -> str:
    """Every scope and day the ledger has shards for, summed, with its threshold state."""
    book = Ledger(settings)
    days = books.scope_days(store, limit=100_000)
    rows = []
    for day, scope in days:
        entry = book.snapshot(store, scope, day)
        rows.append(
            [
                entry.scope,
                entry.day,
                *_amounts(entry),
                f"{100 * entry.utilization():.0f}%",
                entry.state(settings.thresholds).value,
            ]
        )
    headers = ["scope", "day", "limit", "held", "spent", "headroom", "used", "state"]
    return render_table(headers, rows)


def limit_change_text(change: LimitChange) -> str:
    before, after = change.before, change.after
    rows = [
        ["limit", money(before.entry.limit_micros), money(after.entry.limit_micros)],
        ["held", money(before.entry.held_micros), money(after.entry.held_micros)],
        ["spent", money(before.entry.spent_micros), money(after.entry.spent_micros)],
        ["headroom", money(before.entry.headroom), money(after.entry.headroom)],
        ["unallotted", money(before.unallotted_micros), money(after.unallotted_micros)],
        ["state", before.state.value, after.state.value],
    ]
    head = (
        f"{after.entry.scope}: limit set to {money(after.entry.limit_micros)} for "
        f"{after.entry.day} (now) and later days"
    )
    text = "\n".join([head, "", render_table(["", "before", "after"], rows)])
    return text + ("\n\n" + _over_note(after) if after.over_committed else "")


def audit_text(report: AuditReport) -> str:
    seen = (
        f"budget day {report.day}: {report.shards} shards, {report.attempts} attempts "
        f"in {report.jobs_scanned} jobs"
    )
    warnings = []
    if not report.steady:
        warnings.append("warning: the ledger kept moving while it was read; differences may be")
        warnings.append("in-flight holds: run the audit again when traffic is quiet")
    if report.truncated:
        warnings.append("warning: the job scan hit its limit; some attempts were not counted")
    if report.unattributed:
        warnings.append(
            f"unattributed: {money(report.unattributed_micros)} in {report.unattributed} "
            "charges of the spend audit (provider spend no attempt recorded; aiprod spend audit)"
        )
    if report.ok:
        return "\n".join([seen, *warnings, "the books balance"])
    rows = [[d.key, d.check, money(d.found), money(d.expected)] for d in report.discrepancies]
    table = render_table(["where", "check", "found", "expected"], rows)
    count = len(report.discrepancies)
    return "\n".join([seen, *warnings, f"{count} discrepancies", "", table])


def _amounts(entry: BudgetTotals) -> list[str]:
    """Limit, held, spent and headroom: the columns both budget tables show."""
    return [
        money(entry.limit_micros),
        money(entry.held_micros),
        money(entry.spent_micros),
        money(entry.headroom),
    ]


def _over_note(view: ScopeView) -> str:
    entry = view.entry
    return (
        f"note: {entry.scope} has {money(entry.committed)} committed (held + spent), more "
        f"than its limit of {money(entry.limit_micros)}: no headroom is left (the pool is at "
        f"{money(view.unallotted_micros)}); new jobs on it are refused, holds already taken "
        "stand"
    )
