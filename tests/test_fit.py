"""The log-Huber multi-start fit: golden values, recovery of known laws, bootstrap, backtest, errors."""

import warnings

import numpy as np
import pytest

from pytest_scaling.errors import ScalingDataError, ScalingDesignWarning
from pytest_scaling.fitting.fit import REACHED_RTOL, backtest, bootstrap, fit, fit_chinchilla, fit_kaplan, fit_power
from pytest_scaling.fitting.laws import ChinchillaLaw, KaplanLaw, PowerLaw


def test_golden_epoch_chinchilla_replication(chinchilla_fit):
    """Epoch AI's fit of Hoffmann et al.'s Figure 4 data (Besiroglu et al. 2024, exact-Hoffmann estimator)."""
    p = chinchilla_fit.params
    assert chinchilla_fit.n_points == 240
    assert p["E"] == pytest.approx(1.8172, rel=0.01)
    assert p["alpha"] == pytest.approx(0.3473, rel=0.01)
    assert p["beta"] == pytest.approx(0.3672, rel=0.01)
    assert p["A"] == pytest.approx(477.8, rel=0.03)
    assert p["B"] == pytest.approx(2143.9, rel=0.03)
    assert 0 < chinchilla_fit.converged_fraction <= 1
    assert chinchilla_fit.n_starts == 4500


def test_best_start_is_a_true_minimum(chinchilla_fit):
    """No perturbation of the reported optimum lowers the summed Huber objective."""
    from pytest_scaling.fitting.solver import huber_objective

    law, X, y = chinchilla_fit.law, chinchilla_fit.X, chinchilla_fit.logy
    rng = np.random.default_rng(0)
    probes = chinchilla_fit.theta + rng.normal(0, 1e-3, (200, 5))
    f, _, _ = huber_objective(law, probes, X, y, np.ones((1, len(y))), 1e-3)
    assert f.min() >= chinchilla_fit.objective * (1 - 1e-9)


def _chinchilla_design(rng, n_sizes=8, n_ratios=7):
    N = np.repeat(np.logspace(7, 10, n_sizes), n_ratios)
    D = N * np.tile(np.logspace(0.3, 2.5, n_ratios), n_sizes)  # D/N from 2 to 300
    return N, D


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_recovers_random_chinchilla_truths_under_noise(seed):
    rng = np.random.default_rng(seed)
    truth = {"E": rng.uniform(1.0, 2.5), "A": rng.uniform(100, 1000), "B": rng.uniform(200, 3000),
             "alpha": rng.uniform(0.25, 0.45), "beta": rng.uniform(0.25, 0.45)}
    N, D = _chinchilla_design(rng)
    L = ChinchillaLaw().predict(truth, N=N, D=D) * np.exp(rng.normal(0, 0.003, N.shape))
    got = fit_chinchilla(N, D, L)
    assert got.params["E"] == pytest.approx(truth["E"], rel=0.05)
    assert got.params["alpha"] == pytest.approx(truth["alpha"], abs=0.04)
    assert got.params["beta"] == pytest.approx(truth["beta"], abs=0.04)
    Nq, Dq = np.array([3e10, 1e11]), np.array([6e11, 2e12])  # beyond the data
    np.testing.assert_allclose(got.predict(N=Nq, D=Dq), ChinchillaLaw().predict(truth, N=Nq, D=Dq), rtol=0.02)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_recovers_power_laws(seed):
    rng = np.random.default_rng(seed)
    truth = {"E": rng.uniform(0.5, 3.0), "A": rng.uniform(5, 500), "alpha": rng.uniform(0.1, 0.6)}
    x = np.logspace(4, 9, 25)
    L = PowerLaw().predict(truth, x=x) * np.exp(rng.normal(0, 0.002, x.shape))
    got = fit_power(x, L)
    assert got.params["alpha"] == pytest.approx(truth["alpha"], rel=0.1)
    assert got.params["E"] == pytest.approx(truth["E"], rel=0.03)


def test_pure_power_law_is_exact_without_noise():
    x = np.logspace(5, 12, 12)
    L = (8.8e13 / x) ** 0.076
    got = fit_power(x, L, offset=False)
    assert got.params["alpha"] == pytest.approx(0.076, rel=1e-6)
    assert got.params["x_c"] == pytest.approx(8.8e13, rel=1e-4)
    assert got.converged_fraction > 0.5


def test_recovers_kaplan_joint_law():
    rng = np.random.default_rng(7)
    truth = {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}
    N, D = _chinchilla_design(rng)
    L = KaplanLaw().predict(truth, N=N, D=D) * np.exp(rng.normal(0, 0.001, N.shape))
    got = fit_kaplan(N, D, L)
    np.testing.assert_allclose(got.predict(N=N, D=D), KaplanLaw().predict(truth, N=N, D=D), rtol=0.005)
    assert got.params["alpha_D"] == pytest.approx(0.095, rel=0.1)


def test_summed_objective_and_fraction_are_reported(chinchilla_fit):
    d = chinchilla_fit.to_dict()
    assert d["law"] == "chinchilla" and set(d["params"]) == {"E", "A", "B", "alpha", "beta"}
    assert d["objective"] == pytest.approx(0.0010183, rel=1e-3)  # Huber summed, not averaged
    assert REACHED_RTOL < 0.01


def test_bootstrap_is_deterministic_and_brackets_the_estimate(chinchilla_fit):
    first = bootstrap(chinchilla_fit, 200, seed=7).ci()
    second = bootstrap(chinchilla_fit, 200, seed=7).ci()
    assert first == second
    other = bootstrap(chinchilla_fit, 200, seed=8).ci()
    assert other != first
    for name, (lo, hi) in first.items():
        assert lo < chinchilla_fit.params[name] < hi, name
    # Epoch AI's 95% bootstrap interval for alpha is (0.317, 0.373): same order of width
    lo, hi = first["alpha"]
    assert 0.02 < hi - lo < 0.1


def test_bootstrap_intervals_for_derived_quantities_and_predictions(chinchilla_fit):
    boot = bootstrap(chinchilla_fit, 100, seed=0)
    lo, hi = boot.interval(lambda p: p["alpha"] / (p["alpha"] + p["beta"]))
    assert lo < hi
    plo, phi = boot.predict_interval(N=np.array([1e9, 7e10]), D=np.array([2e10, 1.4e12]))
    pred = chinchilla_fit.predict(N=np.array([1e9, 7e10]), D=np.array([2e10, 1.4e12]))
    assert np.all(plo <= pred) and np.all(pred <= phi)


def test_bootstrap_rejects_too_few_resamples(chinchilla_fit):
    with pytest.raises(ScalingDataError, match="at least 2"):
        bootstrap(chinchilla_fit, 1)


def test_backtest_predicts_the_largest_scale():
    rng = np.random.default_rng(11)
    truth = {"E": 1.7, "A": 400.0, "B": 1500.0, "alpha": 0.34, "beta": 0.3}
    N, D = _chinchilla_design(rng)
    L = ChinchillaLaw().predict(truth, N=N, D=D) * np.exp(rng.normal(0, 0.002, N.shape))
    result = backtest(ChinchillaLaw(), L, N=N, D=D)
    assert np.all(N[result.held_out] == N.max())
    assert len(result.held_out) == 7
    assert result.mean_abs_relative_error < 0.02


def test_backtest_on_the_chinchilla_data(chinchilla_points):
    N, D, L = chinchilla_points
    result = backtest(ChinchillaLaw(), L, N=N, D=D)
    assert result.mean_abs_relative_error < 0.1
    assert result.fit.n_points == 240 - len(result.held_out)


def test_design_warning_for_constant_tokens_per_parameter():
    N = np.logspace(6, 9, 10)
    with pytest.warns(ScalingDesignWarning, match="alpha and beta cannot be told apart"):
        got = fit_chinchilla(N, 20 * N, 1.8 + 300 * N**-0.3 + 900 * (20 * N) ** -0.3)
    assert got.warnings


def test_design_warning_for_too_few_levels():
    x = np.array([1e6, 1e6, 1e7, 1e7])
    with pytest.warns(ScalingDesignWarning, match="2 distinct level"):
        fit_power(x, np.array([3.0, 3.01, 2.5, 2.49]))


def test_good_design_has_no_warning(rng):
    N, D = _chinchilla_design(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ScalingDesignWarning)
        fit_chinchilla(N, D, ChinchillaLaw().predict({"E": 2, "A": 400, "B": 400, "alpha": .3, "beta": .3}, N=N, D=D))


@pytest.mark.parametrize(
    "N, loss, match",
    [
        ([1e6, 1e7, np.nan, 1e9], [3, 2.5, 2.2, 2.0], "column 'N'.*row 2"),
        ([1e6, 1e7, 1e8, 1e9], [3, 2.5, np.inf, 2.0], "column 'loss'.*row 2"),
        ([1e6, -1e7, 1e8, 1e9], [3, 2.5, 2.2, 2.0], "non-positive value at row 1"),
        ([1e6, 1e7, 1e8, 1e9], [3, 2.5, 0.0, 2.0], "row 2"),
        ([1e6, 1e7], [3, 2.5], "5 parameters but only 2 points"),
        ([1e6, 1e7, 1e8], [3, 2.5], "different lengths"),
        (["a", "b", "c"], [3, 2.5, 2.0], "not numeric"),
    ],
)
def test_bad_input_is_a_one_line_error(N, loss, match):
    with pytest.raises(ScalingDataError, match=match) as info:
        fit(ChinchillaLaw(), loss, N=N, D=[1e9] * len(N))
    assert "\n" not in str(info.value)


def test_missing_input_is_named():
    with pytest.raises(ScalingDataError, match="missing D"):
        fit(ChinchillaLaw(), [1, 2, 3], N=[1, 2, 3])
