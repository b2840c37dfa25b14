"""``aiprod spend audit``: the ledger against what each provider says ran (the reconciler
also runs it every hour). Exit status 1 when it charged something or a provider could not
be read."""

from __future__ import annotations

import argparse
import json

from aiprod_tools.cli import context
from aiprod_tools.cli.budget import _day


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
