"""The ``aiprod`` command: one table of subcommands, each a ``(register, handler)`` pair.

``register(subparsers, name)`` adds the command's parser (its help and arguments) and returns
it; ``handler(args)`` runs it and returns the exit status. A name of two words is a verb of a
group (``budget show``); the group's own help is in ``GROUPS``, unless the group is a command
itself (``spend``, with its verb ``spend audit``): then its verbs are optional. Every
handler builds the app the same way, with ``context.make_app()``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from aiprod.exceptions import OperatorInputError
from aiprod_tools.cli import (
    budget,
    cancel,
    capacity,
    circuits,
    deploy,
    dlq,
    jobs,
    listing,
    local,
    report,
    spend,
    tenants,
)
from aiprod_tools.exceptions import UsageError

Register = Callable[[Any, str], argparse.ArgumentParser]  # (subparsers, name) → its parser
Handler = Callable[[argparse.Namespace], int]  # the parsed arguments → the exit status

DESCRIPTION = (
    "The ``aiprod`` command: demo, schema, submit, status, jobs, wait, cancel, circuits, spend,"
    " reconcile, dev. A table of subcommands."
)
GROUPS = {
    "budget": "today's budget per scope; set limits; audit",
    "capacity": "renders each backend runs at a time; set them without a deploy",
    "dlq": "the dead-letter inbox: list and replay",
    "jobs": "find jobs",
    "tenant": "configured tenants: their topics, publishers and daily budgets",
}
COMMANDS: dict[str, tuple[Register, Handler]] = {
    "budget show": (budget.add_show, budget.show),
    "budget set": (budget.add_set, budget.set_limit),
    "budget audit": (budget.add_audit, budget.audit),
    "spend": (spend.add_history, spend.history),
    "spend audit": (spend.add_audit, spend.audit),
    "tenant add": (tenants.add_add, tenants.add),
    "tenant list": (tenants.add_list, tenants.list_tenants),
    "tenant show": (tenants.add_show, tenants.show),
    "tenant set-budget": (tenants.add_set_budget, tenants.set_budget),
    "capacity show": (capacity.add_show, capacity.show),
    "capacity set": (capacity.add_set, capacity.set_capacity),
    "dlq list": (dlq.add_list, dlq.list_pending),
    "dlq replay": (dlq.add_replay, dlq.replay),
    "package": (deploy.add_package, deploy.package),
    "report": (report.add_report, report.report),
    "demo": (local.add_demo, local.demo),
    "schema": (jobs.add_schema, jobs.schema),
    "submit": (jobs.add_submit, jobs.submit),
    "status": (jobs.add_status, jobs.status),
    "jobs list": (listing.add_list, listing.list_jobs),
    "wait": (listing.add_wait, listing.wait),
    "cancel": (cancel.add_cancel, cancel.cancel),
    "circuits": (circuits.add_circuits, circuits.circuits),
    "reconcile": (local.add_reconcile, local.reconcile),
    "dev": (local.add_dev, local.dev),
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="aiprod", description=DESCRIPTION)
    sub = root.add_subparsers(dest="command", required=True)
    verbs: dict[str, Any] = {}
    commands: dict[str, argparse.ArgumentParser] = {}
    for name, (register, handler) in COMMANDS.items():
        *group, verb = name.split()
        where = _group(sub, verbs, group[0], commands) if group else sub
        commands[name] = register(where, verb)
        commands[name].set_defaults(run=handler)
    return root


def main(argv: list[str] | None = None) -> int:
    """Parse, run the command; exit 1 on an argument its service refuses, 2 on bad usage."""
    root = parser()
    args = root.parse_args(argv)
    try:
        return args.run(args)
    except UsageError as exc:
        root.error(str(exc))  # exits 2 with the usage, as argparse does
    except OperatorInputError as exc:
        print(f"aiprod: {exc}", file=sys.stderr)
        return 1


def _group(sub, verbs: dict[str, Any], group: str, commands: dict[str, Any]):
    """The subparsers of a group (``budget``), added the first time one of its verbs is; a
    group that is a command too (registered before its verbs) keeps its parser."""
    if group not in verbs:
        parent = commands.get(group) or sub.add_parser(group, help=GROUPS[group])
        required = group not in commands
        verbs[group] = parent.add_subparsers(dest=f"{group}_command", required=required)
    return verbs[group]
