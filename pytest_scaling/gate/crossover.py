"""Where a candidate's fitted law meets the baseline's, and whether the gap between them moves with compute.

Two laws fitted to two sweeps of the *same* model differ by seed noise, and so does their crossing: on the
shipped suite the reference re-seeded has E 3.04 and alpha 0.22 where its baseline has 2.81 and 0.065, and
the laws "cross". So a trend is claimed only when the data show one:

* the gap per size is the candidate's log deviation from the baseline's curve, y_i = log(m_i / p_i) (the
  gate's statistic before it is divided by sigma_i);
* the trend is the slope of y on log10 C by generalised least squares, with the gate's covariance of the
  y_i: its sigma_i^2 on the diagonal (the candidate's seed noise and the baseline's), and between sizes the
  covariance of the baseline's bootstrap replicas (both read the same fitted curve);
* the slope (the gap's change per 10x compute) gets a 95% interval from Student's t with the fewest noise
  degrees of freedom of any size; the gap is ``growing`` (its magnitude rising with compute) or
  ``shrinking`` when the interval excludes 0, otherwise ``none``, and then no crossover is claimed.

The crossing itself is read off the two fitted laws (the first sign change of their gap between the
smallest size and :data:`CROSSOVER_REACH` x the largest), with a 95% interval over paired bootstrap
replicas of the two laws. Calibration on re-seeded references: ``benchmarks/scripts/measure_trend.py``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm, t

from ..fitting.laws import CURVE_LAW
from .baseline import Curve
from .records import Crossover

CROSSOVER_REACH = 1000.0  # how far past the largest size the crossover of two laws is searched
TREND_LEVEL = 0.95  # two-sided confidence of the gap's slope before a trend is claimed


def _first_crossing(gap: np.ndarray, logc: np.ndarray) -> np.ndarray:
    """Per row of ``gap`` [R, M] (over log compute ``logc`` [M]) the compute of its first sign change (inf: none)."""
    sign = np.sign(gap)
    changed = (sign != sign[:, :1]) & (sign != 0)
    out = np.full(len(gap), math.inf)
    for i in np.flatnonzero(changed.any(axis=1)):
        j = int(np.argmax(changed[i]))
        g0, g1 = gap[i, j - 1], gap[i, j]
        out[i] = math.exp(logc[j - 1] + (logc[j] - logc[j - 1]) * g0 / (g0 - g1))
    return out


def law_crossing(candidate: Curve, baseline: Curve) -> tuple[float | None, float | None, float | None, float]:
    """Where the two fitted laws first cross: (compute, 95% interval lo, hi, the largest compute searched);
    None where they do not cross in the searched range."""
    top = max(candidate.compute.max(), baseline.compute.max())
    logc = np.linspace(math.log(min(candidate.compute.min(), baseline.compute.min())),
                       math.log(top * CROSSOVER_REACH), 800)  # fmt: skip

    def gap(theta_c: np.ndarray, theta_b: np.ndarray) -> np.ndarray:
        return CURVE_LAW.log_predict(theta_c, logc[:, None])[0] - CURVE_LAW.log_predict(theta_b, logc[:, None])[0]

    point = _first_crossing(gap(candidate.theta[None], baseline.theta[None]), logc)[0]
    n = min(len(candidate.samples), len(baseline.samples))
    replicas = _first_crossing(gap(candidate.samples[:n], baseline.samples[:n]), logc)
    lo, hi = np.percentile(replicas, [2.5, 97.5], method="nearest") if n else (math.inf, math.inf)  # inf: none
    finite = lambda x: float(x) if math.isfinite(x) else None  # noqa: E731
    return finite(point), finite(lo), finite(hi), float(top * CROSSOVER_REACH)


def gap_trend(compute, log_gap, cov, dof: float) -> tuple[float, float, float, float]:
    """The gap's slope per 10x compute with its 95% interval, and the fitted gap at the largest compute:
    (slope, lo, hi, gap_at_largest), by generalised least squares of ``log_gap`` [K] on log10 ``compute``
    [K] with covariance ``cov`` [K, K]; ``dof``: the noise's degrees of freedom (inf: known)."""
    x = np.log10(np.asarray(compute, float))
    X = np.column_stack([np.ones_like(x), x - x.mean()])
    Wx = np.linalg.solve(cov, X)
    info = X.T @ Wx
    beta = np.linalg.solve(info, Wx.T @ np.asarray(log_gap, float))
    se = math.sqrt(np.linalg.inv(info)[1, 1])
    q = float(t.ppf(0.5 + TREND_LEVEL / 2, dof) if math.isfinite(dof) else norm.ppf(0.5 + TREND_LEVEL / 2))
    slope = float(beta[1])
    return slope, slope - q * se, slope + q * se, float(beta[0] + beta[1] * (x.max() - x.mean()))


def crossover(candidate: Curve, baseline: Curve, compute, log_gap, cov, dof: float) -> Crossover:
    """The candidate's crossover record: its laws' crossing (:func:`law_crossing`) and the trend of the gap
    per size (:func:`gap_trend` over the sizes at ``compute`` with gaps ``log_gap`` and covariance ``cov``)."""
    where, lo, hi, searched_to = law_crossing(candidate, baseline)
    slope, slope_lo, slope_hi, at_largest = gap_trend(compute, log_gap, cov, dof)
    trend = "none"
    if slope_lo > 0 or slope_hi < 0:
        trend = "growing" if (slope > 0) == (at_largest > 0) else "shrinking"
    return Crossover(compute=where, lo=lo, hi=hi, searched_to=searched_to,
                     favours="candidate" if slope < 0 else "baseline", better_at_largest=bool(at_largest < 0),
                     trend=trend, slope=slope, slope_lo=slope_lo, slope_hi=slope_hi)  # fmt: skip
