"""The statistics of one comparison: a sweep's per-size deviation from a baseline curve, its noise, and
``assert_on_curve``'s rule (:func:`judge_on_curve`).

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, t

from ..fitting.noise import ASSUMED_NOISE, SeedNoise, fit_seed_noise
from ..runners.records import SweepResult
from .baseline import Curve
from .records import SizeRow

ALPHA = 0.01  # one-sided false-alarm level of each gate decision


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


def inside(curve: Curve, compute: float) -> bool:
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
            extrapolated=not inside(curve, C) or (math.isfinite(loss) and not inside(curve, needed)),
        ))  # fmt: skip
        cov[i, i] = sigma**2
    return Comparison(rows, noise, cov)


def judge_on_curve(comp: Comparison, rtol: float | None = None) -> bool:
    """``assert_on_curve``'s rule (see the module docstring): sets each row's verdict and says whether the
    comparison fails."""
    for r, bound in zip(comp.rows, comp.size_bounds, strict=True):
        worse = r.deviation > rtol if rtol is not None else r.z > bound
        better = r.deviation < -rtol if rtol is not None else r.z < -bound
        r.verdict = "DIVERGED" if r.diverged else "WORSE" if worse else "better" if better else "on curve"
    combined_worse = rtol is None and comp.stouffer > norm.ppf(1 - ALPHA)
    return any(r.verdict in ("WORSE", "DIVERGED") for r in comp.rows) or combined_worse
