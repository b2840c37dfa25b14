"""Operator subcommands of ``aiprod``: ``budget show|set|audit`` and ``dlq list|replay``.

Thin: parse, build the app from the environment (the real project, or the emulators when
``*_EMULATOR_HOST`` is set), call a service, print. ``cli.py`` registers them with
``register(sub)``. Exit status 1 on a discrepancy (audit) or an argument the service refuses.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date

from aiprod.exceptions import OperatorInputError


def make_app():
    """The app the commands run against (tests replace this with an embedded one)."""
    from aiprod.bootstrap import App
    from aiprod.config import Settings

    return App(Settings.from_env())


def _today(app) -> str:
    from aiprod.domain.budget import budget_day

    return budget_day(app.clock(), app.settings.timezone)


def cmd_budget_show(args: argparse.Namespace) -> int:
    from aiprod.services.budget_admin import day_view
    from aiprod_tools.views.budget import budget_day_table as budget_table

    app = make_app()
    day = args.day or _today(app)
    views = day_view(app.store, app.settings, day)
    if args.json:
        print(json.dumps({"day": day, "scopes": [v.to_json() for v in views]}, indent=2))
    else:
        print(budget_table(day, views))
    return 0


def cmd_budget_set(args: argparse.Namespace) -> int:
    from aiprod.services.budget_admin import change_limit, parse_scope, parse_usd
    from aiprod_tools.views.budget import limit_change_text

    scope, limit = parse_scope(args.scope), parse_usd(args.usd)
    app = make_app()
    change = change_limit(app.store, app.settings, scope, _today(app), limit)
    print(limit_change_text(change))
    return 0


def cmd_budget_audit(args: argparse.Namespace) -> int:
    from aiprod.services.budget_audit import audit
    from aiprod_tools.views.budget import audit_text

    app = make_app()
    report = audit(app.store, app.settings, args.day or _today(app))
    print(audit_text(report))
    return 0 if report.ok else 1


def _dead_letters(app):
    from aiprod.services.dead_letters import DeadLetters

    return DeadLetters(app.store, app.bus, app.settings.prefix, app.clock)


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from aiprod_tools.views.dead_letters import dead_letters_table

    if args.max < 1:
        raise OperatorInputError("--max must be at least 1")
    app = make_app()
    inbox = _dead_letters(app)
    collected = inbox.collect(args.max)
    pending = inbox.pending()
    if args.json:
        now = app.clock()
        docs = [{**x.to_doc(), "age_s": round(now - x.first_seen_at, 3)} for x in pending]
        print(json.dumps({"collected": len(collected), "pending": docs}, indent=2))
    else:
        print(dead_letters_table(pending, app.clock(), len(collected)))
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    from aiprod_tools.views.dead_letters import replayed_text

    if bool(args.ids) == args.all:
        raise OperatorInputError("name the dead letters to replay, or pass --all (not both)")
    if args.source and not args.all:
        raise OperatorInputError("--source selects among --all; named ids need no source")
    app = make_app()
    inbox = _dead_letters(app)
    source = args.source and args.source.removeprefix(app.settings.prefix)
    replayed = inbox.replay_pending(source) if args.all else inbox.replay(args.ids)
    print(replayed_text(replayed, app.settings.prefix))
    return 0


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from exc


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except OperatorInputError as exc:
            print(f"aiprod: {exc}", file=sys.stderr)
            return 1

    return run


def register(sub) -> None:
    """Add ``budget`` and ``dlq`` to the ``aiprod`` subcommands."""
    budget = sub.add_parser("budget", help="today's budget per scope; set limits; audit")
    verbs = budget.add_subparsers(dest="budget_command", required=True)
    show = verbs.add_parser("show", help="limit, held, spent, headroom, state per scope")
    show.add_argument("--day", type=_day, help="budget day YYYY-MM-DD (default: today)")
    show.add_argument("--json", action="store_true", help="integer micro-USD, for tools")
    show.set_defaults(run=_guarded(cmd_budget_show))
    limit = verbs.add_parser("set", help="set a scope's daily limit now (no deploy)")
    limit.add_argument("scope", help="global or tenant:<name>")
    limit.add_argument("usd", help="the new daily limit in USD, e.g. 250 or 12.50")
    limit.set_defaults(run=_guarded(cmd_budget_set))
    check = verbs.add_parser("audit", help="check the ledger against the jobs (exit 1 if off)")
    check.add_argument("--day", type=_day, help="budget day YYYY-MM-DD (default: today)")
    check.set_defaults(run=_guarded(cmd_budget_audit))

    dlq = sub.add_parser("dlq", help="the dead-letter inbox: list and replay")
    verbs = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = verbs.add_parser("list", help="pull the inbox into the store; list the unreplayed")
    listing.add_argument("--max", type=int, default=1000, help="pull at most N messages")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_guarded(cmd_dlq_list))
    replay = verbs.add_parser("replay", help="republish stored dead letters to their topic")
    replay.add_argument("ids", nargs="*", help="dead-letter ids (from dlq list)")
    replay.add_argument("--all", action="store_true", help="every one not yet replayed")
    replay.add_argument("--source", help="with --all: only those from this topic")
    replay.set_defaults(run=_guarded(cmd_dlq_replay))
