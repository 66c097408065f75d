"""Seed noise: how much a size's loss varies between seeds, as a function of training compute.

Small models differ more between seeds than large ones (on the shipped ladder, relative standard deviation
over 40 seeds: 0.75% at 3.1k parameters, 0.1-0.2% from 12k to 99k; ``docs/workload.md``), so one pooled
figure understates the noise at the small end, where it raised false alarms. :func:`fit_seed_noise` fits
the variance ``v`` of a seed's relative deviation from its size's mean as ``log v(C) = a + b log C`` by
maximum likelihood to every size's sample variance (a scaled chi-square with ``n - 1`` degrees of freedom),
and reads the noise at a compute as the larger of that line and the pooled figure: the model may raise a
size's noise above the pooled figure, never lower it (the decline flattens at the large end, where a line
through the small end's steep fall understated the noise by 5x). The slope is 0 (the pooled figure) when
fewer than :data:`MIN_SIZES_FOR_SLOPE` sizes have two seeds.

Where the line applies, it is known best at the seeds' mean log compute and less well towards the ends:
:meth:`SeedNoise.dof_at` gives its effective degrees of freedom ``2 / var(log v)`` (``var(log v) = 2 / D +
x^2 * 2 / Sxx`` from the Fisher information, D the seeds' total dof, x the distance from their mean log
compute and Sxx the dof-weighted sum of squares of x); where the pooled figure applies, its D. A size's z
is referred to a Student's t with as many dof as its noise estimate is worth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

MIN_SIZES_FOR_SLOPE = 3
ASSUMED_NOISE = 0.01  # relative seed noise assumed when no size has two seeds


@dataclass(frozen=True)
class SeedNoise:
    """Relative seed standard deviation ``exp((a + b * (log C - log_c0)) / 2)``; ``dof`` its degrees of
    freedom (the seeds' total, minus one for a slope); ``dof == 0``: no size had two seeds (nothing was
    fitted). ``sxx``: the dof-weighted sum of squares of the sizes' ``log C - log_c0`` (0 without a slope)."""

    a: float
    b: float
    log_c0: float
    dof: int
    sxx: float = 0.0
    pooled: float = math.nan  # log of the pooled variance

    def _line(self, compute) -> tuple[np.ndarray, np.ndarray]:
        """(x, log variance of the line) at ``compute``."""
        x = np.log(np.asarray(compute, dtype=float)) - self.log_c0
        return x, self.a + self.b * x

    def at(self, compute) -> np.ndarray:
        """The relative seed standard deviation at ``compute`` (FLOPs; array-like): the line's, never below
        the pooled figure."""
        _, line = self._line(compute)
        return np.exp(np.maximum(line, self.pooled) / 2) if self.by_compute else np.exp(line / 2)

    def dof_at(self, compute) -> np.ndarray:
        """Effective degrees of freedom of the noise at ``compute``: where the line applies, ``dof`` at the
        seeds' mean log compute and fewer towards and beyond the ends of the sizes (at least 1); elsewhere
        the pooled figure's."""
        x, line = self._line(compute)
        if not self.by_compute:
            return np.full(x.shape, float(self.dof))
        total = self.dof + 1
        along = np.clip(1 / (1 / total + x**2 / self.sxx), 1.0, float(self.dof))
        return np.where(line > self.pooled, along, float(total))

    @property
    def by_compute(self) -> bool:
        """Whether the noise varies with compute (a slope was fitted)."""
        return self.b != 0.0


def _size_variance(losses: list[float]) -> tuple[float, int]:
    """Sum of squared relative deviations from the size's mean, and its dof (finite losses only)."""
    runs = np.asarray([x for x in losses if math.isfinite(x)], float)
    if len(runs) < 2:
        return 0.0, 0
    return float(np.sum((runs / runs.mean() - 1.0) ** 2)), len(runs) - 1


def pooled_noise(losses: list[list[float]]) -> tuple[float, int]:
    """Pooled relative seed standard deviation over sizes, and its degrees of freedom (nan, 0 with one seed)."""
    ss, dof = (sum(v) for v in zip(*map(_size_variance, losses), strict=True)) if losses else (0.0, 0)
    return (math.sqrt(ss / dof), int(dof)) if dof else (math.nan, 0)


def fit_seed_noise(compute, losses: list[list[float]]) -> SeedNoise:
    """The seed-noise model of sizes at ``compute`` with per-seed ``losses`` (baseline and candidate sizes
    may be passed together); :meth:`SeedNoise.at` reads it at any compute."""
    stats = [(math.log(c), *_size_variance(runs)) for c, runs in zip(compute, losses, strict=True)]
    stats = [(x, ss, d) for x, ss, d in stats if d > 0]
    dof = sum(d for _, _, d in stats)
    if not dof:
        return SeedNoise(math.nan, 0.0, 0.0, 0)
    x, ss, d = (np.array(v, dtype=float) for v in zip(*stats, strict=True))
    log_c0 = float(np.sum(d * x) / dof)
    x = x - log_c0
    pooled = max(float(ss.sum() / dof), 1e-300)
    if len(np.unique(x)) < MIN_SIZES_FOR_SLOPE or np.any(ss <= 0):
        return SeedNoise(math.log(pooled), 0.0, log_c0, int(dof), pooled=math.log(pooled))

    def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Negative log-likelihood of the sample variances (up to a constant) and its gradient."""
        eta = theta[0] + theta[1] * x
        r = ss * np.exp(-eta)  # = d * S / v
        return float(np.sum(d * eta + r)), np.array([np.sum(d - r), np.sum((d - r) * x)])

    fitted = minimize(nll, np.array([math.log(pooled), 0.0]), jac=True, method="BFGS")
    a, b = (float(v) for v in fitted.x)
    return SeedNoise(a, b, log_c0, max(1, int(dof) - 1), float(np.sum(d * x**2)), math.log(pooled))
