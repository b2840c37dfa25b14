"""What every ``aiprod`` command runs against, built one way (tests replace ``make_app``).

The app comes from the environment: the real project, or the emulators when
``*_EMULATOR_HOST`` is set. Handlers call ``context.make_app()`` through the module, so a
test's ``monkeypatch.setattr(context, "make_app", ...)`` reaches every command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiprod.bootstrap import App


def make_app() -> App:
    from aiprod.bootstrap import App
    from aiprod.config import Settings

    return App(Settings.from_env())


def today(app: App) -> str:
    """The app's budget day now, in its budget time zone."""
    from aiprod.domain.budget import budget_day

    return budget_day(app.clock(), app.settings.timezone)
