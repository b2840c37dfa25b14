"""``aiprod spend``: spend over the last budget days by day, tenant or backend
(``services.spend_history``); ``aiprod spend audit``: the ledger against what each provider
says ran (the reconciler also runs it every hour). The audit's exit status is 1 when it
charged something or a provider could not be read."""

from __future__ import annotations

import argparse
import json

from aiprod_tools.cli import context
from aiprod_tools.cli.budget import _day


def add_history(sub, name: str) -> argparse.ArgumentParser:
    history = sub.add_parser(name, help="spend over the last days; 'spend audit' checks it")
    history.add_argument("--tenant", help="one tenant's scope (default: the global budget)")
    history.add_argument("--days", type=_count, default=7, help="budget days back (default 7)")
    history.add_argument("--by", choices=("day", "tenant", "backend"), default="day")
    history.add_argument("--json", action="store_true", help="integer micro-USD, for tools")
    return history


def history(args: argparse.Namespace) -> int:
    from aiprod.services.spend_history import last_days, spend
    from aiprod_tools.views.spend import spend_history_text

    app = context.make_app()
    days = last_days(context.today(app), args.days)
    found = spend(app.store, days, args.by, args.tenant, app.settings.timezone)
    print(json.dumps(found.to_json(), indent=2) if args.json else spend_history_text(found))
    return 0


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 366:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (1 to 366)")
    return int(text)


def add_audit(sub, name: str) -> argparse.ArgumentParser:
    check = sub.add_parser(name, help="compare the ledger with the providers; charge what it lacks")
    check.add_argument("--day", type=_day, help="budget day YYYY-MM-DD (default: today)")
    check.add_argument("--json", action="store_true", help="integer micro-USD, for tools")
    return check


def audit(args: argparse.Namespace) -> int:
    from aiprod_tools.views.spend import spend_audit_text

    app = context.make_app()
    report = app.spend_audit.run(args.day or context.today(app))
    print(json.dumps(report.to_json(), indent=2) if args.json else spend_audit_text(report))
    return 0 if report.ok else 1
