"""nerstream's one error taxonomy: the bottom of the import graph (it imports nothing of ours).

Every exception nerstream raises on purpose derives from :class:`NerstreamError`, and from one of
two kinds, because the kind decides what happens next:

- :class:`PermanentError`: retrying cannot help; the input, the configuration or the environment
  must change first. In the worker, a permanently bad record becomes a dead letter.
- :class:`TemporaryError`: it may go away by itself (a broker away, a timeout); back off and
  retry, or stop without committing so that the work is redone after a restart.

:class:`UsageError` is the permanent error of bad usage or settings. Each error carries the exit
code the CLI returns for it (``exit_code``); ``streams.cli.main`` is the one place that turns an
error into an exit code. Library errors are wrapped with ``raise ... from exc``.

Belongs here: the root classes and the exit codes. Does not belong here: the concrete errors of
an area (``schemas.errors.DecodeError``, ``models.manifest.ModelError``,
``streams.settings.SettingsError`` ...); they live next to the code that raises them and derive
from the classes below.
"""

from __future__ import annotations

#: The CLI's exit codes.
EXIT_OK = 0
#: The work failed.
EXIT_FAILED = 1
#: Bad usage or settings.
EXIT_USAGE = 2
#: The worker stopped because an output could not be delivered (nothing was acked).
EXIT_CRASH_STOP = 3

__all__ = [
    "EXIT_CRASH_STOP",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "NerstreamError",
    "PermanentError",
    "TemporaryError",
    "UsageError",
]


class NerstreamError(Exception):
    """The root of every error nerstream raises on purpose; its message is fit for a user.

    ``exit_code`` is the class's exit code unless one is given for this instance.
    """

    exit_code: int = EXIT_FAILED

    def __init__(self, *args: object, exit_code: int | None = None) -> None:
        super().__init__(*args)
        if exit_code is not None:
            self.exit_code = exit_code


class PermanentError(NerstreamError):
    """Retrying cannot help: the input, the configuration or the environment must change."""


class TemporaryError(NerstreamError):
    """It may go away by itself: back off and retry, or stop and redo the work later."""


class UsageError(PermanentError):
    """Bad usage: a command line, a setting or an input file that the user must fix (exit 2)."""

    exit_code = EXIT_USAGE
