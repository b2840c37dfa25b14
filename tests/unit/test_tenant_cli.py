"""``aiprod tenant add|list|show|set-budget`` against an embedded app: the registry entry, the
daily budget as the ledger's run-time limit, and ``--json`` for tools."""

from __future__ import annotations

import json

import pytest

from aiprod.repositories import ledger as books
from aiprod.repositories import tenants
from aiprod_tools import cli
from aiprod_tools.cli import context


@pytest.fixture
def run_cli(monkeypatch, capsys, pipeline):
    """``run_cli(*argv)`` → (exit status, stdout, stderr) on one embedded app."""
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    app = pipeline().app
    monkeypatch.setattr(context, "make_app", lambda: app)

    def run(*argv: str) -> tuple[int, str, str]:
        status = cli.main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    run.app = app
    return run


def test_add_then_list_and_show_as_json(run_cli):
    status, out, _ = run_cli(
        "tenant", "add", "acme", "--budget", "25.50", "--publisher", "group:acme@example.com"
    )
    assert status == 0 and "aiprod-jobs--acme" in out and "var.tenants" in out

    status, out, _ = run_cli("tenant", "list", "--json")
    assert status == 0
    assert json.loads(out) == {
        "tenants": [
            {
                "name": "acme",
                "publishers": ["group:acme@example.com"],
                "daily_budget_micros": 25_500_000,
                "budget_source": "runtime",
                "topic": "aiprod-jobs--acme",
                "subscription": "aiprod-jobs--acme--route_job",
            }
        ]
    }
    status, out, _ = run_cli("tenant", "show", "acme", "--json")
    assert json.loads(out)["daily_budget_micros"] == 25_500_000
    assert books.runtime_limit(run_cli.app.store, "tenant:acme") == 25_500_000


def test_set_budget_changes_the_ledger_limit_now(run_cli):
    run_cli("tenant", "add", "acme", "--budget", "10")
    status, out, _ = run_cli("tenant", "set-budget", "acme", "12.5")
    assert status == 0
    assert books.runtime_limit(run_cli.app.store, "tenant:acme") == 12_500_000
    status, out, _ = run_cli("tenant", "show", "acme")
    assert "$12.50" in out and "operators only" in out


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("tenant", "add", "lane1", "--budget", "5"), "lane"),
        (("tenant", "add", "a--b", "--budget", "5"), "'--'"),
        (("tenant", "add", "acme", "--budget", "-1"), "limit"),
        (("tenant", "add", "acme", "--budget", "5", "--publisher", "bob"), "IAM member"),
        (("tenant", "set-budget", "nobody", "5"), "no tenant 'nobody'"),
        (("tenant", "show", "nobody"), "no tenant 'nobody'"),
    ],
)
def test_refused_arguments_exit_1_and_change_nothing(run_cli, argv, words):
    status, _, err = run_cli(*argv)
    assert status == 1 and words in err
    assert tenants.list_all(run_cli.app.store) == []


def test_a_tenant_is_added_once(run_cli):
    assert run_cli("tenant", "add", "acme", "--budget", "5")[0] == 0
    status, _, err = run_cli("tenant", "add", "acme", "--budget", "7")
    assert status == 1 and "configured already" in err
    assert books.runtime_limit(run_cli.app.store, "tenant:acme") == 5_000_000  # unchanged


def test_an_empty_registry_says_how_to_add(run_cli):
    status, out, _ = run_cli("tenant", "list")
    assert status == 0 and "aiprod tenant add" in out
