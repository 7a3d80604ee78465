"""User-facing errors and their documented exit codes.

Every error a user can cause is raised as a :class:`DcflowError` subclass; the CLI prints its
message as one line on stderr and exits with the subclass's code, never with a traceback.
"""

from __future__ import annotations


class DcflowError(Exception):
    """Base class: a problem the user can fix, reported in one line."""

    exit_code = 1


class ConfigError(DcflowError):
    """Unknown method, dataset or stage; bad config key, type or value."""

    exit_code = 2


class DataError(DcflowError):
    """Missing, corrupt or unusable dataset."""

    exit_code = 3


class WeightsError(DcflowError):
    """Missing weights, checksum mismatch, or a file that is not a state dict."""

    exit_code = 4


class ServiceError(DcflowError):
    """An external service (S3, MLflow, KFP) is unreachable or refuses."""

    exit_code = 5


class StageError(DcflowError):
    """A pipeline stage failed while running."""

    exit_code = 6


EXIT_CODES: dict[str, int] = {
    cls.__name__: cls.exit_code
    for cls in (DcflowError, ConfigError, DataError, WeightsError, ServiceError, StageError)
}
