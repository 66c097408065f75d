"""Exceptions and warnings shared by every layer."""


class ScalingError(Exception):
    """Base error: the CLI prints it as one line and exits 2; the plugin reports it as a usage error."""


class ScalingDataError(ScalingError):
    """Bad input: a malformed CSV, non-finite or non-positive values, too few points, bad arguments."""


class ScalingDesignWarning(UserWarning):
    """The experiment design cannot identify the law (too few levels, constant tokens-per-parameter)."""
