"""User-facing errors: each carries a one-line message and a distinct exit code."""

from __future__ import annotations

import signal


class UserError(Exception):
    """A problem the user can fix; the CLI prints its message on one line, no traceback."""

    exit_code = 1


class UsageError(UserError):
    """An invalid option value or combination."""

    exit_code = 2


class InputError(UserError):
    """The input is missing, empty, or matches no image."""

    exit_code = 3


class OutputExistsError(UserError):
    """The output exists and --overwrite was not given."""

    exit_code = 4


class OutputInUseError(OutputExistsError):
    """Another run is writing the same output right now."""


class ParameterError(UserError):
    """A parameter does not fit the data (k larger than the features or rows...)."""

    exit_code = 5


class WeightsError(UserError):
    """Model weights cannot be found, fetched or read."""

    exit_code = 6


class StorageError(UserError):
    """S3 or another store refused or failed a request (credentials, bucket, region...)."""

    exit_code = 7


class EnvironmentProblem(UserError):
    """The machine lacks something the run needs (Java, a package...)."""

    exit_code = 8


class EmrError(UserError):
    """An EMR cluster or step failed, or the account lacks a prerequisite."""

    exit_code = 9


class FittedModelError(UserError):
    """A saved model cannot be read, or does not fit the features this run makes."""

    exit_code = 10


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM asked the run to stop: raised in the main thread, so that
    every `finally` on the way out releases what the run holds (lease, staging, Spark)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + self.signum
