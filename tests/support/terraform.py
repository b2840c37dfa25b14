"""The Terraform under ``infra/`` as data, for tests that cannot run ``terraform validate``.

python-hcl2 parses every ``*.tf`` file; strings come back with their quotes, which
``unquote`` removes, so a literal is ``jobs`` and an expression is ``${local.topics}``.
``render`` evaluates the name templates the configuration uses (``${var.prefix}``,
``${local.x}``, ``${each.key}``, ``${each.value.x}``) and refuses anything else, so a
template this module cannot check fails the test instead of passing it unread.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parents[2] / "infra"
_EXPR = re.compile(r"\$\{([^{}]*)\}")


def unquote(value: Any) -> Any:
    """Strip hcl2's quotes (``'"jobs"'`` → ``jobs``) and block markers, recursively."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, list):
        return [unquote(item) for item in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if not k.startswith("__")}
    return value


@dataclass
class Config:
    """Blocks of every file merged: ``resources[("google_pubsub_topic", "topic")]`` etc."""

    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    resources: dict[tuple[str, str], dict] = field(default_factory=dict)
    data: dict[tuple[str, str], dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def resource(self, kind: str, name: str) -> dict:
        assert (kind, name) in self.resources, f"infra/ declares no {kind}.{name}"
        return self.resources[(kind, name)]

    def expressions(self) -> list[str]:
        """Every string anywhere in the configuration (to scan for references)."""
        found: list[str] = []

        def walk(value: Any) -> None:
            if isinstance(value, str):
                found.append(value)
            elif isinstance(value, list):
                for item in value:
                    walk(item)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)

        for part in (self.locals, self.variables, self.resources, self.data, self.outputs):
            walk(list(part.values()))
        return found


def load(infra: Path = INFRA) -> Config:
    import hcl2

    config = Config()
    for path in sorted(infra.glob("*.tf")):
        text = path.read_text()
        config.files[path.name] = text
        parsed = unquote(hcl2.loads(text))
        for block in parsed.get("locals", []):
            duplicate = set(block) & set(config.locals)
            assert not duplicate, f"locals declared twice: {duplicate}"
            config.locals.update(block)
        for block in parsed.get("variable", []):
            config.variables.update(block)
        for block in parsed.get("output", []):
            config.outputs.update(block)
        for kind, target in (("resource", config.resources), ("data", config.data)):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    for name, body in named.items():
                        assert (rtype, name) not in target, f"{rtype}.{name} declared twice"
                        target[(rtype, name)] = body
    return config


def render(
    template: str,
    variables: Mapping[str, str],
    each_key: str | None = None,
    each_value: Mapping[str, Any] | None = None,
    locals_: Mapping[str, Any] | None = None,
) -> str:
    """Evaluate a name template; any expression other than a plain reference is an error."""

    def value(match: re.Match) -> str:
        expr = match.group(1).strip()
        if expr.startswith("var.") and expr[4:] in variables:
            return str(variables[expr[4:]])
        if expr.startswith("local.") and locals_ and expr[6:] in locals_:
            return str(locals_[expr[6:]])
        if expr == "each.key" and each_key is not None:
            return each_key
        if expr.startswith("each.value.") and each_value is not None:
            return str(each_value[expr.removeprefix("each.value.")])
        raise AssertionError(f"cannot evaluate ${{{expr}}} in {template!r}")

    return _EXPR.sub(value, template)


def only_expression(value: str) -> str:
    """``${local.push_functions}`` → ``local.push_functions`` (the value must be exactly one)."""
    match = _EXPR.fullmatch(value)
    assert match, f"expected a single ${{...}} expression, got {value!r}"
    return match.group(1).strip()


_LOCALS_BLOCK = re.compile(r"^locals \{\n.*?^\}\n", re.MULTILINE | re.DOTALL)


def evaluate(
    expression: str,
    variables: Mapping[str, str],
    files: tuple[str, ...] = ("variables.tf", "topology.tf", "semantic_qa.tf"),
    locals_of: tuple[str, ...] = ("iam.tf",),
    infra: Path = INFRA,
) -> Any:
    """``expression`` as ``terraform console`` evaluates it (needs the terraform binary, no
    provider): over whole ``files`` that declare only variables and locals, and the top-level
    ``locals`` blocks of ``locals_of`` (which must reference nothing else)."""
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        for name in files:
            (Path(workdir) / name).write_text((infra / name).read_text())
        for name in locals_of:
            blocks = _LOCALS_BLOCK.findall((infra / name).read_text())
            assert blocks, f"{name} has no top-level locals block"
            (Path(workdir) / f"locals_of_{name}").write_text("\n".join(blocks))
        done = subprocess.run(
            ["terraform", "console", *(f"-var={k}={v}" for k, v in variables.items())],
            input=f"jsonencode({expression})\n",
            capture_output=True,
            text=True,
            cwd=workdir,
            env={**os.environ, "TF_INPUT": "0", "TF_IN_AUTOMATION": "1"},
            timeout=60,
        )
    # a refused -var (its validation) is reported on stderr, yet the console exits 0
    errors = re.sub(r"\x1b\[[0-9;]*m", "", done.stderr)
    assert done.returncode == 0 and "Error:" not in errors, done.stdout + errors
    return json.loads(json.loads(done.stdout))
