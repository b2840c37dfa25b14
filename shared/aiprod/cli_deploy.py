"""Deployment subcommand of ``aiprod``: ``package --out DIR`` (see ``aiprod.packaging``).

``cli.py`` registers it with ``register(sub)``. Exit status 1 when a function cannot be
packaged (a group, a source file or an installed distribution is missing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiprod_tools.exceptions import PackagingError


def cmd_package(args: argparse.Namespace) -> int:
    from aiprod_tools import packaging

    try:
        written = packaging.write_packages(
            Path(args.out), args.function or None, python_version=args.python
        )
    except (PackagingError, KeyError) as exc:
        print(f"aiprod package: {exc}", file=sys.stderr)
        return 1
    for package in written:
        groups = ",".join(package.groups)
        print(f"{package.path}  [{groups}]  {len(package.pins)} pinned distributions")
    return 0


def register(sub) -> None:
    package = sub.add_parser(
        "package", help="write one deployable folder per function (main.py, aiprod, pins)"
    )
    package.add_argument("--out", required=True, help="where the folders go (one per function)")
    package.add_argument(
        "--function", action="append", help="only this function (repeatable; default: all)"
    )
    package.add_argument(
        "--python", default="3.12", help="runtime Python whose markers apply (default 3.12)"
    )
    package.set_defaults(run=cmd_package)
