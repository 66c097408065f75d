"""The gate: compare a sweep with a named baseline curve, and the ``assert_*`` helpers built on it.

Statistics (per size i of the candidate, K sizes):

* ``predicted`` p_i: the baseline's anchored curve at the candidate's compute C_i;
* noise: sigma_i^2 = s(C_i)^2 / n_i + max(var(log p_i), s(C_i)^2 / n_b), with s(C) the relative seed
  standard deviation as a function of compute, fitted to the baseline's and the candidate's seeds together
  (:func:`pytest_scaling.fitting.noise.fit_seed_noise`; ``ASSUMED_NOISE`` when neither has two seeds) and
  var(log p_i) from the baseline's bootstrap, scaled by n_b / (n_b - 1) (a bootstrap of n_b seeds
  underestimates the variance of their mean by that factor: half of it with two seeds), never below the
  modelled noise of the baseline's n_b seeds;
* ``z_i = log(m_i / p_i) / sigma_i`` (m_i the candidate's mean loss): the deviation in noise units.

``assert_on_curve`` fails when some z_i exceeds the Bonferroni bound ``Q_i(1 - ALPHA / K)`` or the
combined (Stouffer) ``sum u_i / sqrt(K)`` exceeds the normal's ``1 - ALPHA`` quantile, Q_i the quantile of
Student's t with the degrees of freedom of the noise at size i (``SeedNoise.dof_at``; the normal's when the
noise is assumed) and u_i the normal score of z_i under it; with ``rtol`` a size fails when its relative
deviation exceeds ``rtol`` instead. Being better than the curve always passes.

A size with a diverged run (see :mod:`pytest_scaling.training.train`) is ``DIVERGED`` and fails ``assert_on_curve``
and ``assert_beats_curve``; ``compute_multiplier`` fails when every run of a size diverged. A size with a
run whose loss lies below the data's floor (``SizePoint.floor``) by more than the run's standard error is
``IMPOSSIBLE``: every helper fails and nothing is recorded. A gain no architecture change plausibly gives
(``IMPLAUSIBLE_MULTIPLIER``, or below the baseline's E at every size) is a warning in the report.

Baselines: a helper that names a baseline file that does not exist fails with the command that records it
(and the closest existing names); under ``--scaling-update`` it records it. The test that recorded a
baseline re-records it under ``--scaling-update``; every other test that names it (a variant gated
against the reference) is compared with it as usual, never writes it. A sweep with diverged runs is not
recorded unless ``--scaling-allow-diverged`` is given.
"""

from __future__ import annotations

import math
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import norm, t

from ..errors import ScalingError
from ..fitting.laws import CURVE_LAW
from ..fitting.noise import ASSUMED_NOISE, SeedNoise, fit_seed_noise
from ..runners.records import SweepResult
from ..training.spec import ModelSpec
from .baseline import Baseline, BaselineError, Curve, fit_curve, names_hint
from .crossover import crossover
from .records import Crossover, GateReport, Noise, PlotData, SizeRow, seed_noise_text

ALPHA = 0.01  # one-sided false-alarm level of each gate decision
LR_DISAGREEMENT = 4.0  # best learning-rate multipliers this far apart make a verdict depend on tuning
DEFAULT_BASELINES = "scaling_baselines"
CANDIDATE_BOOTSTRAP = 200  # replicas of a candidate's own law (its crossover interval)
IMPLAUSIBLE_MULTIPLIER = 100.0  # a compute multiplier no architecture change plausibly gives
LEAK_CAUSES = ("usually the model sees the token it predicts (a causal mask off by one, attention without "
               "is_causal=True, a cache that reads ahead), the labels are not shifted by one, or validation "
               "data is in the training data")  # fmt: skip


class ScalingGateError(AssertionError):
    """A scaling assertion failed (the test fails with this message)."""


@dataclass
class GateContext:
    """Where a test's baselines live and where its reports go (set by the pytest plugin)."""

    baselines_dir: Path = field(default_factory=lambda: Path(DEFAULT_BASELINES))
    update: bool = False
    writer: bool = True  # False on torchrun ranks other than 0
    nodeid: str = ""
    reports: list = field(default_factory=list)
    allow_diverged: bool = False  # record a baseline although some of its runs diverged


def _context(result: SweepResult) -> GateContext:
    if not isinstance(result, SweepResult):
        raise TypeError(f"expected the SweepResult of scaling_sweep(...), got {type(result).__name__}")
    return result.context if isinstance(result.context, GateContext) else GateContext()


def _fail(message: str):
    __tracebackhide__ = True
    raise ScalingGateError(message) from None  # the reason, not the chain of errors that led to it


def _load_or_record(result: SweepResult, baseline: str | Baseline, check: str) -> Baseline | None:
    """The baseline to compare with, or None when this call recorded it (reported as such)."""
    __tracebackhide__ = True
    breaches = _floor_breaches(result)
    if isinstance(baseline, Baseline):
        if breaches:
            _fail_impossible(result, baseline, check, breaches)
        return baseline
    ctx = _context(result)
    path = Path(baseline) if str(baseline).endswith(".json") else ctx.baselines_dir / f"{baseline}.json"
    name = path.stem
    recording = not path.exists() or (ctx.update and _owns(ctx.nodeid, path))
    if breaches:
        if not recording:
            _fail_impossible(result, _load(path, result), check, breaches)
        why = _impossible(breaches)
        _fail(f"cannot record baseline {name!r}: {why}" if ctx.update else why)
    if not path.exists() and not ctx.update:
        _fail(_missing(name, path, ctx.nodeid))
    if recording:
        verdict = "updated" if path.exists() else "recorded"
        diverged = [f"{p.label} ({p.diverged} of {len(p.losses)} runs)" for p in result.points if p.diverged]
        if diverged and not ctx.allow_diverged:
            _fail(f"cannot record baseline {name!r}: runs diverged at {', '.join(diverged)}; fix the run (a lower "
                  "learning rate?) or record it anyway with --scaling-allow-diverged")  # fmt: skip
        try:
            recorded = Baseline.from_sweep(name, result, recorded_by=ctx.nodeid)
        except ScalingError as exc:
            _fail(f"cannot record baseline {name!r}: {exc}")
        if ctx.writer:
            try:
                recorded.save(path)
            except OSError as exc:
                _fail(f"cannot write baseline {name!r} to {path}: {exc.strerror or exc}")
        ctx.reports.append(_report(result, recorded, check, verdict, f"baseline {name!r} {verdict} at {path}"))
        return None
    return _load(path, result)


def _load(path: Path, result: SweepResult) -> Baseline:
    """The baseline stored at ``path``, if it was recorded with the settings of ``result``."""
    __tracebackhide__ = True
    try:
        loaded = Baseline.load(path)
    except BaselineError as exc:
        _fail(str(exc))
    diffs = loaded.differences(result)
    if diffs:
        _fail(f"baseline {path.stem!r} ({path}) was recorded with other settings than this run: " + "; ".join(diffs)
              + ". Re-record it with `pytest --scaling --scaling-update` if the change is intended.")  # fmt: skip
    return loaded


def _floor_breaches(result: SweepResult) -> dict[int, str]:
    """Per size (its index) whose data knows its loss floor, its worst run whose validation loss lies below
    the floor by more than the run's standard error, as ``"label (loss ± se < floor)"``."""
    breaches = {}
    for i, point in enumerate(result.points):
        if point.floor is None:
            continue
        errors = [se or 0.0 for se in point.loss_se or [None] * len(point.losses)]  # unknown: 0
        below = [(loss, se) for loss, se in zip(point.losses, errors, strict=True)
                 if math.isfinite(loss) and loss + se < point.floor]  # fmt: skip
        if below:
            loss, se = min(below)
            breaches[i] = f"{point.label} ({loss:.4f} ± {se:.4f} < {point.floor:.4f})"
    return breaches


def _impossible(breaches: dict[int, str]) -> str:
    """Why the sweep's losses are impossible, from its :func:`_floor_breaches`."""
    return (f"IMPOSSIBLE: validation loss below the data's entropy floor, which no model can beat, at "
            f"{', '.join(breaches.values())} nats/token; {LEAK_CAUSES}")


def _fail_impossible(result: SweepResult, base: Baseline, check: str, breaches: dict[int, str]):
    """Report the sweep against ``base`` with its ``breaches`` marked ``IMPOSSIBLE``, and fail."""
    __tracebackhide__ = True
    message = _impossible(breaches)
    comp = compare(result, base.curve)
    for i, row in enumerate(comp.rows):
        row.verdict = "IMPOSSIBLE" if i in breaches else None
    _context(result).reports.append(_report(result, base, check, "failed", message, comp))
    _fail(f"{message}\n{_table(comp.rows)}")


def _missing(name: str, path: Path, nodeid: str) -> str:
    """Why a named baseline that does not exist fails, with the command that records it."""
    known = names_hint(name, path.parent)
    command = "pytest --scaling --scaling-update" + (f" {shlex.quote(nodeid)}" if nodeid else "")
    stop = "" if known.endswith("?") else "."
    return f"baseline {name!r} does not exist ({path}){known}{stop} To record it from this test: {command}"


def _owner_hint(result: SweepResult, base: Baseline) -> str:
    """Under ``--scaling-update``, for a test that compares with a baseline another test recorded: which test
    re-records it (a failure here after an intended change needs that test run, not this one)."""
    ctx = _context(result)
    if not ctx.update or not base.recorded_by or base.recorded_by == ctx.nodeid:
        return ""
    return (f"\nbaseline {base.name!r} is re-recorded only by the test that recorded it: "
            f"pytest --scaling --scaling-update {shlex.quote(base.recorded_by)}")


def _owns(nodeid: str, path: Path) -> bool:
    """Whether the test ``nodeid`` may re-record the baseline at ``path`` under ``--scaling-update``: the
    test that recorded it may, and anyone may when either side is unknown (outside pytest, older files)."""
    owner = Baseline.owner(path)
    return not owner or not nodeid or owner == nodeid


@dataclass
class Comparison:
    """Per-size statistics of a candidate against a baseline curve."""

    rows: list[SizeRow]
    noise: SeedNoise
    cov: np.ndarray  # [K, K] covariance of the sizes' log deviations: sigma_i^2 on the diagonal, the baseline's
    # bootstrap covariance between sizes off it

    @property
    def assumed_noise(self) -> bool:
        return self.noise.dof == 0

    @property
    def z(self) -> np.ndarray:
        return np.array([r.z for r in self.rows])

    def scores(self, z) -> np.ndarray:
        """Normal scores of per-size statistics ``z``: each through Student's t with its size's noise dof."""
        dof = np.array([r.noise_dof for r in self.rows])
        z = np.asarray(z, dtype=float)
        return z if self.assumed_noise else norm.isf(t.sf(z, dof))

    def combined(self, z) -> float:
        """Stouffer's combination of the per-size statistics ``z`` (a normal score)."""
        return float(self.scores(z).sum() / math.sqrt(len(self.rows)))

    @property
    def stouffer(self) -> float:
        return self.combined(self.z)

    def bounds(self, q: float) -> np.ndarray:
        """Per size, the ``q`` quantile of its z's reference distribution (Student's t with its noise dof)."""
        return np.array([norm.ppf(q) if self.assumed_noise else t.ppf(q, r.noise_dof) for r in self.rows])

    @property
    def size_bounds(self) -> np.ndarray:
        """Per size, the Bonferroni bound of the gate's per-size tests (``ALPHA / K`` each)."""
        return self.bounds(1 - ALPHA / len(self.rows))


def _inside(curve: Curve, compute: float) -> bool:
    """Whether ``compute`` lies within the baseline's measured sizes (0.1% tolerance at the ends)."""
    return curve.compute.min() / 1.001 <= compute <= curve.compute.max() * 1.001


def compare(result: SweepResult, curve: Curve) -> Comparison:
    """The candidate's per-size deviation from ``curve`` and its noise (see the module docstring)."""
    noise = fit_seed_noise([*curve.compute, *result.compute], [*curve.losses, *(p.losses for p in result.points)])
    n_b = min(len(runs) for runs in curve.losses)
    bootstrap_bias = n_b / (n_b - 1) if n_b > 1 else 1.0
    reps = curve.predict_samples(result.compute)  # [R, K]
    cov = np.atleast_2d(np.cov(np.log(reps), rowvar=False, bias=True)) * bootstrap_bias
    rows = []
    for i, point in enumerate(result.points):
        finite = [x for x in point.losses if math.isfinite(x)]
        C = point.compute
        predicted = float(curve.predict(C)[0])
        lo, hi = np.percentile(reps[:, i], [2.5, 97.5])
        seed_noise = float(noise.at(C)) if noise.dof else ASSUMED_NOISE
        noise_dof = float(noise.dof_at(C)) if noise.dof else math.inf
        baseline_var = max(float(cov[i, i]), seed_noise**2 / n_b)
        sigma = math.sqrt(seed_noise**2 / max(1, len(finite)) + baseline_var)
        loss = point.loss
        z = math.log(loss / predicted) / sigma if math.isfinite(loss) else math.inf
        needed = float(curve.compute_for(loss)[0]) if math.isfinite(loss) else 0.0
        rows.append(SizeRow(
            label=point.label, spec=point.spec, params=point.params, tokens=point.tokens, flops=C, loss=loss,
            loss_std=point.loss_std, n_seeds=len(finite), diverged=point.diverged, predicted=predicted,
            predicted_lo=float(lo), predicted_hi=float(hi), deviation=loss / predicted - 1.0, z=z, sigma=sigma,
            seed_noise=seed_noise, noise_dof=noise_dof, multiplier=needed / C, lr=point.lr,
            lr_multiplier=point.lr_multiplier,
            extrapolated=not _inside(curve, C) or (math.isfinite(loss) and not _inside(curve, needed)),
        ))  # fmt: skip
        cov[i, i] = sigma**2
    return Comparison(rows, noise, cov)


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
        baseline_points={"compute": curve.compute.tolist(), "loss": curve.anchors[0].tolist()},
    )  # fmt: skip


def _bound_text(bounds: np.ndarray) -> str:
    """'3.75', or '3.75 to 6.10' when the sizes' noise dof differ."""
    lo, hi = float(np.min(bounds)), float(np.max(bounds))
    return f"{lo:.2f}" if hi - lo < 0.005 else f"{lo:.2f} to {hi:.2f} (by each size's noise dof)"


def _noise(comparison: Comparison) -> Noise:
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
            for r in rows if math.isfinite(r.loss) and _inside(base.curve, r.flops)
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


def _report(result: SweepResult, base: Baseline, check: str, verdict: str, message: str,
            comparison: Comparison | None = None, candidate: Curve | None = None, **extra) -> GateReport:  # fmt: skip
    """The typed report of one check; ``candidate`` is the sweep's own fitted curve when already fitted."""
    comparison = comparison or compare(result, base.curve)
    compared = verdict not in ("recorded", "updated")
    candidate = candidate if candidate is not None else _candidate_curve(result) if compared else None
    notes = ([*_tuning_warnings(comparison.rows, base), *_implausible_warnings(comparison.rows, base)]
             if compared else [])  # fmt: skip
    for line in notes:
        warnings.warn(line, stacklevel=3)
    return GateReport(
        nodeid=_context(result).nodeid, baseline=base.name, check=check, verdict=verdict, message=message,
        sizes=comparison.rows, combined_z=comparison.stouffer,
        noise=_noise(comparison),
        baseline_law=base.curve.params, candidate_law=candidate.params if candidate is not None else None,
        trained=result.trained, runs=len(result.runs), skipped=result.skipped, plot=_plot_data(result, base.curve),
        crossover=_crossover(candidate, base.curve, comparison) if candidate is not None else None, warnings=notes,
        **extra,
    )  # fmt: skip


def _table(rows: list[SizeRow]) -> str:
    from tabulate import tabulate

    body = [[r.label, f"{r.params:,}", f"{r.flops:.3g}", f"{r.loss:.4f} ± {r.loss_std:.4f}", f"{r.predicted:.4f}",
             f"{100 * r.deviation:+.2f}%", f"{r.z:+.2f}", r.verdict or ""] for r in rows]  # fmt: skip
    return tabulate(body, headers=["size", "params", "FLOPs", "loss", "curve", "dev", "z", "verdict"])


def _against(result: SweepResult, baseline: str | Baseline, check: str) -> tuple[Baseline, Comparison] | None:
    """(baseline, comparison), or None when this call recorded the baseline."""
    __tracebackhide__ = True
    base = _load_or_record(result, baseline, check)
    if base is None:
        return None
    return base, compare(result, base.curve)


def judge_on_curve(comp: Comparison, rtol: float | None = None) -> bool:
    """``assert_on_curve``'s rule (see the module docstring): sets each row's verdict and says whether the
    comparison fails."""
    for r, bound in zip(comp.rows, comp.size_bounds, strict=True):
        worse = r.deviation > rtol if rtol is not None else r.z > bound
        better = r.deviation < -rtol if rtol is not None else r.z < -bound
        r.verdict = "DIVERGED" if r.diverged else "WORSE" if worse else "better" if better else "on curve"
    combined_worse = rtol is None and comp.stouffer > norm.ppf(1 - ALPHA)
    return any(r.verdict in ("WORSE", "DIVERGED") for r in comp.rows) or combined_worse


def assert_on_curve(result: SweepResult, baseline: str | Baseline = "reference", rtol: float | None = None) -> None:
    """Fail unless every size's loss is on or below the baseline curve (within noise, or ``rtol``)."""
    __tracebackhide__ = True
    against = _against(result, baseline, "on_curve")
    if against is None:
        return
    base, comp = against
    z_all = norm.ppf(1 - ALPHA)
    failed = judge_on_curve(comp, rtol)
    worst = max(comp.rows, key=lambda r: r.deviation)
    rule = f"rtol={rtol:g}" if rtol is not None else (
        f"noise-aware: size z > {_bound_text(comp.size_bounds)} or combined z > {z_all:.2f}; "
        f"{seed_noise_text(_noise(comp), comp.rows)}")  # fmt: skip
    headline = (f"{'off' if failed else 'on'} baseline {base.name!r}: worst deviation "
                f"{100 * worst.deviation:+.2f}% at {worst.label} (z {worst.z:+.2f}); combined z "
                f"{comp.stouffer:+.2f}")  # fmt: skip
    _context(result).reports.append(_report(result, base, "on_curve", "failed" if failed else "passed",
                                            headline, comp))  # fmt: skip
    if failed:
        _fail(f"sweep is {headline} [{rule}]\n{_table(comp.rows)}{_owner_hint(result, base)}")


def assert_beats_curve(result: SweepResult, baseline: str | Baseline = "reference", margin: float = 0.0) -> None:
    """Fail unless the sweep is better than the curve by ``margin`` (relative), with evidence."""
    __tracebackhide__ = True
    against = _against(result, baseline, "beats_curve")
    if against is None:
        return
    base, comp = against
    for r, bound in zip(comp.rows, comp.size_bounds, strict=True):
        r.z_better = (math.log(1 - margin) - math.log(r.loss / r.predicted)) / r.sigma
        r.verdict = "DIVERGED" if r.diverged else "better" if r.z_better > bound else "not better"
    combined = comp.combined([r.z_better for r in comp.rows])
    probability = float(norm.cdf(combined))
    failed = any(r.verdict != "better" for r in comp.rows) or combined < norm.ppf(1 - ALPHA)
    headline = (f"{'does not beat' if failed else 'beats'} baseline {base.name!r} by margin {100 * margin:.1f}%: "
                f"P(better) = {probability:.4f} (combined z {combined:+.2f})")  # fmt: skip
    _context(result).reports.append(_report(result, base, "beats_curve", "failed" if failed else "passed",
                                            headline, comp, probability_better=probability))  # fmt: skip
    if failed:
        _fail(f"sweep {headline}\n{_table(comp.rows)}{_owner_hint(result, base)}")


def assert_exponent(result: SweepResult, baseline: str | Baseline = "reference", atol: float = 0.0) -> None:
    """Fail when the sweep's fitted compute exponent alpha is worse (smaller) than the baseline's by
    more than ``atol`` plus the bootstrap noise of both fits."""
    __tracebackhide__ = True
    base = _load_or_record(result, baseline, "exponent")
    if base is None:
        return
    try:
        cand = fit_curve(result.compute, [p.losses for p in result.points])
    except ScalingError as exc:
        _fail(f"cannot fit the sweep's exponent: {exc}")
    a_c, a_b = cand.params["alpha"], base.curve.params["alpha"]
    alphas = [CURVE_LAW.params(curve.samples)["alpha"] for curve in (cand, base.curve)]
    sd = math.sqrt(sum(np.var(a) for a in alphas))
    bound = a_b - atol - norm.ppf(1 - ALPHA) * sd
    failed = a_c < bound
    headline = (f"exponent alpha {a_c:.4f} vs baseline {base.name!r} {a_b:.4f} (bootstrap sd {sd:.4f}); "
                f"worst allowed {bound:.4f}")  # fmt: skip
    _context(result).reports.append(_report(result, base, "exponent", "failed" if failed else "passed", headline,
                                            candidate=cand, alpha=a_c, baseline_alpha=a_b))  # fmt: skip
    if failed:
        _fail(f"scaling exponent is worse: {headline}")


@dataclass
class Multiplier:
    """How much compute the baseline needs to reach the candidate's loss, relative to the candidate's."""

    value: float  # geometric mean over the sizes it is read off inside the baseline's range (> 1: more efficient)
    lo: float
    hi: float
    per_size: list[float]
    extrapolated: bool = False  # no size lies inside the baseline's range: the mean is over extrapolated sizes

    def __float__(self) -> float:
        return self.value


def compute_multiplier(result: SweepResult, baseline: str | Baseline = "reference", level: float = 0.95):
    """The compute multiplier with a bootstrap interval (baseline replicas x candidate seed noise);
    None when this call recorded the baseline. The headline mean leaves out sizes whose multiplier is read
    off outside the baseline's measured sizes (``SizeRow.extrapolated``), unless every size is such."""
    __tracebackhide__ = True
    against = _against(result, baseline, "multiplier")
    if against is None:
        return None
    base, comp = against
    lost = [r.label for r in comp.rows if not math.isfinite(r.loss)]
    if lost:
        _fail(f"no compute multiplier against {base.name!r}: every run diverged at {', '.join(lost)}")
    inside = [r for r in comp.rows if not r.extrapolated]
    rows = inside or comp.rows
    rng = np.random.default_rng(0)
    logs = []
    for r in rows:
        noise = r.seed_noise / math.sqrt(max(1, r.n_seeds))
        losses = r.loss * np.exp(rng.normal(0, noise, len(base.curve.samples)))
        needed = base.curve.compute_for(losses, replicas=True)
        logs.append(np.log(needed / r.flops))
    q = (1 - level) / 2
    with np.errstate(invalid="ignore"):  # replicas beyond the curve's reach are inf
        geo = np.exp(np.mean(logs, axis=0))
        lo, hi = np.nanpercentile(geo, [100 * q, 100 * (1 - q)])
    value = math.exp(np.mean(np.log([r.multiplier for r in rows])))
    mult = Multiplier(value, float(lo), float(hi), [r.multiplier for r in comp.rows], extrapolated=not inside)
    left_out = len(comp.rows) - len(inside)
    scope = ("every size extrapolated" if not inside
             else f"{len(inside)} of {len(comp.rows)} sizes; {left_out} extrapolated left out" if left_out
             else "")  # fmt: skip
    headline = (f"compute multiplier vs {base.name!r}: {value:.3g}x ({100 * level:g}% CI {lo:.3g} to {hi:.3g})"
                + (f" ({scope})" if scope else ""))  # fmt: skip
    _context(result).reports.append(_report(result, base, "multiplier", "info", headline, comp,
                                            multiplier=[value, float(lo), float(hi)],
                                            multiplier_extrapolated=not inside))  # fmt: skip
    return mult
