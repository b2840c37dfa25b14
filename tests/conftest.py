"""Session-wide fixtures: one pair of emulators for the whole run, shared by every tier.

The rule for tests marked ``emulator``: when ``CI=true`` an emulator that cannot be found or
started FAILS the run with the reason; elsewhere those tests are skipped with it. Every user
of the emulators works under its own project id, so they never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from aiprod_tools.exceptions import EmulatorNotFoundError, EmulatorStartError

if TYPE_CHECKING:
    from aiprod_tools.stack.emulators import Emulators

# Fixtures every tier may take: the fakes of external systems (provider servers, the storage
# emulator) and the embedded-pipeline driver with its clock (tests/fakes, tests/support).
pytest_plugins = ["fakes.fixtures", "support.pipeline"]

_started: dict[str, float] = {}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def emulators_unavailable(reason: str) -> None:
    """Fail under CI (the emulator tier is required there), skip elsewhere."""
    message = f"emulators unavailable: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true requires the emulator tests)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def emulators() -> Iterator[Emulators]:
    """The Pub/Sub and Firestore emulators, started once, stopped at the end of the run."""
    running, reason = None, ""
    try:
        import aiprod_tools.stack.provision  # noqa: F401  (the Google Cloud SDKs the tier needs)
        from aiprod_tools.stack.emulators import start_emulators

        running = start_emulators()
    except ImportError as exc:
        reason = f"{exc} (make test installs requirements.lock)"
    except (EmulatorNotFoundError, EmulatorStartError) as exc:
        reason = str(exc)
    if running is None:
        emulators_unavailable(reason)
    _started.update(running.startup_s)
    yield running
    running.stop()


@pytest.fixture
def project_id() -> str:
    """A project id of its own, so emulator data never leaks between tests."""
    return f"test-{uuid.uuid4().hex[:10]}"


def pytest_terminal_summary(terminalreporter) -> None:
    if _started:
        times = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in _started.items())
        terminalreporter.write_line(f"emulator start-up: {times}")
