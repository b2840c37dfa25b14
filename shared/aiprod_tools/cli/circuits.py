"""``aiprod circuits [--open|--close NAME]``: every circuit breaker (one per backend, and the
output store's), each model's quality (catalog, measured, blended), and an operator's
override.

An override is made in one transaction with its record in ``operator_audit`` (who, when,
before, after) and logged as one JSON line on stderr. The operator is ``AIPROD_OPERATOR``,
else the gcloud account in ``CLOUDSDK_CORE_ACCOUNT``, else the login name. Exit status 1 for
a name that is no circuit.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from aiprod import logs
from aiprod_tools.cli import context

HOLD_S = 3600.0


def add_circuits(sub, name: str) -> argparse.ArgumentParser:
    show = sub.add_parser(name, help="circuit breakers per backend; --open/--close to override")
    change = show.add_mutually_exclusive_group()
    change.add_argument("--open", metavar="NAME", help="open it now (logged and audited)")
    change.add_argument("--close", metavar="NAME", help="close it now (logged and audited)")
    show.add_argument(
        "--for", dest="hold_s", type=float, default=HOLD_S, help="seconds --open holds it open"
    )
    show.add_argument("--json", action="store_true", help="for tools")
    return show


def circuits(args: argparse.Namespace) -> int:
    from aiprod.services import circuit_admin
    from aiprod_tools.views.circuits import (
        circuit_json,
        circuits_table,
        override_text,
        quality_rows,
        quality_table,
    )

    app = context.make_app()
    now = app.clock()
    name, action = (args.open, "open") if args.open else (args.close, "close")
    record = None
    if name:
        with _log_to_stderr():
            record = circuit_admin.override(
                app.store, app.catalog, name, action, operator(), now, args.hold_s
            )
    found = circuit_admin.show(app.store, app.catalog)
    quality = quality_rows(app.catalog, circuit_admin.observed(app.store, app.catalog), now)
    if args.json:
        circuits = [circuit_json(c, now) for c in found]
        print(json.dumps({"circuits": circuits, "override": record, "quality": quality}, indent=2))
        return 0
    if record:
        print(override_text(record) + "\n")
    print(circuits_table(found, now))
    print("\nmodel quality (selection uses the blend of the catalog and measured outputs)")
    print(quality_table(quality))
    return 0


def operator() -> dict[str, str]:
    who = os.environ.get("AIPROD_OPERATOR") or os.environ.get("CLOUDSDK_CORE_ACCOUNT")
    try:
        who = who or getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return {"operator": who, "host": socket.gethostname()}


@contextmanager
def _log_to_stderr() -> Iterator[None]:
    """The override's log line as JSON on stderr (stdout stays the command's output)."""
    logger = logging.getLogger("aiprod.services.circuit_admin")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logs.CloudLoggingFormatter())
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
