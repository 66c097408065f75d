"""Compute-optimal allocation (Approach 3) and isoFLOP profiles (Approach 2)."""

import numpy as np
import pytest

from pytest_scaling.errors import ScalingDataError, ScalingDesignWarning
from pytest_scaling.fitting.allocation import isoflop, optimal_allocation
from pytest_scaling.fitting.fit import bootstrap
from pytest_scaling.fitting.laws import ChinchillaLaw

HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def test_allocation_formulas():
    out = optimal_allocation(HOFFMANN, C=5.76e23)
    assert out["a"] == pytest.approx(0.28 / 0.62)
    assert out["b"] == pytest.approx(0.34 / 0.62)
    G = (0.34 * 406.4 / (0.28 * 410.7)) ** (1 / 0.62)
    assert out["G"] == pytest.approx(G)
    assert out["N_opt"] == pytest.approx(G * (5.76e23 / 6) ** (0.28 / 0.62))
    assert 6 * out["N_opt"] * out["D_opt"] == pytest.approx(5.76e23)
    assert out["tokens_per_param"] == pytest.approx(out["D_opt"] / out["N_opt"])


def test_allocation_is_the_minimum_of_the_law_at_fixed_compute():
    C = 1e21
    N = np.logspace(7, 11, 4001)
    L = ChinchillaLaw().predict(HOFFMANN, N=N, D=C / (6 * N))
    assert optimal_allocation(HOFFMANN, C)["N_opt"] == pytest.approx(N[np.argmin(L)], rel=0.01)


def test_allocation_with_bootstrap_intervals(chinchilla_fit):
    boot = bootstrap(chinchilla_fit, 100, seed=1)
    lo, hi = boot.interval(lambda p: optimal_allocation(p, 1e24)["tokens_per_param"])
    point = optimal_allocation(chinchilla_fit.params, 1e24)["tokens_per_param"]
    assert lo < point < hi


def _isoflop_data(rng, budgets=(1e18, 1e19, 1e20, 1e21), noise=0.0):
    N_all, C_all = [], []
    for C in budgets:
        n_star = optimal_allocation(HOFFMANN, C)["N_opt"]
        N = n_star * np.logspace(-1, 1, 9)
        N_all.append(N)
        C_all.append(np.full(9, C) * (1 + rng.uniform(-0.01, 0.01, 9)))
    N, C = np.concatenate(N_all), np.concatenate(C_all)
    L = ChinchillaLaw().predict(HOFFMANN, N=N, D=C / (6 * N)) * np.exp(rng.normal(0, noise, N.shape))
    return N, C, L


@pytest.mark.parametrize("method", ["parabola", "profile"])
def test_isoflop_recovers_the_allocation_exponent(method, rng):
    N, C, L = _isoflop_data(rng)
    result = isoflop(N, C, L, method=method)
    assert len(result.budgets) == 4 and result.interior.all()
    assert result.exponent == pytest.approx(0.28 / 0.62, abs=0.03)


def test_profile_is_less_biased_than_the_parabola(rng):
    N, C, L = _isoflop_data(rng)
    truth = np.array([optimal_allocation(HOFFMANN, c)["N_opt"] for c in isoflop(N, C, L).budgets])
    err = {m: np.abs(np.log(isoflop(N, C, L, method=m).n_opt / truth)).mean() for m in ("parabola", "profile")}
    assert err["profile"] < err["parabola"]


def test_isoflop_warns_when_a_minimum_is_not_interior(rng):
    N, C, L = _isoflop_data(rng)
    edge = np.isclose(C, 1e21, rtol=0.02) & (N < optimal_allocation(HOFFMANN, 1e21)["N_opt"] * 1.05)
    with pytest.warns(ScalingDesignWarning, match="not inside"):
        result = isoflop(N[~edge], C[~edge], L[~edge])
    assert not result.interior[-1]


def test_isoflop_needs_two_budgets(rng):
    N, C, L = _isoflop_data(rng, budgets=(1e19,))
    with pytest.raises(ScalingDataError, match="at least 2 compute budgets"):
        isoflop(N, C, L)
    with pytest.raises(ScalingDataError, match="method"):
        isoflop(N, C, L, method="cubic")
