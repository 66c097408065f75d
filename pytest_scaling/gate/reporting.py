"""A check's typed report (:class:`~pytest_scaling.gate.records.GateReport`) from its comparison: the
candidate's own law and where it crosses the baseline's, the plot's band, the noise record, and the warnings
that may make a verdict misleading (learning rates tuned apart, a gain no architecture change gives)."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ScalingError
from ..fitting.noise import ASSUMED_NOISE
from ..runners.records import SweepResult
from ..training.spec import ModelSpec
from .baseline import Baseline, Curve, fit_curve
from .compare import Comparison, compare, inside
from .crossover import crossover
from .records import Crossover, GateReport, Noise, PlotData, SizeRow

LR_DISAGREEMENT = 4.0  # best learning-rate multipliers this far apart make a verdict depend on tuning
CANDIDATE_BOOTSTRAP = 200  # replicas of a candidate's own law (its crossover interval)
IMPLAUSIBLE_MULTIPLIER = 100.0  # a compute multiplier no architecture change plausibly gives
LEAK_CAUSES = ("usually the model sees the token it predicts (a causal mask off by one, attention without "
               "is_causal=True, a cache that reads ahead), the labels are not shifted by one, or validation "
               "data is in the training data")  # fmt: skip


def _candidate_curve(result: SweepResult) -> Curve | None:
    """The candidate's own L(C) law with bootstrap replicas, fitted like a baseline's (None when it cannot
    be: fewer than 3 sizes, or a size whose every run diverged)."""
    if len(result.points) < 3 or not all(math.isfinite(p.loss) for p in result.points):
        return None
    try:
        return fit_curve(result.compute, [p.losses for p in result.points], n_bootstrap=CANDIDATE_BOOTSTRAP)
    except ScalingError:
        return None


def _crossover(candidate: Curve, baseline: Curve, comparison: Comparison) -> Crossover:
    """The crossover record over the sizes with a finite loss (the candidate's curve needs every size finite)."""
    rows = comparison.rows
    return crossover(candidate, baseline, [r.flops for r in rows], [math.log(r.loss / r.predicted) for r in rows],
                     comparison.cov, min(r.noise_dof for r in rows))  # fmt: skip


def _plot_data(result: SweepResult, curve: Curve) -> PlotData:
    """The baseline curve and band on a compute grid over both sweeps' sizes, and the baseline's points."""
    cmin = min(curve.compute.min(), result.compute.min())
    cmax = max(curve.compute.max(), result.compute.max())
    grid = np.exp(np.linspace(np.log(cmin) - 0.3, np.log(cmax) + 0.3, 60))
    reps = curve.predict_samples(grid)
    return PlotData(
        compute=grid.tolist(), baseline=curve.predict(grid).tolist(),
        baseline_lo=np.percentile(reps, 2.5, axis=0).tolist(), baseline_hi=np.percentile(reps, 97.5, axis=0).tolist(),
        baseline_sizes_compute=curve.compute.tolist(), baseline_sizes_loss=curve.anchors[0].tolist(),
    )  # fmt: skip


def bound_text(bounds: np.ndarray) -> str:
    """'3.75', or '3.75 to 6.10' when the sizes' noise dof differ."""
    lo, hi = float(np.min(bounds)), float(np.max(bounds))
    return f"{lo:.2f}" if hi - lo < 0.005 else f"{lo:.2f} to {hi:.2f} (by each size's noise dof)"


def noise_record(comparison: Comparison) -> Noise:
    """The report's record of the comparison's seed-noise model."""
    model = comparison.noise
    if comparison.assumed_noise:
        return Noise(ASSUMED_NOISE, 0, True)
    return Noise(float(model.at(math.exp(model.log_c0))), model.dof, False, model.by_compute)


def _tuning_warnings(rows: list[SizeRow], base: Baseline) -> list[str]:
    """Set each row's ``baseline_lr_multiplier`` (the baseline's choice at the same shape, both searched with
    lr_grid); one warning when they differ by ``LR_DISAGREEMENT`` or more at some size."""
    chosen = {_shape_key(p.spec): p.lr_multiplier for p in base.points}
    apart = []
    for row in rows:
        row.baseline_lr_multiplier = chosen.get(_shape_key(row.spec))
        if row.lr_multiplier and row.baseline_lr_multiplier:
            ratio = row.lr_multiplier / row.baseline_lr_multiplier
            if max(ratio, 1 / ratio) >= LR_DISAGREEMENT * (1 - 1e-9):
                apart.append(f"{row.label} x{row.lr_multiplier:g} vs x{row.baseline_lr_multiplier:g}")
    if not apart:
        return []
    return [f"best learning rates differ from baseline {base.name!r} by {LR_DISAGREEMENT:g}x or more at "
            f"{', '.join(apart)}: the verdict depends on tuning"]  # fmt: skip


def _implausible_warnings(rows: list[SizeRow], base: Baseline) -> list[str]:
    """Warnings for a gain no architecture change plausibly gives, for data whose entropy floor is unknown: a
    compute multiplier above ``IMPLAUSIBLE_MULTIPLIER`` at a size inside the baseline's measured range, or a
    loss below the baseline's fitted irreducible loss E at every size."""
    out = []
    huge = [f"{r.label} ({'beyond the curve' if math.isinf(r.multiplier) else f'{r.multiplier:.3g}x'})"
            for r in rows if math.isfinite(r.loss) and inside(base.curve, r.flops)
            and r.multiplier > IMPLAUSIBLE_MULTIPLIER]  # fmt: skip
    if huge:
        out.append(f"implausible gain: compute multiplier above {IMPLAUSIBLE_MULTIPLIER:g}x vs baseline "
                   f"{base.name!r} at {', '.join(huge)}; {LEAK_CAUSES}")  # fmt: skip
    floor = base.curve.params.get("E")
    if floor is not None and rows and all(math.isfinite(r.loss) and r.loss < floor for r in rows):
        out.append(f"implausible gain: loss below baseline {base.name!r}'s fitted irreducible loss E = {floor:.4f} "
                   f"at every size; {LEAK_CAUSES}")  # fmt: skip
    return out


def _shape_key(spec: ModelSpec) -> tuple:
    """The shape without its vocabulary (a baseline on another tokenizer has the same shapes)."""
    return tuple(sorted((k, v) for k, v in spec.to_dict().items() if k != "vocab_size"))


def build_report(result: SweepResult, base: Baseline, nodeid: str, check: str, verdict: str, message: str,
                 comparison: Comparison | None = None, candidate: Curve | None = None,
                 **extra) -> GateReport:  # fmt: skip
    """The typed report of one check by the test ``nodeid``; ``candidate`` is the sweep's own fitted curve when
    already fitted. Its ``warnings`` say what may make the verdict misleading (the caller emits them)."""
    comparison = comparison or compare(result, base.curve)
    compared = verdict not in ("recorded", "updated")
    candidate = candidate if candidate is not None else _candidate_curve(result) if compared else None
    notes = ([*_tuning_warnings(comparison.rows, base), *_implausible_warnings(comparison.rows, base)]
             if compared else [])  # fmt: skip
    return GateReport(
        nodeid=nodeid, baseline=base.name, check=check, verdict=verdict, message=message,
        sizes=comparison.rows, combined_z=comparison.stouffer,
        noise=noise_record(comparison),
        baseline_law=base.curve.params, candidate_law=candidate.params if candidate is not None else None,
        trained=result.trained, runs=len(result.runs), skipped=result.skipped, plot=_plot_data(result, base.curve),
        crossover=_crossover(candidate, base.curve, comparison) if candidate is not None else None, warnings=notes,
        **extra,
    )  # fmt: skip


def size_table(rows: list[SizeRow]) -> str:
    """The per-size table of a failure message."""
    from tabulate import tabulate

    body = [[r.label, f"{r.params:,}", f"{r.flops:.3g}", f"{r.loss:.4f} ± {r.loss_std:.4f}", f"{r.predicted:.4f}",
             f"{100 * r.deviation:+.2f}%", f"{r.z:+.2f}", r.verdict or ""] for r in rows]  # fmt: skip
    return tabulate(body, headers=["size", "params", "FLOPs", "loss", "curve", "dev", "z", "verdict"])
