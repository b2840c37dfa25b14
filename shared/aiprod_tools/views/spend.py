"""``aiprod spend audit``: each provider's view of the day against the books, and what the
audit charged as unattributed."""

from __future__ import annotations

from aiprod.domain.money import money
from aiprod.services.spend_audit import SpendAuditReport
from aiprod.services.spend_history import SpendHistory
from aiprod_tools.views.tables import render_table


def spend_audit_text(report: SpendAuditReport) -> str:
    rows = []
    for p in report.providers:
        total = "-" if p.total_micros is None else money(p.total_micros)
        state = f"error: {p.error}" if p.error else f"charged {money(p.charged_micros)}"
        rows.append([p.provider, str(p.tasks), total, money(p.recorded_micros), state])
    table = render_table(["provider", "renders seen", "its total", "on our books", "now"], rows)
    lines = [f"spend audit of budget day {report.day}", "", table, ""]
    for p in report.providers:
        for charge, added in p.charged:
            ids = ", ".join(charge.provider_ids) or "(the day's total)"
            lines.append(f"charged {money(added)} unattributed: {charge.reason} {ids}")
    spent, count = sum(c.amount_micros for c in report.unattributed), len(report.unattributed)
    lines.append(f"unattributed on {report.day}: {money(spent)} in {count} charges")
    return "\n".join(lines)


def spend_history_text(history: SpendHistory) -> str:
    """``aiprod spend``: one row per day, tenant or backend, the total, and the ledger's
    total when it is another reading (by backend: the jobs' attempts)."""
    rows = [[key, money(spent)] for key, spent in history.rows.items()]
    rows.append(["total", money(sum(history.rows.values()))])
    span = f"{history.days[0]} to {history.days[-1]}"
    lines = [
        f"spend of {history.scope} by {history.by}, {span}",
        "",
        render_table([history.by, "spent"], rows),
    ]
    if history.by == "tenant" and "-" in history.rows:
        lines.append("- : jobs with no tenant, and the spend audit's unattributed charges")
    if history.by == "backend":
        lines.append(f"the ledger's total for {history.scope}: {money(history.ledger_micros)}")
    if history.truncated:
        lines.append("the job scan hit its limit: some attempts were not counted")
    return "\n".join(lines)
