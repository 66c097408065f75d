"""A vectorised robust least-squares solver: many starts (or bootstrap replicas) in one numpy pass.

Minimises ``sum_i w_i * huber_delta(log y_i - log f(x_i; theta))`` for every row of ``theta`` at
once with Levenberg-Marquardt steps on the iteratively reweighted (half-quadratic) model of the
Huber loss: each step solves ``(J' Om J + lam * diag) s = -grad`` with Om = w * min(1, delta/|r|),
which majorises the Huber loss, so an accepted step always lowers the true objective. Each row
keeps its own damping and stops when its objective no longer falls; finished rows leave the
working set. For log-sum-exp laws (``LSELaw``) the normal equations are BLAS products of the
softmax weights with per-point features, which is several times faster than the dense Jacobian.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber
from threadpoolctl import threadpool_limits

from .laws import Law, LSELaw, lse_terms


@dataclass
class SolveResult:
    theta: np.ndarray  # [S, k]
    objective: np.ndarray  # [S]
    iterations: int


def _plan(law: Law, X: np.ndarray) -> list | None:
    """For an LSELaw, what its normal equations need from X, computed once per solve: per term its index,
    parameters and features phi [P, n] (d log f = w_t * phi), and per pair of terms the products of their
    features and the H indices they fill. None for other laws (they use the dense Jacobian)."""
    if not isinstance(law, LSELaw):
        return None
    terms = []
    for t, (off, slope, col) in enumerate(law.terms):
        params, cols = [off], [np.ones(len(X), X.dtype)]
        if slope is not None:
            params.append(slope)
            cols.append(-X[:, col])
        terms.append((t, params, np.stack(cols, axis=1)))
    plan = []
    for i, (t, params, phi) in enumerate(terms):
        pairs = [(u, np.ix_(params, params_u), np.ix_(params_u, params), (len(params), len(params_u)),
                  (phi[:, :, None] * phi_u[:, None, :]).reshape(len(X), -1))
                 for u, params_u, phi_u in terms[i:]]  # fmt: skip
        plan.append((t, params, phi, pairs))
    return plan


def _evaluate(law: Law, theta: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    if isinstance(law, LSELaw):
        return lse_terms(theta, X, law.terms)
    return law.log_predict(theta, X)


def _normal_equations(plan, parts, q, omega, k):
    """Gradient J'q [S, k] and Gauss-Newton matrix J' Om J [S, k, k] from the evaluation's parts."""
    S = q.shape[0]
    g = np.empty((S, k))
    H = np.empty((S, k, k))
    if plan is not None:
        for t, params, phi, pairs in plan:
            g[:, params] = (parts[t] * q) @ phi
            wt_om = parts[t] * omega
            for u, upper, lower, shape, prod in pairs:
                block = ((wt_om * parts[u]) @ prod).reshape(S, *shape)
                H[:, upper[0], upper[1]] = block
                H[:, lower[0], lower[1]] = block.transpose(0, 2, 1)
        return g, H
    for i in range(k):
        g[:, i] = np.einsum("sp,sp->s", parts[i], q)
        om_i = parts[i] * omega
        for j in range(i, k):
            H[:, i, j] = H[:, j, i] = np.einsum("sp,sp->s", om_i, parts[j])
    return g, H


def huber_objective(law: Law, theta, X, logy, w, delta):
    """Objective [S], residuals [S, P] and the evaluation's parts (for the normal equations).

    ``w``: point weights ([P] or [S, P]), or None for unit weights."""
    logp, parts = _evaluate(law, theta, X)
    r = np.subtract(logy[None, :], logp, out=logp)
    f = np.sum(huber(delta, r) if w is None else w * huber(delta, r), axis=1)
    f[~law.valid(theta) | ~np.isfinite(f)] = np.inf
    return f, r, parts


def solve(
    law: Law,
    theta0: np.ndarray,
    X: np.ndarray,
    logy: np.ndarray,
    *,
    delta: float = 1e-3,
    weights: np.ndarray | None = None,
    max_iter: int = 400,
    rtol: float = 1e-6,
    window: int = 10,
    dtype: type = np.float64,
) -> SolveResult:
    """Run batched Levenberg-Marquardt from every row of ``theta0``.

    ``weights`` is ``[P]`` (shared) or ``[S, P]`` (per row: bootstrap multiplicities). A row stops
    when its objective fell by less than ``rtol`` (relative) over the last ``window`` iterations.
    ``dtype=np.float32`` halves the memory traffic of the [S, P] passes (the k x k solves stay float64);
    the returned objectives are then float32-accurate.
    """
    theta = np.array(theta0, dtype=float)
    S, k = theta.shape
    W_all = None if weights is None else np.broadcast_to(np.asarray(weights, dtype), (S, len(logy)))
    X, logy = np.asarray(X, dtype), np.asarray(logy, dtype)
    # Its matrix products are small and many: BLAS threads only add overhead (2x slower measured here).
    with np.errstate(all="ignore"), threadpool_limits(limits=1, user_api="blas"):
        return _solve(law, theta, X, logy, W_all, delta, max_iter, rtol, window, dtype)


def _solve(law, theta, X, logy, W_all, delta, max_iter, rtol, window, dtype) -> SolveResult:
    S, k = theta.shape
    delta = dtype(delta)
    f_all, r, parts = huber_objective(law, theta.astype(dtype), X, logy, W_all, delta)
    f_all = f_all.astype(float)
    plan = _plan(law, X)
    # Working set, compacted as rows finish: idx maps rows back to the caller's order.
    idx = np.flatnonzero(np.isfinite(f_all))
    th, f, r = theta[idx], f_all[idx], r[idx]
    W = None if W_all is None else W_all[idx]
    parts = [p[idx] for p in parts]
    lam = np.full(len(idx), 1e-3)
    history = np.tile(f[:, None], (1, window))
    running = np.ones(len(idx), bool)
    eye = np.eye(k)
    it = 0
    while running.any() and it < max_iter:
        it += 1
        if running.mean() < 0.8:  # drop finished rows (one copy) once enough have left
            done = ~running
            theta[idx[done]], f_all[idx[done]] = th[done], f[done]
            idx, th, f, r = idx[running], th[running], f[running], r[running]
            W = None if W is None else W[running]
            parts = [p[running] for p in parts]
            lam, history, running = lam[running], history[running], running[running]
        psi = np.clip(r, -delta, delta)  # huber'(r)
        omega = np.abs(r)
        np.maximum(omega, delta, out=omega)
        np.divide(delta, omega, out=omega)  # min(1, delta / |r|)
        if W is not None:
            psi *= W
            omega *= W
        g, H = _normal_equations(plan, parts, psi, omega, k)
        diag = np.diagonal(H, axis1=1, axis2=2)
        damp = lam[:, None] * (diag + 1e-12 * diag.sum(1, keepdims=True) + 1e-30)
        step = np.linalg.solve(H + damp[:, :, None] * eye, g[..., None])[..., 0]
        trial = th + step
        f_new, r_new, parts_new = huber_objective(law, trial.astype(dtype), X, logy, W, delta)
        better = (f_new < f) & running
        th[better], f[better] = trial[better], f_new[better]
        kept = ~better  # usually the fewer rows: copy them into the trial's arrays, which become current
        if kept.any():
            r_new[kept] = r[kept]
            for p, p_new in zip(parts, parts_new, strict=False):
                p_new[kept] = p[kept]
        r, parts = r_new, parts_new
        lam = np.where(better, np.maximum(lam / 5.0, 1e-9), np.minimum(lam * 8.0, 1e13))
        slot = it % window
        stalled = (history[:, slot] - f) <= rtol * np.abs(f)
        history[:, slot] = f
        running &= ~((stalled & (it >= window)) | (lam > 1e12))
    theta[idx], f_all[idx] = th, f
    return SolveResult(theta=theta, objective=f_all, iterations=it)


def polish(law: Law, theta: np.ndarray, X: np.ndarray, logy: np.ndarray, *, delta: float = 1e-3,
           weights: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Refine one parameter vector with scipy's L-BFGS-B on the exact objective and gradient."""
    w = np.ones(len(logy)) if weights is None else np.asarray(weights, float)

    def fun(t):
        f, r, _ = huber_objective(law, t[None, :], X, logy, w[None, :], delta)
        if not np.isfinite(f[0]):
            return np.inf, np.zeros_like(t)
        _, J = law.log_predict(t[None, :], X)
        q = w * np.clip(r[0], -delta, delta)
        return f[0], -np.array([Ji[0] @ q for Ji in J])

    res = minimize(fun, theta, jac=True, method="L-BFGS-B", options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
    f0 = fun(theta)[0]
    return (res.x, float(res.fun)) if res.fun <= f0 else (np.array(theta, float), float(f0))
