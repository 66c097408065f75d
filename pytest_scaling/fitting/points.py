"""Reading (N, D, C, loss) points from CSV files, with errors that name the row and column."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..errors import ScalingDataError


def read_columns(path: str | Path, columns: list[str]) -> dict[str, np.ndarray]:
    """Read the named numeric columns of a CSV file (header row first) as float arrays.

    Every value must parse as a finite positive number; the error names the file, the column and
    the 1-based line number of the first offending value.
    """
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ScalingDataError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        try:
            header = reader.fieldnames
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ScalingDataError(f"{path}: not a readable CSV file ({exc})") from None
        if not header:
            raise ScalingDataError(f"{path}: empty file, expected a header row")
        missing = [c for c in columns if c not in header]
        if missing:
            raise ScalingDataError(
                f"{path}: no column {', '.join(map(repr, missing))}; the header has {', '.join(map(repr, header))}"
            )
        values: dict[str, list[float]] = {c: [] for c in columns}
        try:
            for row in reader:
                line = reader.line_num
                for c in columns:
                    raw = row.get(c)
                    if raw is None:
                        raise ScalingDataError(f"{path}, line {line}: row is too short, no value for column {c!r}")
                    try:
                        value = float(raw)
                    except ValueError:
                        raise ScalingDataError(
                            f"{path}, line {line}, column {c!r}: {raw!r} is not a number"
                        ) from None
                    if not math.isfinite(value) or value <= 0:
                        raise ScalingDataError(
                            f"{path}, line {line}, column {c!r}: {raw!r} must be a positive finite number"
                        )
                    values[c].append(value)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ScalingDataError(f"{path}, line {reader.line_num}: malformed CSV ({exc})") from None
    if not values[columns[0]]:
        raise ScalingDataError(f"{path}: no data rows")
    return {c: np.array(v) for c, v in values.items()}


def drop_highest(arrays: dict[str, np.ndarray], key: str, k: int) -> dict[str, np.ndarray]:
    """Drop the ``k`` rows with the highest ``key`` (Epoch's fit drops the 5 highest-loss points)."""
    if k < 0:
        raise ScalingDataError(f"--drop-highest must be >= 0, got {k}")
    if k == 0:
        return arrays
    n = len(arrays[key])
    if k >= n:
        raise ScalingDataError(f"cannot drop the {k} highest-{key} rows of {n}")
    keep = np.sort(np.argsort(arrays[key], kind="stable")[: n - k])
    return {name: a[keep] for name, a in arrays.items()}
