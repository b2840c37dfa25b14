"""``aiprod budget show|set|audit``: a day's budget per scope, a limit changed now, the audit.

Exit status 1 on a discrepancy (audit) or an argument the service refuses.
"""

from __future__ import annotations

import argparse
import json
from datetime import date

from aiprod_tools.cli import context


def add_show(sub, name: str) -> argparse.ArgumentParser:
    show = sub.add_parser(name, help="limit, held, spent, headroom, state per scope")
    show.add_argument("--day", type=_day, help="budget day YYYY-MM-DD (default: today)")
    show.add_argument("--json", action="store_true", help="integer micro-USD, for tools")
    return show


def show(args: argparse.Namespace) -> int:
    from aiprod.services.budget_admin import day_view
    from aiprod_tools.views.budget import budget_day_table

    app = context.make_app()
    day = args.day or context.today(app)
    views = day_view(app.store, app.settings, day)
    if args.json:
        print(json.dumps({"day": day, "scopes": [v.to_json() for v in views]}, indent=2))
    else:
        print(budget_day_table(day, views))
    return 0


def add_set(sub, name: str) -> argparse.ArgumentParser:
    limit = sub.add_parser(name, help="set a scope's daily limit now (no deploy)")
    limit.add_argument("scope", help="global or tenant:<name>")
    limit.add_argument("usd", help="the new daily limit in USD, e.g. 250 or 12.50")
    return limit


def set_limit(args: argparse.Namespace) -> int:
    from aiprod.services.budget_admin import change_limit, parse_limit, parse_scope
    from aiprod_tools.views.budget import limit_change_text

    scope, limit = parse_scope(args.scope), parse_limit(args.usd)
    app = context.make_app()
    change = change_limit(app.store, app.settings, scope, context.today(app), limit)
    print(limit_change_text(change))
    return 0


def add_audit(sub, name: str) -> argparse.ArgumentParser:
    check = sub.add_parser(name, help="check the ledger against the jobs (exit 1 if off)")
    check.add_argument("--day", type=_day, help="budget day YYYY-MM-DD (default: today)")
    return check


def audit(args: argparse.Namespace) -> int:
    from aiprod.services import budget_audit
    from aiprod_tools.views.budget import audit_text

    app = context.make_app()
    report = budget_audit.audit(app.store, app.settings, args.day or context.today(app))
    print(audit_text(report))
    return 0 if report.ok else 1


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from exc
