"""Option values, one parser per kind, shared by the Python API, the pytest options and the CLI.

Each parser takes a string or a number and returns the value, or raises ``ValueError`` with the reason
("expected ..., got ..."); callers turn it into their own error (``argparse.ArgumentTypeError``,
``ScalingDataError``).
"""

from __future__ import annotations

import argparse
import math


def _number(value) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None


def finite_number(value) -> float:
    """A finite number."""
    number = _number(value)
    if not math.isfinite(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


def positive_number(value) -> float:
    """A finite number > 0."""
    number = _number(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"expected a finite number > 0, got {value!r}")
    return number


def whole_number(value, minimum: int = 0) -> int:
    """An integer >= ``minimum``, also written like ``2e6``."""
    number = _number(value)
    if not math.isfinite(number) or number != int(number) or number < minimum:
        raise ValueError(f"expected an integer >= {minimum}, got {value!r}")
    return int(number)


def multipliers(value) -> list[float]:
    """Distinct finite numbers > 0, sorted: ``"0.25,0.5,1,2"`` or a sequence of numbers."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        numbers = [positive_number(part) for part in parts]
    except (TypeError, ValueError):
        numbers = []
    if not numbers or len(set(numbers)) != len(numbers):
        raise ValueError(f"expected distinct finite numbers > 0, e.g. 0.25,0.5,1,2; got {value!r}")
    return sorted(numbers)


def argument(parse, message: str | None = None):
    """An argparse ``type=`` from one of these parsers (``message``: the error instead of the parser's own,
    formatted with ``text``)."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(message.format(text=text) if message else str(exc)) from None

    return convert
