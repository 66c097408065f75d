"""The gate: compare a sweep with a named baseline curve, and the ``assert_*`` helpers built on it.

Statistics (per size i of the candidate, K sizes):

* ``predicted`` p_i: the baseline's anchored curve at the candidate's compute C_i;
* noise: sigma_i^2 = s^2 / n_i + var(log p_i), with s the relative seed standard deviation pooled over
  the baseline's and the candidate's seeds (``ASSUMED_NOISE`` when neither has two seeds) and var(log p_i)
  from the baseline's bootstrap, scaled by n_b / (n_b - 1) (a bootstrap of n_b seeds underestimates the
  variance of their mean by that factor: half of it with two seeds);
* ``z_i = log(m_i / p_i) / sigma_i`` (m_i the candidate's mean loss): the deviation in noise units.

``assert_on_curve`` fails when some z_i exceeds the Bonferroni bound ``Q(1 - ALPHA / K)`` or the
combined (Stouffer) ``sum z_i / sqrt(K)`` exceeds ``Q(1 - ALPHA)``, Q the quantile of Student's t with
the pooled noise's degrees of freedom (the normal's when the noise is assumed); with ``rtol`` a size fails
when its relative deviation exceeds ``rtol`` instead. Being better than the curve always passes.

A size with a diverged run (see :mod:`pytest_scaling.train`) is ``DIVERGED`` and fails ``assert_on_curve``
and ``assert_beats_curve``; ``compute_multiplier`` fails when every run of a size diverged.

Baselines: a helper that names a baseline file that does not exist fails with the command that records it
(and the closest existing names); under ``--scaling-update`` it records it. The test that recorded a
baseline re-records it under ``--scaling-update``; every other test that names it (a variant gated
against the reference) is compared with it as usual, never writes it. A sweep with diverged runs is not
recorded unless ``--scaling-allow-diverged`` is given.
"""

from __future__ import annotations

import difflib
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import norm, t

from .baseline import CURVE_LAW, Baseline, BaselineError, Curve, fit_curve, pooled_noise
from .errors import ScalingError
from .fit import fit
from .sweep import SweepResult

ALPHA = 0.01  # one-sided false-alarm level of each gate decision
ASSUMED_NOISE = 0.01  # relative seed noise assumed when no size has two seeds
DEFAULT_BASELINES = "scaling_baselines"


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
    if isinstance(baseline, Baseline):
        return baseline
    ctx = _context(result)
    path = Path(baseline) if str(baseline).endswith(".json") else ctx.baselines_dir / f"{baseline}.json"
    name = path.stem
    if not path.exists() and not ctx.update:
        _fail(_missing(name, path, ctx.nodeid))
    if not path.exists() or (ctx.update and _owns(ctx.nodeid, path)):
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
    try:
        loaded = Baseline.load(path)
    except BaselineError as exc:
        _fail(str(exc))
    diffs = loaded.differences(result)
    if diffs:
        _fail(f"baseline {name!r} ({path}) was recorded with other settings than this run: " + "; ".join(diffs)
              + ". Re-record it with `pytest --scaling --scaling-update` if the change is intended.")  # fmt: skip
    return loaded


def _missing(name: str, path: Path, nodeid: str) -> str:
    """Why a named baseline that does not exist fails, with the command that records it."""
    existing = sorted(p.stem for p in path.parent.glob("*.json")) if path.parent.is_dir() else []
    close = difflib.get_close_matches(name, existing, n=3, cutoff=0.6)
    known = (f"; did you mean {' or '.join(repr(c) for c in close)}?" if close
             else f"; existing baselines in {path.parent}: {', '.join(existing)}" if existing else "")  # fmt: skip
    command = "pytest --scaling --scaling-update" + (f" {shlex.quote(nodeid)}" if nodeid else "")
    return f"baseline {name!r} does not exist ({path}){known}. To record it from this test: {command}"


def _owns(nodeid: str, path: Path) -> bool:
    """Whether the test ``nodeid`` may re-record the baseline at ``path`` under ``--scaling-update``: the
    test that recorded it may, and anyone may when either side is unknown (outside pytest, older files)."""
    owner = Baseline.owner(path)
    return not owner or not nodeid or owner == nodeid


@dataclass
class Comparison:
    """Per-size statistics of a candidate against a baseline curve."""

    rows: list[dict]
    noise: float
    noise_dof: int
    assumed_noise: bool

    @property
    def z(self) -> np.ndarray:
        return np.array([r["z"] for r in self.rows])

    @property
    def stouffer(self) -> float:
        return float(self.z.sum() / math.sqrt(len(self.rows)))

    def quantile(self, q: float) -> float:
        """Quantile of the z statistics' reference distribution (Student's t with the noise's dof)."""
        return float(norm.ppf(q) if self.assumed_noise else t.ppf(q, self.noise_dof))

    def cdf(self, z: float) -> float:
        return float(norm.cdf(z) if self.assumed_noise else t.cdf(z, self.noise_dof))


def compare(result: SweepResult, curve: Curve) -> Comparison:
    """The candidate's per-size deviation from ``curve`` and its noise (see the module docstring)."""
    cand_noise, cand_dof = pooled_noise([p.losses for p in result.points])
    ss = (0 if math.isnan(curve.noise) else curve.noise**2 * curve.noise_dof) + (
        0 if math.isnan(cand_noise) else cand_noise**2 * cand_dof
    )
    dof = curve.noise_dof + cand_dof
    noise = math.sqrt(ss / dof) if dof else ASSUMED_NOISE
    n_b = min(len(runs) for runs in curve.losses)
    bootstrap_bias = n_b / (n_b - 1) if n_b > 1 else 1.0
    rows = []
    for point in result.points:
        finite = [x for x in point.losses if math.isfinite(x)]
        C = point.compute
        predicted = float(curve.predict(C)[0])
        reps = curve.predict_samples(C)[:, 0]
        lo, hi = np.percentile(reps, [2.5, 97.5])
        sigma = math.sqrt(noise**2 / max(1, len(finite)) + float(np.var(np.log(reps))) * bootstrap_bias)
        loss = point.loss
        z = math.log(loss / predicted) / sigma if math.isfinite(loss) else math.inf
        needed = float(curve.compute_for(loss)[0]) if math.isfinite(loss) else 0.0
        rows.append({
            "label": point.label, "spec": point.spec, "params": point.params, "tokens": point.tokens,
            "flops": C, "loss": loss, "loss_std": point.loss_std, "n_seeds": len(finite),
            "diverged": point.diverged, "predicted": predicted, "predicted_lo": float(lo),
            "predicted_hi": float(hi), "deviation": loss / predicted - 1.0, "z": z, "sigma": sigma,
            "multiplier": needed / C,
        })  # fmt: skip
    return Comparison(rows, noise, dof, dof == 0)


def _fit_candidate(result: SweepResult) -> dict | None:
    """The candidate's own L(C) law (for the report), fitted to every run like a baseline's curve."""
    if len(result.points) < 3 or not all(math.isfinite(p.loss) for p in result.points):
        return None
    C = np.concatenate([[p.compute] * len(p.losses) for p in result.points])
    L = np.concatenate([p.losses for p in result.points])
    try:
        return {k: float(v) for k, v in fit(CURVE_LAW, L[np.isfinite(L)], C=C[np.isfinite(L)]).params.items()}
    except ScalingError:
        return None


def _plot_data(result: SweepResult, curve: Curve) -> dict:
    """What a plot needs, as plain lists (reports travel between xdist workers as JSON)."""
    cmin = min(curve.compute.min(), result.compute.min())
    cmax = max(curve.compute.max(), result.compute.max())
    grid = np.exp(np.linspace(np.log(cmin) - 0.3, np.log(cmax) + 0.3, 60))
    reps = curve.predict_samples(grid)
    return {
        "compute": grid.tolist(),
        "baseline": curve.predict(grid).tolist(),
        "baseline_lo": np.percentile(reps, 2.5, axis=0).tolist(),
        "baseline_hi": np.percentile(reps, 97.5, axis=0).tolist(),
        "baseline_points": {"compute": curve.compute.tolist(), "loss": curve.anchors[0].tolist()},
    }


def _report(result: SweepResult, base: Baseline, check: str, verdict: str, message: str,
            comparison: Comparison | None = None, extra: dict | None = None) -> dict:  # fmt: skip
    ctx = _context(result)
    comparison = comparison or compare(result, base.curve)
    return {
        "nodeid": ctx.nodeid,
        "baseline": base.name,
        "check": check,
        "verdict": verdict,
        "message": message,
        "sizes": comparison.rows,
        "combined_z": comparison.stouffer,
        "noise": {"relative_seed_std": comparison.noise, "dof": comparison.noise_dof,
                  "assumed": comparison.assumed_noise},
        "baseline_law": base.curve.params,
        "candidate_law": (extra or {}).get("candidate_law") or _fit_candidate(result),
        "trained": result.trained,
        "runs": len(result.runs),
        "skipped": result.skipped,
        "plot": _plot_data(result, base.curve),
        **(extra or {}),
    }  # fmt: skip


def _table(rows: list[dict]) -> str:
    from tabulate import tabulate

    body = [[r["label"], f"{r['params']:,}", f"{r['flops']:.3g}", f"{r['loss']:.4f} ± {r['loss_std']:.4f}",
             f"{r['predicted']:.4f}", f"{100 * r['deviation']:+.2f}%", f"{r['z']:+.2f}", r.get("verdict", "")]
            for r in rows]  # fmt: skip
    return tabulate(body, headers=["size", "params", "FLOPs", "loss", "curve", "dev", "z", "verdict"])


def _against(result: SweepResult, baseline: str | Baseline, check: str) -> tuple[Baseline, Comparison, float] | None:
    """(baseline, comparison, per-size Bonferroni bound), or None when this call recorded the baseline."""
    __tracebackhide__ = True
    base = _load_or_record(result, baseline, check)
    if base is None:
        return None
    comp = compare(result, base.curve)
    return base, comp, comp.quantile(1 - ALPHA / len(comp.rows))


def assert_on_curve(result: SweepResult, baseline: str | Baseline = "reference", rtol: float | None = None) -> None:
    """Fail unless every size's loss is on or below the baseline curve (within noise, or ``rtol``)."""
    __tracebackhide__ = True
    against = _against(result, baseline, "on_curve")
    if against is None:
        return
    base, comp, z_size = against
    z_all = comp.quantile(1 - ALPHA)
    for r in comp.rows:
        worse = r["deviation"] > rtol if rtol is not None else r["z"] > z_size
        better = r["deviation"] < -rtol if rtol is not None else r["z"] < -z_size
        r["verdict"] = "DIVERGED" if r["diverged"] else "WORSE" if worse else "better" if better else "on curve"
    combined_worse = rtol is None and comp.stouffer > z_all
    failed = any(r["verdict"] in ("WORSE", "DIVERGED") for r in comp.rows) or combined_worse
    worst = max(comp.rows, key=lambda r: r["deviation"])
    rule = f"rtol={rtol:g}" if rtol is not None else (
        f"noise-aware: size z > {z_size:.2f} or combined z > {z_all:.2f}; seed noise "
        f"{100 * comp.noise:.2f}%{' (assumed)' if comp.assumed_noise else ''}")  # fmt: skip
    headline = (f"{'off' if failed else 'on'} baseline {base.name!r}: worst deviation "
                f"{100 * worst['deviation']:+.2f}% at {worst['label']} (z {worst['z']:+.2f}); combined z "
                f"{comp.stouffer:+.2f}")  # fmt: skip
    _context(result).reports.append(_report(result, base, "on_curve", "failed" if failed else "passed",
                                            headline, comp))  # fmt: skip
    if failed:
        _fail(f"sweep is {headline} [{rule}]\n{_table(comp.rows)}")


def assert_beats_curve(result: SweepResult, baseline: str | Baseline = "reference", margin: float = 0.0) -> None:
    """Fail unless the sweep is better than the curve by ``margin`` (relative), with evidence."""
    __tracebackhide__ = True
    against = _against(result, baseline, "beats_curve")
    if against is None:
        return
    base, comp, z_size = against
    K = len(comp.rows)
    for r in comp.rows:
        r["z_better"] = (math.log(1 - margin) - math.log(r["loss"] / r["predicted"])) / r["sigma"]
        r["verdict"] = "DIVERGED" if r["diverged"] else "better" if r["z_better"] > z_size else "not better"
    combined = float(sum(r["z_better"] for r in comp.rows) / math.sqrt(K))
    probability = comp.cdf(combined)
    failed = any(r["verdict"] != "better" for r in comp.rows) or combined < comp.quantile(1 - ALPHA)
    headline = (f"{'does not beat' if failed else 'beats'} baseline {base.name!r} by margin {100 * margin:.1f}%: "
                f"P(better) = {probability:.4f} (combined z {combined:+.2f})")  # fmt: skip
    _context(result).reports.append(_report(result, base, "beats_curve", "failed" if failed else "passed",
                                            headline, comp, {"probability_better": probability}))  # fmt: skip
    if failed:
        _fail(f"sweep {headline}\n{_table(comp.rows)}")


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
                                            extra={"alpha": a_c, "baseline_alpha": a_b,
                                                   "candidate_law": cand.params}))  # fmt: skip
    if failed:
        _fail(f"scaling exponent is worse: {headline}")


@dataclass
class Multiplier:
    """How much compute the baseline needs to reach the candidate's loss, relative to the candidate's."""

    value: float  # geometric mean over sizes (> 1: the candidate is more compute-efficient)
    lo: float
    hi: float
    per_size: list[float]

    def __float__(self) -> float:
        return self.value


def compute_multiplier(result: SweepResult, baseline: str | Baseline = "reference", level: float = 0.95):
    """The compute multiplier with a bootstrap interval (baseline replicas x candidate seed noise);
    None when this call recorded the baseline."""
    __tracebackhide__ = True
    against = _against(result, baseline, "multiplier")
    if against is None:
        return None
    base, comp, _ = against
    lost = [r["label"] for r in comp.rows if not math.isfinite(r["loss"])]
    if lost:
        _fail(f"no compute multiplier against {base.name!r}: every run diverged at {', '.join(lost)}")
    rng = np.random.default_rng(0)
    logs = []
    for r in comp.rows:
        noise = comp.noise / math.sqrt(max(1, r["n_seeds"]))
        losses = r["loss"] * np.exp(rng.normal(0, noise, len(base.curve.samples)))
        needed = base.curve.compute_for(losses, replicas=True)
        logs.append(np.log(needed / r["flops"]))
    with np.errstate(invalid="ignore"):
        geo = np.exp(np.mean(logs, axis=0))
    q = (1 - level) / 2
    lo, hi = np.nanpercentile(geo, [100 * q, 100 * (1 - q)])
    value = math.exp(np.mean(np.log([r["multiplier"] for r in comp.rows])))
    mult = Multiplier(value, float(lo), float(hi), [r["multiplier"] for r in comp.rows])
    headline = f"compute multiplier vs {base.name!r}: {value:.3g}x (95% CI {lo:.3g} to {hi:.3g})"
    _context(result).reports.append(_report(result, base, "multiplier", "info", headline, comp,
                                            {"multiplier": [value, float(lo), float(hi)]}))  # fmt: skip
    return mult
