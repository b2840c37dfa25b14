"""``aiprod spend audit``: each provider's view of the day against the books, and what the
audit charged as unattributed."""

from __future__ import annotations

from aiprod.domain.money import money
from aiprod.services.spend_audit import SpendAuditReport
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
