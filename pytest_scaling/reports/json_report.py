"""The JSON report: every check's record, with non-finite numbers as null."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..gate.records import GateReport
from .summary import (
    headline,
    row_verdict,
    verdict_of,
)


def _finite(value):
    """``value`` with every non-finite float replaced by None (strict JSON has no inf or nan)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_report(reports: list[GateReport], metadata: dict | None = None) -> dict:
    """``{"headline", "verdict", "tests": [one entry per report], "metadata"}``, strict-JSON-safe (inf -> None).

    An entry is the report less its plot data; every size has a ``verdict`` (None for a bare comparison)
    and ``extrapolated``; a comparison has ``crossover``.
    """
    tests = []
    for report in reports:
        entry = {k: v for k, v in report.to_dict().items() if k != "plot"}
        for size, row in zip(entry["sizes"], report.sizes, strict=True):
            size["verdict"] = row_verdict(report, row)
        tests.append(entry)
    return _finite({"headline": headline(reports), "verdict": verdict_of(reports), "tests": tests,
                    "metadata": dict(metadata or {})})  # fmt: skip


def write_json(reports: list[GateReport], path: str | Path, metadata: dict | None = None) -> Path:
    """Write :func:`json_report` to ``path`` (parents created) as strict JSON."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(json_report(reports, metadata), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return target
