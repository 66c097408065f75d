"""Predict a model nobody trained from a recorded baseline: its loss at N parameters and D tokens, or at a
compute budget, with a 95% interval.

The law is chosen by what the baseline trained:

* every size at one tokens-per-parameter ratio (the shipped suites): the gate's own curve ``L(C)`` along
  that line (:class:`pytest_scaling.gate.baseline.Curve`, compute in the baseline's FLOPs, attention included).
  A query at another ratio cannot be answered: ``L(N, D)`` needs sizes trained at several ratios. A query
  by ``N`` gets its compute from the baseline's FLOPs per parameter-token, ``6 + k N^-g`` fitted to its
  sizes (the attention's share falls as models widen), unless ``flops_per_token`` is given;
* sizes at several ratios (at least 1.5x apart): Chinchilla's ``L(N, D) = E + A/N^alpha + B/D^beta``
  fitted to every run, with a bootstrap over runs; a compute query gets the compute-optimal ``N, D``
  under ``C = 6 N D`` (Hoffmann et al.'s accounting, :func:`pytest_scaling.fitting.allocation.optimal_allocation`).

The interval covers the law's fit and one new run's seed noise at that compute (the baseline's noise
model). For ``L(C)`` the fit's spread is a parametric bootstrap: the curve refitted to size means drawn
from the seed-noise model, with Student's t for the estimated noise (resampling two seeds per size has too
few outcomes: on a synthetic truth its intervals held the truth 88% of the time at 86x the largest
compute, these 98%). For ``L(N, D)`` it is a bootstrap over runs, widened by n / (n - 1) for n seeds. It
does not cover the law's form being wrong far from the trained sizes: ``reach`` says how far the query
lies, in multiples of the largest trained compute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import norm, t

from ..errors import ScalingDataError
from ..fitting.allocation import optimal_allocation
from ..fitting.fit import bootstrap, fit_chinchilla
from ..fitting.laws import CURVE_LAW
from ..fitting.noise import ASSUMED_NOISE, SeedNoise, fit_seed_noise
from ..fitting.solver import solve
from .baseline import Baseline, names_hint

LEVEL = 0.95
RATIO_SPREAD = 1.5  # tokens-per-parameter ratios this far apart make a baseline an L(N, D) design
RATIO_RTOL = 0.1  # a query within this of the baseline's one ratio lies on its line
CHINCHILLA_BOOTSTRAP = 200
CURVE_REPLICAS = 400


@dataclass(frozen=True)
class Prediction:
    """One query's answer: the predicted loss (nats/token) and its 95% interval, and where it lies."""

    law: str  # "L(C)" or "L(N, D)"
    loss: float
    lo: float
    hi: float
    compute: float  # FLOPs of the query (the baseline's accounting for L(C), 6 N D for L(N, D))
    params: float | None  # non-embedding parameters (None: not determined by the query)
    tokens: float | None
    reach: float  # compute / the largest trained size's compute
    notes: tuple[str, ...] = ()


def resolve(baseline: str, directory: str | Path = "scaling_baselines") -> Path:
    """The baseline file named by a path or by a name in ``directory``; an unknown one is a
    :class:`ScalingDataError` naming the closest names there (:func:`~pytest_scaling.gate.baseline.names_hint`)."""
    path = Path(baseline)
    if path.is_file():
        return path
    named = Path(directory) / f"{baseline}.json"
    if named.is_file():
        return named
    hint = names_hint(baseline, Path(directory))
    raise ScalingDataError(f"no baseline {baseline!r}: neither a file nor {named}{hint}")


def _runs(base: Baseline) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every finite run: (N, D, loss)."""
    rows = [(p.params, p.tokens, x) for p in base.points for x in p.losses if math.isfinite(x)]
    return tuple(np.array(v, float) for v in zip(*rows, strict=True))


def _ratios(base: Baseline) -> np.ndarray:
    """Tokens per non-embedding parameter of each size."""
    return np.array([p.tokens / p.params for p in base.points], float)


def _widen(point: float, lo: float, hi: float, n: int, noise: float) -> tuple[float, float]:
    """The bootstrap's log half-widths scaled by sqrt(n / (n - 1)) and combined with one run's seed noise."""
    scale = math.sqrt(n / (n - 1)) if n > 1 else 1.0
    z = norm.ppf(0.5 + LEVEL / 2)
    down = math.hypot(scale * (math.log(point) - math.log(lo)), z * noise)
    up = math.hypot(scale * (math.log(hi) - math.log(point)), z * noise)
    return point * math.exp(-down), point * math.exp(up)


def _seeds(base: Baseline) -> int:
    return min(sum(math.isfinite(x) for x in p.losses) for p in base.points)


def _noise(base: Baseline) -> SeedNoise:
    """The baseline's seed-noise model (:func:`pytest_scaling.fitting.noise.fit_seed_noise`)."""
    return fit_seed_noise([p.compute for p in base.points], [p.losses for p in base.points])


def _noise_at(noise: SeedNoise, compute) -> np.ndarray:
    """The relative seed noise at ``compute``: the model's, or ``ASSUMED_NOISE`` when no size has two seeds."""
    return noise.at(compute) if noise.dof else np.full(np.shape(compute), ASSUMED_NOISE)


def _assumed(noise: SeedNoise) -> tuple[str, ...]:
    return () if noise.dof else (f"seed noise assumed {ASSUMED_NOISE:.0%}: no size of the baseline has two seeds",)


def flops_per_param_token(base: Baseline, params: float) -> float:
    """FLOPs per non-embedding parameter per token at ``params``: ``6 + k N^-g`` fitted to the baseline's sizes
    (log-linear in ``log(C / (N D) - 6)``), 6 where they leave nothing above 6."""
    N = np.array([p.params for p in base.points], float)
    extra = np.array([p.compute / (p.params * p.tokens) for p in base.points]) - 6.0
    keep = extra > 0
    if keep.sum() < 2:
        return 6.0 + (float(extra[keep][0]) if keep.any() else 0.0)
    slope, intercept = np.polyfit(np.log(N[keep]), np.log(extra[keep]), 1)
    return 6.0 + math.exp(intercept + slope * math.log(params))


def _reach(base: Baseline, compute: float) -> float:
    return compute / max(p.compute for p in base.points)


def _along_line(base: Baseline, compute: float, params=None, tokens=None, notes=()) -> Prediction:
    """The curve's prediction at ``compute`` with a parametric-bootstrap interval (see :func:`_curve_replicas`)."""
    curve = base.curve
    point = float(curve.predict(compute)[0])
    noise = _noise(base)
    q = float(t.ppf(0.5 + LEVEL / 2, noise.dof)) if noise.dof else float(norm.ppf(0.5 + LEVEL / 2))
    replicas = _curve_replicas(base, noise, compute) - math.log(point)
    lo, hi = np.percentile(replicas, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    widen = q / norm.ppf(0.5 + LEVEL / 2)  # the noise is estimated: Student's t instead of the normal
    run_noise = q * float(_noise_at(noise, compute))
    down, up = math.hypot(widen * lo, run_noise), math.hypot(widen * hi, run_noise)
    return Prediction("L(C)", point, point * math.exp(-down), point * math.exp(up), compute, params, tokens,
                      _reach(base, compute), (*notes, *_assumed(noise)))  # fmt: skip


def _curve_replicas(base: Baseline, noise, compute: float) -> np.ndarray:
    """log L at ``compute`` per replica of the anchored curve refitted to size means drawn around the
    baseline's from its seed-noise model (a parametric bootstrap: resampling two seeds per size has too
    few distinct outcomes to measure the fit's spread)."""
    curve = base.curve
    n = np.array([len(runs) for runs in curve.losses], float)
    sd = _noise_at(noise, curve.compute) / np.sqrt(n)
    rng = np.random.default_rng(base.seed)
    R, K = CURVE_REPLICAS, len(n)
    means = curve.anchors[0] * np.exp(rng.normal(0.0, sd, (R, K)))
    X = np.tile(np.log(curve.compute), R)[:, None]
    weights = np.kron(np.eye(R), np.ones(K))  # replica r fits its own K means
    theta = solve(CURVE_LAW, np.repeat(curve.theta[None], R, axis=0), X, np.log(means).ravel(), weights=weights,
                  rtol=1e-7).theta  # fmt: skip
    return curve.log_predict(theta, means, [compute])[:, 0]


def _chinchilla(base: Baseline):
    N, D, loss = _runs(base)
    if len({(n, d) for n, d in zip(N, D, strict=True)}) < 5:
        raise ScalingDataError(f"baseline {base.name!r}: L(N, D) needs at least 5 sizes or budgets, got "
                               f"{len(base.points)}")  # fmt: skip
    fitted = fit_chinchilla(N, D, loss)
    bootstrap(fitted, CHINCHILLA_BOOTSTRAP, level=LEVEL)
    return fitted


def _line_ratio(base: Baseline) -> float | None:
    """The baseline's one tokens-per-parameter ratio, or None when its sizes vary it (an L(N, D) design)."""
    r = _ratios(base)
    return None if r.max() / r.min() >= RATIO_SPREAD else float(np.exp(np.mean(np.log(r))))


def predict_size(base: Baseline, params: float, tokens: float | None = None,
                 flops_per_token: float | None = None) -> Prediction:  # fmt: skip
    """The loss of a model with ``params`` non-embedding parameters trained on ``tokens`` (default: the
    baseline's ratio times ``params``); ``flops_per_token``: its training FLOPs per token when known."""
    ratio = _line_ratio(base)
    if ratio is None:
        if tokens is None:
            raise ScalingDataError(f"baseline {base.name!r} trains its sizes at several tokens per parameter: give "
                                   "--tokens as well")  # fmt: skip
        fitted = _chinchilla(base)
        point = float(fitted.predict(N=params, D=tokens))
        lo, hi = (float(v) for v in fitted.bootstrap.predict_interval(N=params, D=tokens))
        return _on_grid(base, point, lo, hi, params, tokens)
    tokens = ratio * params if tokens is None else tokens
    if abs(tokens / params / ratio - 1) > RATIO_RTOL:
        raise ScalingDataError(
            f"baseline {base.name!r} trains every size at {ratio:.3g} tokens per parameter, so its law L(C) "
            f"predicts models on that line only, and {tokens:.4g} tokens for {params:.4g} parameters is "
            f"{tokens / params:.3g}; L(N, D) needs sizes trained at several ratios (record a baseline whose "
            f"sweep varies tokens_per_param), or ask for {ratio * params:.4g} tokens")  # fmt: skip
    per_token = flops_per_token if flops_per_token is not None else flops_per_param_token(base, params) * params
    note = (f"compute {per_token:.4g} FLOPs per token" + (" (given)" if flops_per_token is not None else
            f" ({per_token / params:.3g} per parameter, extrapolated from the baseline's sizes)"))  # fmt: skip
    return _along_line(base, per_token * tokens, params, tokens, [note])


def predict_compute(base: Baseline, compute: float) -> Prediction:
    """The loss a compute budget reaches: along the baseline's line (L(C)), or at the compute-optimal
    ``N, D`` of its fitted L(N, D) under ``C = 6 N D``."""
    if _line_ratio(base) is not None:
        return _along_line(base, compute, notes=[
            "compute-optimal N and D need L(N, D): this baseline trains every size at one tokens-per-parameter "
            "ratio, so the loss is along that line"])  # fmt: skip
    fitted = _chinchilla(base)
    alloc = optimal_allocation(fitted.params, compute)
    N, D = float(alloc["N_opt"]), float(alloc["D_opt"])
    replicas = optimal_allocation(fitted.bootstrap.params, compute)
    X = np.log(np.column_stack([replicas["N_opt"], replicas["D_opt"]]))  # replica r at its own optimum
    losses = np.exp(np.diag(fitted.law.log_predict(fitted.bootstrap.samples, X)[0]))
    point = float(fitted.predict(N=N, D=D))
    lo, hi = np.nanpercentile(losses, [100 * (1 - LEVEL) / 2, 100 * (1 + LEVEL) / 2])
    n_lo, n_hi = np.nanpercentile(replicas["N_opt"], [2.5, 97.5])
    return _on_grid(base, point, float(lo), float(hi), N, D,
                    f"compute-optimal N 95% CI {n_lo:.3g} to {n_hi:.3g}; C = 6 N D")  # fmt: skip


def _on_grid(base: Baseline, point: float, lo: float, hi: float, N: float, D: float, *notes: str) -> Prediction:
    """An L(N, D) prediction: the bootstrap interval widened (:func:`_widen`) by one run's seed noise, read
    at the measured compute that ``6 N D`` corresponds to relative to the largest trained size."""
    reach = N * D / max(p.params * p.tokens for p in base.points)
    noise = _noise(base)
    run_noise = float(_noise_at(noise, reach * max(p.compute for p in base.points)))
    lo, hi = _widen(point, lo, hi, _seeds(base), run_noise)
    return Prediction("L(N, D)", point, lo, hi, 6.0 * N * D, N, D, reach, (*notes, *_assumed(noise)))
