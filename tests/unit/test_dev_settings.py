"""``aiprod dev``'s settings and help, without emulators: every ``AIPROD_*`` of the shell is
passed to the functions, and the simulation keys are documented where a user looks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aiprod.exceptions import ConfigError
from aiprod_tools.cli import main
from aiprod_tools.exceptions import EmulatorStartError
from aiprod_tools.stack.dev import DEV_DEFAULTS, dev_env
from aiprod_tools.stack.processes import Child
from aiprod_tools.stack.supervisor import Supervisor

README = Path(__file__).resolve().parents[2] / "README.md"
SIMULATION_KEYS = (
    "latency_s",
    "failure_rate",
    "down",
    "outage_after",
    "outage_count",
    "cost_ratio",
    "error_class",
    "error_code",
)


def test_every_aiprod_setting_of_the_shell_reaches_the_functions():
    # GIVEN a shell with settings of its own, one of them overriding a dev default
    shell = {
        "AIPROD_DAILY_BUDGET_USD": "7",
        "AIPROD_TENANT_BUDGETS_USD": '{"a": 1}',
        "AIPROD_BUDGET_WARNING": "0.5",
        "AIPROD_LEASE_S": "42",
        "AIPROD_POLL_INTERVAL_S": "1",
        "HOME": "/somewhere",
    }

    # WHEN dev computes the functions' settings
    env = dev_env(shell, metrics=Path("m.jsonl"))

    # THEN every AIPROD_* is there as the shell has it, nothing else from the shell is
    assert {k: env[k] for k in shell if k.startswith("AIPROD_")} == {
        k: v for k, v in shell.items() if k.startswith("AIPROD_")
    }
    assert "HOME" not in env
    # AND dev's defaults fill only what the shell leaves out
    assert env["AIPROD_SIMULATION"] == DEV_DEFAULTS["AIPROD_SIMULATION"]
    assert env["AIPROD_METRICS"] == f"jsonl:{Path('m.jsonl').resolve()}"


def test_the_simulation_flag_wins_over_the_variable():
    shell = {"AIPROD_SIMULATION": json.dumps({"veo": {"down": True}})}
    assert dev_env(shell)["AIPROD_SIMULATION"] == shell["AIPROD_SIMULATION"]
    assert dev_env(shell, '{"runway": {}}')["AIPROD_SIMULATION"] == '{"runway": {}}'


@pytest.mark.parametrize(
    ("shell", "simulation"),
    [({"AIPROD_LEASE_S": "soon"}, None), ({}, "{not json"), ({"AIPROD_SIMULATION": "["}, None)],
)
def test_a_bad_setting_fails_before_anything_starts(shell, simulation):
    with pytest.raises((ConfigError, ValueError)):
        dev_env(shell, simulation)


def test_the_dev_command_reports_a_bad_setting_as_a_usage_error(monkeypatch, capsys):
    monkeypatch.setenv("AIPROD_LEASE_S", "soon")
    with pytest.raises(SystemExit) as exit_:
        main(["dev"])
    assert exit_.value.code == 2
    assert "AIPROD_LEASE_S" in capsys.readouterr().err


def test_dev_help_documents_every_simulation_key_with_an_example(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["dev", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for key in SIMULATION_KEYS:
        assert f"  {key} " in text, key
    assert "AIPROD_SIMULATION='{" in text and "aiprod dev" in text


def test_the_readme_documents_every_simulation_key_with_an_example():
    section = README.read_text().split("## Running it locally on the emulators")[1]
    section = section.split("\n## ")[0]
    for key in SIMULATION_KEYS:
        assert f"`{key}`" in section, key
    example = section.split("AIPROD_SIMULATION='")[1].split("'")[0]
    assert set(json.loads(example)) <= {"runway", "veo", "replicate"}


class FlakyStack:
    """A stack of one sleeping process whose first restart fails (ports, HTTP: none)."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.functions = {"f": self._child()}
        self.restart_calls = 0

    def _child(self) -> Child:
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        return Child("f", process, self.tmp_path / "f.log", 0)

    def restart(self, name: str) -> Child:
        self.restart_calls += 1
        if self.restart_calls == 1:
            raise EmulatorStartError("f did not answer")
        self.functions[name] = self._child()
        return self.functions[name]


def test_the_supervisor_reports_a_failed_restart_and_tries_again(tmp_path):
    # GIVEN a supervised stack whose first restart fails
    stack, lines = FlakyStack(tmp_path), []
    supervisor = Supervisor(stack, notify=lines.append, check_every_s=0.01).start()
    try:
        # WHEN its process dies
        stack.functions["f"].process.kill()
        deadline = time.monotonic() + 10
        while not supervisor.restarts and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        supervisor.stop()
        stack.functions["f"].process.kill()
        stack.functions["f"].process.wait()

    # THEN it said so, said the restart failed, and restarted it on the next look
    assert supervisor.restarts == {"f": 1}
    said = [line.removeprefix("aiprod dev: f ").split()[0] for line in lines]
    assert said == ["exited", "did", "exited", "restarted"], lines
