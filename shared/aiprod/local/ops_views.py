"""What ``aiprod budget`` and ``aiprod dlq`` print for people (``--json`` prints the data)."""

from __future__ import annotations

from aiprod.domain.dead_letters import DeadLetter
from aiprod.domain.messages import money
from aiprod.local.tables import render_table
from aiprod.services.budget_admin import LimitChange, ScopeView
from aiprod.services.budget_audit import AuditReport

BUDGET_HEADERS = ["scope", "limit", "held", "spent", "headroom", "used", "state", "overrun"]


def budget_table(day: str, views: list[ScopeView]) -> str:
    if not views:
        return f"budget day {day}: no scope has shards or a run-time limit"
    rows = [
        [
            v.entry.scope,
            money(v.entry.limit_micros),
            money(v.entry.held_micros),
            money(v.entry.spent_micros),
            money(v.entry.headroom),
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
    if report.ok:
        return "\n".join([seen, *warnings, "the books balance"])
    rows = [[d.key, d.check, money(d.found), money(d.expected)] for d in report.discrepancies]
    table = render_table(["where", "check", "found", "expected"], rows)
    count = len(report.discrepancies)
    return "\n".join([seen, *warnings, f"{count} discrepancies", "", table])


def dead_letters_table(letters: list[DeadLetter], now: float, collected: int) -> str:
    head = f"pulled {collected} new from the inbox; {len(letters)} stored, not yet replayed"
    if not letters:
        return head
    rows = [
        [
            x.id,
            x.source or "?",
            x.reason,
            x.delivery_count,
            age(now - x.first_seen_at),
            x.size,
            x.preview(),
        ]
        for x in letters
    ]
    headers = ["id", "source", "reason", "deliveries", "age", "bytes", "preview"]
    return "\n".join([head, "", render_table(headers, rows)])


def replayed_text(replayed: list[tuple[DeadLetter, str]], prefix: str) -> str:
    if not replayed:
        return "nothing to replay"
    lines = [
        f"replayed {x.id} to {prefix}{x.source} as message {message_id}"
        for x, message_id in replayed
    ]
    return "\n".join(lines)


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _over_note(view: ScopeView) -> str:
    entry = view.entry
    return (
        f"note: {entry.scope} has {money(entry.committed)} committed (held + spent), more "
        f"than its limit of {money(entry.limit_micros)}: no headroom is left (the pool is at "
        f"{money(view.unallotted_micros)}); new jobs on it are refused, holds already taken "
        "stand"
    )
