"""Compute-optimal allocation from a Chinchilla fit (Approach 3) and isoFLOP profiles (Approach 2)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

from ..errors import ScalingDataError, ScalingDesignWarning


def optimal_allocation(params: dict, C=None) -> dict:
    """Hoffmann et al.'s compute-optimal split of C = 6 N D under L = E + A/N^alpha + B/D^beta.

    G = (alpha A / (beta B))^(1/(alpha+beta)), a = beta/(alpha+beta), b = alpha/(alpha+beta),
    N_opt = G (C/6)^a, D_opt = (C/6)^b / G. Parameters may be arrays (bootstrap replicas).
    """
    A, B = np.asarray(params["A"], float), np.asarray(params["B"], float)
    alpha, beta = np.asarray(params["alpha"], float), np.asarray(params["beta"], float)
    total = alpha + beta
    out = {"a": beta / total, "b": alpha / total, "G": (alpha * A / (beta * B)) ** (1 / total)}
    if C is not None:
        c6 = np.asarray(C, float) / 6.0
        out["N_opt"] = out["G"] * c6 ** out["a"]
        out["D_opt"] = c6 ** out["b"] / out["G"]
        out["tokens_per_param"] = out["D_opt"] / out["N_opt"]
    return out


@dataclass
class IsoFlop:
    """Loss-minimising model size per compute budget, and the power law N_opt = k * C^a through them."""

    method: str
    budgets: np.ndarray
    n_opt: np.ndarray
    interior: np.ndarray  # False where the minimum sits at (or beyond) the edge of the sampled sizes
    exponent: float
    coefficient: float
    warnings: list[str] = field(default_factory=list)

    def predict(self, C):
        return self.coefficient * np.asarray(C, float) ** self.exponent


def _group_budgets(C: np.ndarray, rtol: float) -> np.ndarray:
    """Label points whose compute lies within ``rtol`` (relative) of the previous one as one budget."""
    order = np.argsort(C)
    labels = np.empty(len(C), int)
    label, prev = 0, C[order[0]]
    for i in order:
        if C[i] > prev * (1 + rtol):
            label += 1
        labels[i] = label
        prev = C[i]
    return labels


def _parabola_min(u: np.ndarray, loss: np.ndarray) -> float:
    c2, c1, _ = np.polyfit(u, loss, 2)
    return -c1 / (2 * c2) if c2 > 0 else np.nan


def _profile_fit(groups: list[tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> np.ndarray:
    """Per budget L(N) = c0 + c1 N^-alpha + c2 N^beta (the shape Chinchilla implies at fixed C), with
    (alpha, beta) shared across budgets (grid search) and c >= 0 by NNLS; returns log N* per budget."""
    best, best_sse = None, np.inf
    for alpha, beta in grid:
        sse, mins = 0.0, []
        for u, loss in groups:
            design = np.stack([np.ones_like(u), np.exp(-alpha * u), np.exp(beta * u)], axis=1)
            scale = design.max(axis=0)
            coef, resid = nnls(design / scale, loss)
            coef = coef / scale
            sse += resid**2
            c1, c2 = coef[1], coef[2]
            mins.append(np.log(alpha * c1 / (beta * c2)) / (alpha + beta) if c1 > 0 and c2 > 0 else np.nan)
        if sse < best_sse:
            best, best_sse = np.array(mins), sse
    return best


def isoflop(N, C, loss, *, method: str = "parabola", budget_rtol: float = 0.05) -> IsoFlop:
    """Hoffmann et al.'s Approach 2: per compute budget the loss-minimising N, then N_opt(C) = k C^a.

    ``method="parabola"`` fits loss against log N with a parabola (Hoffmann); ``"profile"`` fits the
    asymmetric profile E + A N^-alpha + B' N^beta that a Chinchilla law implies at fixed C, which is
    less biased when the valley is skewed. Points whose compute agrees within ``budget_rtol`` form one
    budget. A budget whose minimum is not inside its sampled sizes is flagged, warned about, and left
    out of the power-law fit.
    """
    if method not in ("parabola", "profile"):
        raise ScalingDataError(f"isoflop method must be 'parabola' or 'profile', got {method!r}")
    N, C, loss = (np.asarray(v, float) for v in (N, C, loss))
    labels = _group_budgets(C, budget_rtol)
    groups, budgets = [], []
    for label in np.unique(labels):
        sel = labels == label
        if sel.sum() >= 3:
            groups.append((np.log(N[sel]), loss[sel]))
            budgets.append(float(np.exp(np.mean(np.log(C[sel])))))
    if len(groups) < 2:
        raise ScalingDataError("isoFLOP analysis needs at least 2 compute budgets with 3 or more sizes each")
    if method == "parabola":
        log_n = np.array([_parabola_min(u, loss) for u, loss in groups])
    else:
        grid = np.array([(a, b) for a in np.linspace(0.05, 1.5, 30) for b in np.linspace(0.05, 1.5, 30)])
        log_n = _profile_fit(groups, grid)
    lo = np.array([u.min() for u, _ in groups])
    hi = np.array([u.max() for u, _ in groups])
    interior = np.isfinite(log_n) & (log_n > lo) & (log_n < hi)
    issues = []
    for budget, ok in zip(budgets, interior, strict=False):
        if not ok:
            issues.append(f"isoFLOP budget C={budget:.3g}: the loss minimum is not inside the sampled model sizes")
    for message in issues:
        warnings.warn(message, ScalingDesignWarning, stacklevel=2)
    budgets = np.array(budgets)
    if interior.sum() < 2:
        raise ScalingDataError("fewer than 2 isoFLOP budgets have an interior minimum; sample wider size ranges")
    slope, intercept = np.polyfit(np.log(budgets[interior]), log_n[interior], 1)
    return IsoFlop(method, budgets, np.exp(log_n), interior, float(slope), float(np.exp(intercept)), issues)
