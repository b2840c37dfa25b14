"""Running the ``aiprod`` command against an emulator stack, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys


def aiprod(stack, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The ``aiprod`` command against the stack (its settings from the stack's environment:
    emulator hosts, project, prefix, budget), its output captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIPROD_")} | stack.env
    code = "import sys; from aiprod_tools.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
