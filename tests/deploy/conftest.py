"""Deployment fixtures: the packages ``aiprod package`` writes, and a fresh venv for each.

Packages are written once per session for the runtime Python (3.12, as deployed) when this
machine has it, else for the interpreter running the tests, and installed into venvs of that
interpreter from a wheelhouse (``.aiprod/wheelhouse``, filled once from the index, offline
afterwards). When the venvs cannot be built (no index and an empty wheelhouse) the tests that
need them fail under CI=true and are skipped elsewhere, like the emulator tier.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from aiprod_tools import packaging, venvs
from aiprod_tools.exceptions import VenvBuildError


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


@pytest.fixture(scope="session")
def target_python() -> tuple[str, str]:
    """``(interpreter, "3.12")``: the deployed runtime's Python, or this one's."""
    found = venvs.find_python(packaging.RUNTIME_PYTHON)
    if found:
        return found, packaging.RUNTIME_PYTHON
    return sys.executable, f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="session")
def packages(tmp_path_factory, target_python) -> dict[str, packaging.Package]:
    out = tmp_path_factory.mktemp("functions")
    written = packaging.write_packages(out, python_version=target_python[1])
    return {package.function: package for package in written}


@pytest.fixture(scope="session")
def function_venvs(
    tmp_path_factory, packages: Mapping[str, packaging.Package], target_python
) -> dict[str, Path]:
    """function name → the interpreter of a fresh venv holding exactly its requirements."""
    python = target_python[0]
    root = tmp_path_factory.mktemp("venvs")
    requirements = {name: package.requirements for name, package in packages.items()}
    try:
        return venvs.build_venvs(requirements, python, venvs.Wheelhouse(python), root)
    except VenvBuildError as exc:
        message = f"packaged venvs could not be built: {exc}"
        if _in_ci():
            pytest.fail(f"{message} (CI=true requires the packaging test)", pytrace=False)
        pytest.skip(message)
