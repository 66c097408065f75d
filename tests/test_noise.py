"""The seed-noise model: a variance that follows compute, and how many dof it is worth at each size."""

import math

import numpy as np
import pytest

from pytest_scaling.fitting.noise import fit_seed_noise, pooled_noise

COMPUTE = np.logspace(9, 12, 5)


def _losses(rng, noise, seeds):
    return [(3.0 * np.exp(rng.normal(0, s, seeds))).tolist() for s in noise]


def test_small_end_noise_is_raised_and_the_large_end_never_below_the_pooled_figure():
    noise = 0.01 * (COMPUTE / COMPUTE[0]) ** -0.3
    losses = _losses(np.random.default_rng(0), noise, 200)
    model = fit_seed_noise(COMPUTE, losses)
    pooled, _ = pooled_noise(losses)
    assert model.by_compute and model.dof == 5 * 199 - 1
    np.testing.assert_allclose(model.at(COMPUTE[:2]), noise[:2], rtol=0.1)  # the line, above the pooled figure
    assert model.at(COMPUTE[0]) > 1.5 * pooled
    np.testing.assert_allclose(model.at(COMPUTE[3:]), pooled, rtol=1e-9)  # never below it


def test_one_figure_matches_the_pooled_noise_with_too_few_sizes():
    losses = _losses(np.random.default_rng(1), [0.004, 0.004], 3)
    model = fit_seed_noise(COMPUTE[:2], losses)
    pooled, dof = pooled_noise(losses)
    assert not model.by_compute and model.dof == dof == 4
    assert float(model.at(1e10)) == pytest.approx(pooled, rel=1e-9)
    assert np.all(model.dof_at(COMPUTE) == 4)


def test_dof_fall_towards_the_end_of_the_line():
    model = fit_seed_noise(COMPUTE, _losses(np.random.default_rng(2), [0.02, 0.008, 0.004, 0.002, 0.001], 2))
    assert model.b < 0 and model.dof == 4  # 5 sizes x 1 dof, one spent on the slope
    dof = model.dof_at(np.logspace(7, 13, 13))
    assert dof[-1] == 5  # the pooled figure's dof where it applies
    on_line = dof < 5
    assert on_line[0] and np.all(np.diff(dof[on_line]) >= 0)  # fewer dof the further from the seeds' middle
    assert dof.min() >= 1


def test_one_seed_per_size_fits_nothing_and_diverged_runs_do_not_count():
    assert fit_seed_noise(COMPUTE, [[3.0]] * 5).dof == 0
    model = fit_seed_noise(COMPUTE[:2], [[3.0, math.inf], [2.9, 2.95]])
    assert model.dof == 1 and not model.by_compute
