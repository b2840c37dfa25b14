"""``aiprod capacity show|set``: how many renders each backend runs at a time (and creates a
minute where that is the provider's limit), changed at run time without a deploy.

Exit status 1 on an argument the service refuses (an unknown backend, a value above what the
deployed render function is sized for)."""

from __future__ import annotations

import argparse
import json

from aiprod_tools.cli import context


def add_show(sub, name: str) -> argparse.ArgumentParser:
    show = sub.add_parser(name, help="capacity per backend: in effect, default, ceiling")
    show.add_argument("--json", action="store_true", help="for tools")
    return show


def show(args: argparse.Namespace) -> int:
    from aiprod.services.capacity_admin import show as rows
    from aiprod_tools.views.capacity import capacity_json, capacity_table

    app = context.make_app()
    found = rows(app.store, app.catalog)
    print(json.dumps(capacity_json(found), indent=2) if args.json else capacity_table(found))
    return 0


def add_set(sub, name: str) -> argparse.ArgumentParser:
    change = sub.add_parser(name, help="set a backend's capacity now (no deploy)")
    change.add_argument("backend", help="runway, veo or replicate")
    change.add_argument("concurrent", type=int, help="renders at a time")
    change.add_argument(
        "--creates-per-minute", type=int, help="the provider's create rate limit, if it has one"
    )
    return change


def set_capacity(args: argparse.Namespace) -> int:
    from aiprod.services.capacity_admin import set_capacity as change
    from aiprod_tools.views.capacity import capacity_table

    app = context.make_app()
    row = change(app.store, app.catalog, args.backend, args.concurrent, args.creates_per_minute)
    print(capacity_table([row]))
    return 0
