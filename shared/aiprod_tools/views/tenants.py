"""The tenant registry for people (``aiprod tenant list`` / ``show``)."""

from __future__ import annotations

from aiprod.domain.money import money
from aiprod.services.tenant_admin import TenantView
from aiprod_tools.views.tables import render_table


def tenants_table(views: list[TenantView]) -> str:
    if not views:
        return "no tenants configured (aiprod tenant add NAME --budget USD)"
    rows = [
        [
            v.tenant.name,
            money(v.budget_micros),
            v.budget_source,
            v.topic,
            ", ".join(v.tenant.publishers) or "-",
        ]
        for v in views
    ]
    return render_table(["tenant", "daily budget", "set by", "topic", "publishers"], rows)


def tenant_text(v: TenantView) -> str:
    return "\n".join(
        [
            f"tenant        {v.tenant.name}",
            f"daily budget  {money(v.budget_micros)} ({v.budget_source})",
            f"topic         {v.topic}",
            f"subscription  {v.subscription} (to route_job)",
            f"publishers    {', '.join(v.tenant.publishers) or '- (operators only)'}",
        ]
    )
