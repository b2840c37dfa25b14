"""Errors only the tooling raises; each derives from ``aiprod.exceptions.AiprodError``.

Errors that services raise for operator commands (``OperatorInputError`` and its family) stay
in ``aiprod.exceptions``: the runtime raises them.
"""

from aiprod.exceptions import AiprodError


class UsageError(AiprodError):
    """A command line argparse accepted but the command cannot run (reported like argparse's)."""


# -- the local stack (aiprod dev, the e2e tests) ------------------------------------------------


class EmulatorNotFoundError(AiprodError):
    """A Cloud SDK emulator binary (or the java it needs) is not installed here."""


class EmulatorStartError(AiprodError):
    """An emulator or a local function process did not come up in time (see its log)."""


# -- deployment (aiprod package) ----------------------------------------------------------------


class PackagingError(AiprodError):
    """A function cannot be packaged: a group, a source file or a pinned distribution is missing."""


class VenvBuildError(AiprodError):
    """A packaged function's virtual environment could not be built (wheels, pip, python)."""
