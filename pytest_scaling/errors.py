"""Exceptions and warnings shared by every layer, and the relay of warnings raised in another process."""

import warnings


class ScalingError(Exception):
    """Base error: the CLI prints it as one line and exits 2; the plugin reports it as a usage error."""


class ScalingDataError(ScalingError):
    """Bad input: a malformed CSV, non-finite or non-positive values, too few points, bad arguments."""


class ScalingDesignWarning(UserWarning):
    """The experiment design cannot identify the law (too few levels, constant tokens-per-parameter)."""


def run_catching_warnings(call, *args, **kwargs) -> tuple[object, list]:
    """In a worker process or a Ray task: ``call(*args, **kwargs)`` and the warnings it raised, as picklable
    (message, category, filename, lineno) tuples for :func:`raise_warnings` in the caller."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call(*args, **kwargs)
    return result, [(str(w.message), w.category, w.filename, w.lineno) for w in caught]


def raise_warnings(caught: list) -> None:
    """Raise again, here, the warnings :func:`run_catching_warnings` caught elsewhere, with their file and line."""
    for message, category, filename, lineno in caught:
        warnings.warn_explicit(message, category, filename, lineno)
