"""Fit-speed benchmark: the project's vectorised multi-start fit against a plain scipy loop.

Run: ``python benchmarks/scripts/bench_fit.py [--slice K] [--repeats R]``. Prints figures; asserts nothing.
Data: Epoch AI's digitised Chinchilla points in ``../shared/data/`` (5 highest-loss rows dropped).
The plain loop is what Epoch AI's notebook does: scipy L-BFGS-B with an analytic gradient from
every one of Hoffmann's 4,500 starts; it is timed on every K-th start and scaled to the grid.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

from pytest_scaling.fitting.fit import bootstrap, fit_chinchilla
from pytest_scaling.fitting.laws import ChinchillaLaw
from pytest_scaling.fitting.points import drop_highest, read_columns

CSV = Path(__file__).resolve().parents[3] / "shared" / "data" / "svg_extracted_data.csv"


def plain_objective(theta, ln, ld, logy, delta=1e-3):
    """Epoch AI's objective for one start: summed Huber of log L - LSE(a - alpha lnN, b - beta lnD, e)."""
    a, b, e, alpha, beta = theta
    terms = np.stack([a - alpha * ln, b - beta * ld, np.full_like(ln, e)])
    pred = logsumexp(terms, axis=0)
    r = logy - pred
    w = np.exp(terms - pred)
    psi = np.clip(r, -delta, delta)
    grad = -np.array([psi @ w[0], psi @ w[1], psi @ w[2], -(psi * ln) @ w[0], -(psi * ld) @ w[1]])
    return huber(delta, r).sum(), grad


def plain_loop(starts, ln, ld, logy):
    best = (np.inf, None)
    for theta0 in starts:
        res = minimize(plain_objective, theta0, args=(ln, ld, logy), jac=True, method="L-BFGS-B")
        if res.fun < best[0]:
            best = (res.fun, res.x)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice", type=int, default=30, help="time every K-th start of the plain loop")
    parser.add_argument("--repeats", type=int, default=3, help="best of R timings of the project's fit")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    if not CSV.exists():
        print(f"skipped: {CSV} not found (the shared Chinchilla data sits beside the project)")
        return 0
    cols = drop_highest(read_columns(CSV, ["Model Size", "Training FLOP", "loss"]), "loss", 5)
    N = cols["Model Size"]
    D, L = cols["Training FLOP"] / (6 * N), cols["loss"]
    grid = ChinchillaLaw().init_grid()

    sub = grid[:: args.slice]
    t0 = time.perf_counter()
    plain_f, plain_theta = plain_loop(sub, np.log(N), np.log(D), np.log(L))
    plain_slice = time.perf_counter() - t0
    plain_full = plain_slice * len(grid) / len(sub)

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fitted = fit_chinchilla(N, D, L)
        times.append(time.perf_counter() - t0)
    ours = min(times)
    t0 = time.perf_counter()
    bootstrap(fitted, args.bootstrap, seed=0)
    boot = time.perf_counter() - t0

    p = fitted.params
    print(f"points: {fitted.n_points}; starts: {fitted.n_starts}")
    print(f"plain scipy L-BFGS-B loop: {plain_slice:.2f} s for {len(sub)} starts -> {plain_full:.1f} s for "
          f"{len(grid)} (scaled); its best objective on the slice: {plain_f:.10g}")
    print(f"pytest-scaling fit: {ours:.3f} s (best of {args.repeats}: {', '.join(f'{t:.3f}' for t in times)}); "
          f"objective {fitted.objective:.10g}; {fitted.converged_fraction:.1%} of starts reached the optimum")
    print(f"speed-up over the plain loop: {plain_full / ours:.0f}x")
    print(f"bootstrap: {args.bootstrap} refits in {boot:.2f} s")
    print("fit: " + ", ".join(f"{k}={v:.5g}" for k, v in p.items()))
    print("Epoch AI (exact Hoffmann): E=1.8172, A=477.8, B=2143.9, alpha=0.3473, beta=0.3672")
    same = plain_theta is not None and plain_f <= fitted.objective * (1 + 1e-3)
    print(f"plain slice reached the same optimum: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
