"""``aiprod package --out DIR``: one deployable folder per function (``aiprod_tools.packaging``).

Exit status 1 when a function cannot be packaged (a group, a source file or an installed
distribution is missing, or the function is not in the topology).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiprod_tools.exceptions import PackagingError


def add_package(sub, name: str) -> argparse.ArgumentParser:
    package = sub.add_parser(
        name, help="write one deployable folder per function (main.py, aiprod, pins)"
    )
    package.add_argument("--out", required=True, help="where the folders go (one per function)")
    package.add_argument(
        "--function", action="append", help="only this function (repeatable; default: all)"
    )
    package.add_argument(
        "--python", default="3.12", help="runtime Python whose markers apply (default 3.12)"
    )
    return package


def package(args: argparse.Namespace) -> int:
    from aiprod_tools import packaging

    try:
        written = packaging.write_packages(
            Path(args.out), args.function or None, python_version=args.python
        )
    except (PackagingError, KeyError) as exc:
        print(f"aiprod package: {exc}", file=sys.stderr)
        return 1
    for folder in written:
        groups = ",".join(folder.groups)
        print(f"{folder.path}  [{groups}]  {len(folder.pins)} pinned distributions")
    return 0
