"""The layering rules of docs/architecture.md, checked on the source (static, with ``ast``).

Each rule names the modules that break it, so a failure says where to look.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from aiprod.repositories import (
    circuits,
    dead_letters,
    jobs,
    ledger,
    operator_audit,
    unattributed,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
RUNTIME, TOOLING = SHARED / "aiprod", SHARED / "aiprod_tools"
MAX_LINES = 250
COLLECTIONS = {
    jobs.COLLECTION,
    circuits.COLLECTION,
    dead_letters.COLLECTION,
    ledger.SHARDS,
    ledger.POOLS,
    ledger.LIMITS,
    unattributed.COLLECTION,
    unattributed.RUNS,
    operator_audit.COLLECTION,
}
# The standard library and pydantic: all the pure domain may import besides itself.
DOMAIN_MAY_IMPORT = ("aiprod.domain", "pydantic", "__future__")


def modules(*roots: Path) -> dict[str, Path]:
    """Module name → file, for the runtime package (or the packages named)."""
    found = {}
    for path in sorted(p for root in roots or (RUNTIME,) for p in root.rglob("*.py")):
        parts = path.relative_to(SHARED).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(path: Path) -> set[str]:
    """Every module an ``import`` names, at any depth, except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(node)
        for guard in ast.walk(tree)
        if isinstance(guard, ast.If) and "TYPE_CHECKING" in ast.unparse(guard.test)
        for child in guard.body
        for node in ast.walk(child)
    }
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def depends_on(path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules ``path`` needs loaded. ``from pkg import mod`` needs ``pkg.mod``, not
    the package for its own sake (a package is always initialised before its submodules)."""
    named = imports_of(path)
    submodules = {n for n in named if n in known and n.rpartition(".")[0] in named}
    parents = {n.rpartition(".")[0] for n in submodules}
    return {n for n in named if n in known} - (parents - _imported_for_itself(path))


def _imported_for_itself(path: Path) -> set[str]:
    """Packages a module imports a name from that is not a submodule (``from pkg import f``)."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            package_dir = SHARED.joinpath(*node.module.split("."))
            if any(
                not (package_dir / a.name).exists() and not (package_dir / f"{a.name}.py").exists()
                for a in node.names
            ):
                found.add(node.module)
    return found


def internal_graph() -> dict[str, set[str]]:
    known = modules(RUNTIME, TOOLING)
    return {name: depends_on(path, known) - {name} for name, path in known.items()}


def test_no_module_is_longer_than_the_limit():
    long = {
        name: n
        for name, path in modules(RUNTIME, TOOLING).items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_no_import_cycle():
    graph = internal_graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == [], f"import cycles: {cycles}"


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("aiprod.domain", ("aiprod.",)),
        ("aiprod.repositories", ("aiprod.services", "aiprod.adapters", "aiprod.bootstrap")),
        ("aiprod.services", ("aiprod.adapters", "aiprod.bootstrap")),
        ("aiprod", ("aiprod_tools",)),
    ],
)
def test_inner_layers_do_not_import_outer_ones(layer, forbidden):
    offenders = {
        name: sorted(i for i in imports_of(path) if i.startswith(forbidden))
        for name, path in modules().items()
        if name.startswith(layer)
    }
    if layer == "aiprod.domain":  # the domain may import itself, nothing else of aiprod
        offenders = {
            n: [i for i in found if not i.startswith(DOMAIN_MAY_IMPORT)]
            for n, found in offenders.items()
        }
    assert {n: found for n, found in offenders.items() if found} == {}


def test_the_domain_imports_only_the_standard_library_and_pydantic():
    import sys

    third_party = {
        name: sorted(
            i
            for i in imports_of(path)
            if i.split(".")[0] not in sys.stdlib_module_names
            and not i.startswith(DOMAIN_MAY_IMPORT)
        )
        for name, path in modules().items()
        if name.startswith("aiprod.domain")
    }
    assert {n: found for n, found in third_party.items() if found} == {}


def test_only_repositories_spell_a_collection_name():
    spelled = {
        name: sorted(
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and node.value in COLLECTIONS
        )
        for name, path in modules().items()
        if not name.startswith(("aiprod.repositories", "aiprod.topology"))
    }
    assert {n: found for n, found in spelled.items() if found} == {}


def test_only_the_outbox_publishes_for_a_handler():
    """Post-commit publishing lives in the outbox; the dead-letter inbox (an operator tool
    that republishes what it pulled) is the one other service that calls the bus."""
    allowed = {"aiprod.services.outbox", "aiprod.services.dead_letters"}
    publishers = {
        name
        for name, path in modules().items()
        if name.startswith("aiprod.services")
        and any(
            isinstance(node, ast.Attribute) and node.attr == "publish"
            for node in ast.walk(ast.parse(path.read_text()))
        )
    }
    assert publishers <= allowed, publishers - allowed
