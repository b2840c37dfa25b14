"""``aiprod dlq list|replay``: the dead-letter inbox pulled into the store, and replayed.

Exit status 1 on an argument the service refuses (an unknown id, a letter already replayed).
"""

from __future__ import annotations

import argparse
import json

from aiprod.exceptions import OperatorInputError
from aiprod_tools.cli import context


def add_list(sub, name: str) -> argparse.ArgumentParser:
    listing = sub.add_parser(name, help="pull the inbox into the store; list the unreplayed")
    listing.add_argument("--max", type=int, default=1000, help="pull at most N messages")
    listing.add_argument("--json", action="store_true")
    return listing


def list_pending(args: argparse.Namespace) -> int:
    from aiprod_tools.views.dead_letters import dead_letters_table

    if args.max < 1:
        raise OperatorInputError("--max must be at least 1")
    app = context.make_app()
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


def add_replay(sub, name: str) -> argparse.ArgumentParser:
    replay = sub.add_parser(name, help="republish stored dead letters to their topic")
    replay.add_argument("ids", nargs="*", help="dead-letter ids (from dlq list)")
    replay.add_argument("--all", action="store_true", help="every one not yet replayed")
    replay.add_argument("--source", help="with --all: only those from this topic")
    return replay


def replay(args: argparse.Namespace) -> int:
    from aiprod_tools.views.dead_letters import replayed_text

    if bool(args.ids) == args.all:
        raise OperatorInputError("name the dead letters to replay, or pass --all (not both)")
    if args.source and not args.all:
        raise OperatorInputError("--source selects among --all; named ids need no source")
    app = context.make_app()
    inbox = _dead_letters(app)
    source = args.source and args.source.removeprefix(app.settings.prefix)
    replayed = inbox.replay_pending(source) if args.all else inbox.replay(args.ids)
    print(replayed_text(replayed, app.settings.prefix))
    return 0


def _dead_letters(app):
    from aiprod.services.dead_letters import DeadLetters

    keep_s = app.settings.retention.job_s
    return DeadLetters(app.store, app.bus, app.settings.prefix, app.clock, keep_s)
