"""Every ``gcloud`` command the docs and the builds give exists in GA gcloud.

An operator pastes what the README says; a command that exists only under ``gcloud alpha``
(``gcloud monitoring policies create`` did) fails on a stock install half way through a
deploy. So each command is taken from the code of README.md, docs/*.md, infra/**/*.md (fenced
blocks and inline code) and from the Cloud Build files (gcloud steps and comments), and
``gcloud <words...> --help`` must succeed for it: gcloud refuses an unknown group or command
there ("Invalid choice") and accepts positional arguments after the command.

gcloud runs once per distinct word path, a few at a time. Without gcloud the test fails when
CI=true (the test build's image has it) and is skipped elsewhere, like the emulator tier.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "docs/*.md", "infra/**/*.md")
BUILDS = ("cloudbuild.yaml", "cloudbuild.test.yaml")
FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)
INLINE = re.compile(r"`([^`]+)`")  # may wrap onto the next line
WORD = r"[a-z][a-z0-9_-]*"
# gcloud, then the words that may name groups, a command and its positional arguments:
# stops at a flag, a quote, a variable, a pipe or the end of the line.
COMMAND = re.compile(rf"(?<![\w/.-])gcloud((?:[ \t]+{WORD}(?=[ \t]|$|`|\)))*)", re.M)
PRE_GA = {"alpha", "beta", "preview"}


def _words(text: str) -> set[tuple[str, ...]]:
    return {tuple(m.group(1).split()) for m in COMMAND.finditer(text) if m.group(1).split()}


def _doc_commands() -> dict[tuple[str, ...], str]:
    """word path → the first file that gives it."""
    found: dict[tuple[str, ...], str] = {}
    for pattern in DOCS:
        for path in sorted(ROOT.glob(pattern)):
            text = path.read_text()
            code = [m.group(1) for m in FENCE.finditer(text)]
            code += INLINE.findall(FENCE.sub("", text))
            for words in _words("\n".join(code)):
                found.setdefault(words, str(path.relative_to(ROOT)))
    for name in BUILDS:
        text = (ROOT / name).read_text()
        comments = "\n".join(line.split("#", 1)[1] for line in text.splitlines() if "#" in line)
        for words in _words(comments):
            found.setdefault(words, name)
        for step in yaml.safe_load(text)["steps"]:
            if step.get("entrypoint") == "gcloud":
                args = " ".join(step["args"])
                for words in _words(f"gcloud {args}"):
                    found.setdefault(words, f"{name} step {step['id']}")
    return found


@cache
def _gcloud() -> str:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        message = "the Google Cloud CLI (gcloud) is not installed"
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"{message} (CI=true requires the GA command check)", pytrace=False)
        pytest.skip(message)
    return gcloud


@cache
def _cli_tree() -> dict | None:
    """The command tree of the installed gcloud (what its shell completion reads), or None."""
    from aiprod_tools.stack.emulators import sdk_root

    _gcloud()
    path = sdk_root() / "data" / "cli" / "gcloud_completions.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("gcloud_completions", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.STATIC_COMPLETION_CLI_TREE


def _in_tree(tree: dict, words: tuple[str, ...]) -> str:
    """ "" when the words name a GA group or command (then its positional arguments), else why."""
    node, path = tree, ["gcloud"]
    for word in words:
        children = node.get("commands", {})
        if not children and path != ["gcloud"]:
            return ""  # a command: the rest are its arguments
        if word not in children:
            return f"{' '.join(path)} has no {word!r}"
        node, path = children[word], [*path, word]
    return ""


def _help(words: tuple[str, ...]) -> str:
    """The same question asked of gcloud itself: "" when ``--help`` succeeds, else its error."""
    done = subprocess.run(
        [_gcloud(), *words, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "PAGER": "cat"},
    )
    return "" if done.returncode == 0 else (done.stderr.strip() or "failed").splitlines()[0]


def test_the_docs_and_builds_name_gcloud_commands():
    # The extraction itself: if it found nothing, the check below would pass unread.
    commands = _doc_commands()
    assert ("builds", "submit") in commands
    assert ("functions", "deploy", "${_PREFIX}route-job") not in commands  # stops at a variable
    assert any(words[:2] == ("functions", "deploy") for words in commands)
    assert _words("x `gcloud auth print-access-token)` y") == {("auth", "print-access-token")}
    assert _words('gcloud config set project "$PROJECT"') == {("config", "set", "project")}


def test_no_doc_or_build_uses_a_pre_ga_track():
    for words, where in _doc_commands().items():
        assert words[0] not in PRE_GA, f"{where}: gcloud {' '.join(words)} is not GA"


def test_every_gcloud_command_exists_in_ga_gcloud():
    # GIVEN the installed gcloud's command tree (--help takes seconds per command here; the
    # tree answers all of them at once), or gcloud --help itself when the tree is missing
    tree = _cli_tree()
    check = (lambda words: _in_tree(tree, words)) if tree else _help
    commands = _doc_commands()

    # THEN every command path is a GA group or command
    missing = [
        f"{where}: gcloud {' '.join(words)}: {why}"
        for words, where in sorted(commands.items())
        if (why := check(words))
    ]
    assert not missing, "commands GA gcloud does not have:\n" + "\n".join(missing)


def test_the_tree_and_gcloud_help_agree():
    # The tree stands in for `gcloud ... --help`: both refuse an alpha-only command, both
    # accept a GA one with its arguments (one call each, to keep this fast).
    tree = _cli_tree()
    if tree is None:
        pytest.skip("this gcloud ships no command tree; the check above asked --help")
    alpha_only, ga = ("monitoring", "policies", "create"), ("storage", "ls", "gs://b")
    assert _in_tree(tree, alpha_only) and _help(alpha_only)
    assert not _in_tree(tree, ga) and not _help(ga)
