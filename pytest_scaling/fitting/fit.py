"""Fitting scaling laws: the log-Huber multi-start fit, the bootstrap, and the backtest.

The estimator is Hoffmann et al.'s, as replicated by Epoch AI: the Huber loss (delta = 1e-3) of
``log L_obs - log L_pred`` SUMMED over points, minimised from the law's whole initialisation grid
(4,500 starts for Chinchilla); the best objective wins, then is polished with L-BFGS-B.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy.special import huber
from threadpoolctl import threadpool_limits

from ..errors import ScalingDataError, ScalingDesignWarning
from .laws import ChinchillaLaw, KaplanLaw, Law, PowerLaw
from .solver import huber_objective, polish, solve

#: A start "reached the optimum" when its final objective is within this relative gap of the best,
#: or within the objective of a 1e-5 residual per point (the float32 resolution of log L) of it.
REACHED_RTOL = 1e-3
REACHED_RESIDUAL = 1e-5


def _as_points(law: Law, loss, inputs: dict) -> tuple[np.ndarray, np.ndarray]:
    """Validate the inputs and return (log X [P, m], log loss [P]); bad data -> ScalingDataError."""
    missing = [name for name in law.inputs if name not in inputs]
    if missing:
        raise ScalingDataError(f"the {law.name} law needs inputs {', '.join(law.inputs)}; missing {', '.join(missing)}")
    columns = {**{name: inputs[name] for name in law.inputs}, "loss": loss}
    arrays = {}
    for name, values in columns.items():
        try:
            arr = np.asarray(values, dtype=float).ravel()
        except (TypeError, ValueError) as exc:
            raise ScalingDataError(f"column {name!r} is not numeric ({exc})") from None
        bad = np.flatnonzero(~np.isfinite(arr) | (arr <= 0))
        if bad.size:
            raise ScalingDataError(
                f"column {name!r} has a non-finite or non-positive value at row {bad[0]} ({arr[bad[0]]!r}); "
                "every value must be a positive finite number"
            )
        arrays[name] = arr
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ScalingDataError(f"columns have different lengths: {lengths}")
    n = lengths["loss"]
    k = len(law.theta_names)
    if n < k:
        raise ScalingDataError(f"the {law.name} law has {k} parameters but only {n} points were given")
    X = np.log(np.stack([arrays[name] for name in law.inputs], axis=1))
    return X, np.log(arrays["loss"])


def design_warnings(law: Law, X: np.ndarray) -> list[str]:
    """Reasons the design cannot identify the law's parameters (empty when it can)."""
    out = []
    for j, name in enumerate(law.inputs):
        levels = len(np.unique(np.round(X[:, j], 9)))
        if levels < 3:
            out.append(f"only {levels} distinct level(s) of {name}: a saturating power law needs at least 3")
    if law.inputs == ("N", "D") and len(X) > 1:
        ratio = X[:, 1] - X[:, 0]
        if np.ptp(ratio) < 1e-6:
            out.append(
                f"tokens per parameter D/N is constant ({np.exp(ratio[0]):.4g}) at every point: "
                "alpha and beta cannot be told apart; vary D/N (e.g. an isoFLOP design)"
            )
    return out


@dataclass
class Bootstrap:
    """Refits on resampled points: ``samples`` [K, k] in the law's internal parameters."""

    law: Law
    samples: np.ndarray
    level: float = 0.95
    seed: int = 0

    @property
    def params(self) -> dict[str, np.ndarray]:
        return self.law.params(self.samples)

    def _bounds(self, values: np.ndarray, level: float | None) -> tuple[float, float]:
        q = (1 - (level or self.level)) / 2
        lo, hi = np.nanpercentile(values, [100 * q, 100 * (1 - q)], axis=0)
        return lo, hi

    def ci(self, level: float | None = None) -> dict[str, tuple[float, float]]:
        """Percentile confidence interval of every reported parameter."""
        return {name: tuple(float(v) for v in self._bounds(vals, level)) for name, vals in self.params.items()}

    def interval(self, fn: Callable[[dict[str, np.ndarray]], np.ndarray], level: float | None = None):
        """Percentile interval of a derived quantity ``fn(params)`` (params are arrays over replicas)."""
        return self._bounds(np.asarray(fn(self.params)), level)

    def predict_interval(self, level: float | None = None, **inputs) -> tuple[np.ndarray, np.ndarray]:
        """Percentile interval of the law's prediction at ``inputs`` (arrays broadcast)."""
        arrays = np.broadcast_arrays(*(np.asarray(inputs[name], dtype=float) for name in self.law.inputs))
        X = np.log(np.stack([a.ravel() for a in arrays], axis=1))
        logp, _ = self.law.log_predict(self.samples, X)
        lo, hi = self._bounds(np.exp(logp), level)
        return lo.reshape(arrays[0].shape), hi.reshape(arrays[0].shape)


@dataclass
class Fit:
    """A fitted law: parameters, objective, how many starts reached the optimum, optional bootstrap."""

    law: Law
    theta: np.ndarray
    objective: float
    n_points: int
    n_starts: int
    converged_fraction: float
    delta: float
    X: np.ndarray = field(repr=False)
    logy: np.ndarray = field(repr=False)
    warnings: list[str] = field(default_factory=list)
    bootstrap: Bootstrap | None = None

    @property
    def params(self) -> dict[str, float]:
        return {name: float(v) for name, v in self.law.params(self.theta).items()}

    def predict(self, **inputs):
        """The fitted law at ``inputs`` (e.g. ``N=..., D=...``; scalars or arrays)."""
        return self.law.predict_theta(self.theta, **inputs)

    def to_dict(self) -> dict:
        out = {
            "law": self.law.name,
            "params": self.params,
            "n_points": self.n_points,
            "objective": self.objective,
            "converged_fraction": self.converged_fraction,
            "n_starts": self.n_starts,
            "delta": self.delta,
            "warnings": list(self.warnings),
        }
        if self.bootstrap is not None:
            out["ci"] = {name: list(bounds) for name, bounds in self.bootstrap.ci().items()}
            out["bootstrap"] = {"n": len(self.bootstrap.samples), "level": self.bootstrap.level,
                                "seed": self.bootstrap.seed}
        return out


#: A start stops once its objective fell by less than 0.01% over 7 iterations, or after 150. The rule sets
#: the cost and the reported converged fraction, not the optimum (the best start is polished). On Epoch
#: AI's 240 points (CPU seconds, one thread): this rule 0.90 s, 16.2% of starts end within REACHED_RTOL of
#: the optimum; no cap 1.03 s, 16.6% (the last few slow starts cost Python overhead per iteration, which
#: also serialises the threads); a 10-iteration window 1.56 s, 38.8%; scipy's L-BFGS-B loop with its
#: default tolerances reaches 7.8%.
START_RTOL, START_WINDOW, START_MAX_ITER = 1e-4, 7, 150


def _solve_starts(law: Law, starts: np.ndarray, X, logy, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Every start's end point and its exact (float64) objective.

    The starts run in float32 (half the memory traffic), split across threads (numpy releases the GIL in
    its array passes; one chunk per thread measured best: smaller chunks cost less CPU time alone but
    hold the GIL longer in total); the polish and the objectives that decide the optimum are float64.
    """
    workers = min(os.cpu_count() or 1, 8, max(1, len(starts) // 256))
    chunks = np.array_split(starts, workers)

    def run(chunk):
        return solve(law, chunk, X, logy, delta=delta, rtol=START_RTOL, window=START_WINDOW,
                     max_iter=START_MAX_ITER, dtype=np.float32).theta

    # BLAS limits are process-wide: set them once here, not concurrently from the threads (see solve)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        thetas = np.concatenate(list(pool.map(run, chunks)))
    objectives, _, _ = huber_objective(law, thetas, X, logy, None, delta)
    return thetas, objectives


def fit(law: Law, loss, *, delta: float = 1e-3, starts: np.ndarray | None = None, **inputs) -> Fit:
    """Fit ``law`` to ``loss`` at ``inputs`` (``N=``, ``D=`` or ``x=``...) by the multi-start log-Huber fit.

    Design problems (too few levels, constant D/N) are raised as :class:`ScalingDesignWarning`
    and kept in ``Fit.warnings``.
    """
    X, logy = _as_points(law, loss, inputs)
    issues = design_warnings(law, X)
    for message in issues:
        warnings.warn(message, ScalingDesignWarning, stacklevel=2)
    grid = law.init_grid() if starts is None else np.atleast_2d(np.asarray(starts, dtype=float))
    thetas, objectives = _solve_starts(law, grid, X, logy, delta)
    if not np.isfinite(objectives).any():
        raise ScalingDataError(f"the {law.name} fit failed from every start (objective not finite)")
    best = int(np.nanargmin(objectives))
    theta, objective = polish(law, thetas[best], X, logy, delta=delta)
    slack = len(logy) * float(huber(delta, REACHED_RESIDUAL))
    reached = float(np.mean(objectives <= objective * (1 + REACHED_RTOL) + slack))
    return Fit(law, theta, objective, len(logy), len(grid), reached, delta, X, logy, issues)


def bootstrap(fitted: Fit, n: int = 1000, *, seed: int = 0, level: float = 0.95) -> Bootstrap:
    """Resample the points with replacement ``n`` times and refit each from the full-data optimum.

    The ``n`` refits run as one batch (resampling = integer point weights). Same seed -> same intervals.
    """
    if n < 2:
        raise ScalingDataError(f"--bootstrap needs at least 2 resamples, got {n}")
    rng = np.random.default_rng(seed)
    P = fitted.n_points
    counts = np.stack([np.bincount(rng.integers(0, P, P), minlength=P) for _ in range(n)]).astype(float)
    starts = np.repeat(fitted.theta[None, :], n, axis=0)
    result = solve(fitted.law, starts, fitted.X, fitted.logy, delta=fitted.delta, weights=counts, rtol=1e-7)
    samples = result.theta[np.isfinite(result.objective)]
    fitted.bootstrap = Bootstrap(fitted.law, samples, level, seed)
    return fitted.bootstrap


def fit_chinchilla(N, D, loss, **kwargs) -> Fit:
    """Fit L(N, D) = E + A/N^alpha + B/D^beta."""
    return fit(ChinchillaLaw(), loss, N=N, D=D, **kwargs)


def fit_power(x, loss, *, offset: bool = True, **kwargs) -> Fit:
    """Fit L(x) = E + A x^-alpha (``offset=False``: Kaplan's L = (x_c/x)^alpha)."""
    return fit(PowerLaw(offset=offset), loss, x=x, **kwargs)


def fit_kaplan(N, D, loss, **kwargs) -> Fit:
    """Fit Kaplan's L(N, D) = ((N_c/N)^(alpha_N/alpha_D) + D_c/D)^alpha_D."""
    return fit(KaplanLaw(), loss, N=N, D=D, **kwargs)


@dataclass
class Backtest:
    """Extrapolation check: fit without the largest scale, predict it."""

    axis: str
    held_out: np.ndarray  # indices of the held-out points
    observed: np.ndarray
    predicted: np.ndarray
    fit: Fit

    @property
    def relative_error(self) -> np.ndarray:
        return (self.predicted - self.observed) / self.observed

    @property
    def mean_abs_relative_error(self) -> float:
        return float(np.mean(np.abs(self.relative_error)))


def backtest(law: Law, loss, *, axis: str | None = None, **inputs) -> Backtest:
    """Fit on every point below the largest value of ``axis`` (default: the law's first input), predict the rest."""
    axis = axis or law.inputs[0]
    if axis not in inputs:
        raise ScalingDataError(f"backtest axis {axis!r} is not one of the inputs {sorted(inputs)}")
    scale = np.asarray(inputs[axis], dtype=float)
    held = np.flatnonzero(scale >= scale.max() * (1 - 1e-9))
    train = np.setdiff1d(np.arange(len(scale)), held)
    loss = np.asarray(loss, dtype=float)
    sub = {name: np.asarray(v, dtype=float)[train] for name, v in inputs.items() if name in law.inputs}
    fitted = fit(law, loss[train], **sub)
    at = {name: np.asarray(inputs[name], dtype=float)[held] for name in law.inputs}
    return Backtest(axis, held, loss[held], np.atleast_1d(fitted.predict(**at)), fitted)
