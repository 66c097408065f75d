"""What every report format says alike: tests grouped and their verdicts ranked, the per-size table and its
cells, the caption, the fitted laws, the crossover sentence and the run's one-line headline.

A report is the :class:`~pytest_scaling.gate.records.GateReport` the gate builds per assertion-helper call;
several may share a test's nodeid. Tests keep the order of their first report. A multiplier read off outside
the baseline's measured sizes is marked "(extrap.)", and every comparison states where the two fitted laws
cross (:class:`~pytest_scaling.gate.records.Crossover`).
"""

from __future__ import annotations

import math

from tabulate import tabulate

from ..fitting.laws import CURVE_LAW
from ..gate.records import Crossover, GateReport, SizeRow, seed_noise_text

# most telling first; "caught": a check that failed inside a test that expected it to (pytest.raises)
VERDICT_ORDER = ("failed", "passed", "caught", "updated", "recorded", "info")


FAILING_ROWS = {"WORSE", "not better", "DIVERGED", "IMPOSSIBLE"}


MARKERS = {"failed": "❌", "passed": "✅", "caught": "🎯", "updated": "🔄", "recorded": "📌", "info": "ℹ️"}


def by_test(reports: list[GateReport]) -> dict[str, list[GateReport]]:
    """The reports grouped by nodeid, tests in order of their first report."""
    groups: dict[str, list[GateReport]] = {}
    for report in reports:
        groups.setdefault(report.nodeid, []).append(report)
    return groups


def rank(verdict: str) -> int:
    return VERDICT_ORDER.index(verdict) if verdict in VERDICT_ORDER else len(VERDICT_ORDER)


def verdict_of(reports: list[GateReport]) -> str:
    """One verdict for a test's (or a run's) reports: failed > passed > updated > recorded > info."""
    return min((r.verdict for r in reports), key=rank, default="info")


def primary(reports: list[GateReport]) -> GateReport:
    """The report whose per-size table tells the most: a gating verdict first, then per-size verdicts."""
    return min(reports, key=lambda r: (rank(r.verdict), not any(s.verdict for s in r.sizes)))


def primary_reports(reports: list[GateReport]) -> list[GateReport]:
    """One primary report per baseline of a test."""
    per_baseline: dict[str, list[GateReport]] = {}
    for report in reports:
        per_baseline.setdefault(report.baseline, []).append(report)
    return [primary(group) for group in per_baseline.values()]


def si(x: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= 0.9995 * scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:g}"


def _pct(x: float) -> str:
    return f"{100 * x:+.2f}%" if math.isfinite(x) else "diverged" if x > 0 else "n/a"


def _signed(x: float) -> str:
    return f"{x:+.2f}" if math.isfinite(x) else "inf"


def _loss(row: SizeRow) -> str:
    if not math.isfinite(row.loss):
        return "diverged"
    text = f"{row.loss:.4f}" + (f" ± {row.loss_std:.4f}" if row.n_seeds > 1 else "")
    return text + (f" ({row.diverged} diverged)" if row.diverged else "")


def row_verdict(report: GateReport, row: SizeRow) -> str | None:
    return row.verdict or (None if report.compared else report.verdict)


def _multiplier(row: SizeRow) -> str:
    if not row.multiplier > 0:
        return "n/a"
    if math.isinf(row.multiplier):
        return "beyond the curve"  # the curve never reaches this loss
    return f"{row.multiplier:.3g}x" + (" (extrap.)" if row.extrapolated else "")


def size_table(report: GateReport, tablefmt: str, mark: bool = False) -> str:
    """The per-size table; a recorded baseline shows its measurements only (nothing to compare with)."""
    compared = report.compared
    searched = any(row.lr_multiplier is not None for row in report.sizes)
    headers = ["size", "params", "tokens", "FLOPs", "loss", *(["LR"] if searched else [])]
    headers += ["curve", "dev", "z", "mult", "verdict"] if compared else ["verdict"]
    body = []
    for row in report.sizes:
        verdict = row_verdict(report, row) or ""
        if mark and verdict:
            verdict = f"{'❌' if verdict in FAILING_ROWS else MARKERS.get(verdict, '✅')} {verdict}"
        cells = [row.label, si(row.params), si(row.tokens), f"{row.flops:.3g}", _loss(row)]
        if searched:
            cells.append(_lr(row))
        if compared:
            cells += [f"{row.predicted:.4f}", _pct(row.deviation), _signed(row.z), _multiplier(row)]
        body.append([*cells, verdict])
    align = ["left"] + ["right"] * (len(headers) - 2) + ["left"]
    return tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True, colalign=align)


def _lr(row: SizeRow) -> str:
    """'0.0051 x0.5 (base x1)': the chosen peak learning rate and multiplier, and the baseline's choice."""
    if row.lr_multiplier is None:
        return ""
    lr = f"{row.lr:.3g} " if row.lr is not None else ""
    base = f" (base x{row.baseline_lr_multiplier:g})" if row.baseline_lr_multiplier is not None else ""
    return f"{lr}x{row.lr_multiplier:g}{base}"


def law_text(law: dict | None) -> str:
    if not law:
        return "not fitted (needs 3 sizes, none diverged)"
    return CURVE_LAW.text(law)


def caption(report: GateReport) -> str:
    """Where the table comes from: the baseline, the seed noise and the run counts."""
    noise = report.noise
    parts = [f"baseline '{report.baseline}' ({report.check})"]
    if report.compared:
        parts.append(seed_noise_text(noise, report.sizes))
        parts.append(f"combined z {_signed(report.combined_z)}")
    parts.append(f"{report.runs} runs, {report.trained} trained now")
    if report.skipped:
        parts.append(f"{len(report.skipped)} sizes skipped by --scaling-max-params")
    return "; ".join(parts)


def laws_text(report: GateReport) -> str:
    base = f"baseline '{report.baseline}' {law_text(report.baseline_law)}"
    return base if not report.compared else f"this run {law_text(report.candidate_law)}  |  {base}"


def crossover_text(crossover: Crossover | None) -> str:
    """How the gap between the candidate and the baseline moves with compute and, when it moves beyond seed
    noise, where the two fitted laws cross."""
    if crossover is None:
        return "not computed (this run's law needs 3 sizes, none diverged)"
    slope = (f"{100 * crossover.slope:+.2f}% per 10x compute, 95% CI {100 * crossover.slope_lo:+.2f}% to "
             f"{100 * crossover.slope_hi:+.2f}%")  # fmt: skip
    if crossover.trend == "none":
        return f"none claimed: the gap shows no trend with compute beyond seed noise ({slope})"
    gap = "advantage" if crossover.better_at_largest else "disadvantage"
    trend = f"this run's {gap} {crossover.trend} with compute ({slope})"
    if crossover.compute is None:
        return f"{trend}; the laws do not cross up to C = {crossover.searched_to:.3g} (1000x the largest size)"
    lo = f"{crossover.lo:.3g}" if crossover.lo is not None else "none"
    hi = f"{crossover.hi:.3g}" if crossover.hi is not None else f"beyond {crossover.searched_to:.3g}"
    return f"{trend}; the laws cross at C = {crossover.compute:.3g} (95% CI {lo} to {hi})"


def extrapolation_note(report: GateReport) -> str | None:
    marked = [r.label for r in report.sizes if r.extrapolated and r.multiplier > 0]
    if not report.compared or not marked:
        return None
    return f"(extrap.): read off the baseline's law beyond its sizes ({_baseline_range(report)}): {', '.join(marked)}"


def _baseline_range(report: GateReport) -> str:
    points = report.plot.baseline_sizes_compute if report.plot else []
    return f"{min(points):.3g} to {max(points):.3g} FLOPs" if points else "range unknown"


def _worst(reports: list[GateReport]) -> str:
    """'; worst deviation +4.65% (w32-d2 in node)' over the compared sizes of ``reports``, or ''."""
    rows = [(row, r.nodeid) for r in reports if r.compared for row in r.sizes]
    if not rows:
        return ""
    row, nodeid = max(rows, key=lambda item: -math.inf if math.isnan(item[0].deviation) else item[0].deviation)
    if math.isinf(row.deviation):
        return f"; {row.label} diverged (in {nodeid})"
    return f"; worst deviation {_pct(row.deviation)} ({row.label} in {nodeid})"


def _recorded(reports: list[GateReport]) -> str:
    parts = []
    for verdict in ("recorded", "updated"):
        names = list(dict.fromkeys(f"'{r.baseline}'" for r in reports if r.verdict == verdict))
        if names:
            parts.append(f"{len(names)} baseline{'s' * (len(names) > 1)} {verdict}: {', '.join(names)}")
    return "; ".join(parts)


def headline(reports: list[GateReport]) -> str:
    """One line for a bot: the run's verdict, how many checks failed, the worst deviation, recorded baselines."""
    checks = [r for r in reports if r.verdict in ("passed", "failed")]
    failed = [r for r in checks if r.verdict == "failed"]
    caught = [r for r in reports if r.verdict == "caught"]
    recorded = _recorded(reports)
    if caught:
        recorded = f"{len(caught)} expected regression{'s' * (len(caught) != 1)} caught" + (
            f"; {recorded}" if recorded else "")  # fmt: skip
    plural = "s" * (len(checks) != 1)
    if failed:
        text = f"FAILED — {len(failed)} of {len(checks)} scaling check{plural} failed{_worst(failed)}"
    elif checks:
        text = f"passed — {len(checks)} scaling check{plural} passed{_worst(checks)}"
    elif recorded:
        return f"pytest-scaling: {verdict_of(reports)} — no comparison; {recorded}"
    elif reports:
        text = f"info — no gating checks; {len(reports)} informational report{'s' * (len(reports) != 1)}"
    else:
        return "pytest-scaling: no scaling checks ran"
    return f"pytest-scaling: {text}" + (f"; {recorded}" if recorded else "")
