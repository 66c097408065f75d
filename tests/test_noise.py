"""The seed-noise model: a variance that follows compute, and how many dof it is worth at each size."""

import math

import numpy as np
import pytest

from pytest_scaling.baseline import pooled_noise
from pytest_scaling.noise import fit_seed_noise

COMPUTE = np.logspace(9, 12, 5)


def _losses(rng, noise, seeds):
    return [(3.0 * np.exp(rng.normal(0, s, seeds))).tolist() for s in noise]


def test_recovers_noise_that_falls_with_compute():
    noise = 0.01 * (COMPUTE / COMPUTE[0]) ** -0.3
    model = fit_seed_noise(COMPUTE, _losses(np.random.default_rng(0), noise, 200))
    assert model.by_compute and model.dof == 5 * 199 - 1
    np.testing.assert_allclose(model.at(COMPUTE), noise, rtol=0.1)


def test_one_figure_matches_the_pooled_noise_with_too_few_sizes():
    losses = _losses(np.random.default_rng(1), [0.004, 0.004], 3)
    model = fit_seed_noise(COMPUTE[:2], losses)
    pooled, dof = pooled_noise(losses)
    assert not model.by_compute and model.dof == dof == 4
    assert float(model.at(1e10)) == pytest.approx(pooled, rel=1e-9)
    assert np.all(model.dof_at(COMPUTE) == 4)


def test_dof_is_highest_mid_ladder_and_falls_beyond_it():
    model = fit_seed_noise(COMPUTE, _losses(np.random.default_rng(2), [0.01, 0.005, 0.003, 0.002, 0.001], 2))
    dof = model.dof_at(np.logspace(8, 13, 11))
    middle = int(np.argmax(dof))
    assert 0 < middle < 10 and dof.max() <= model.dof
    assert np.all(np.diff(dof[: middle + 1]) >= 0) and np.all(np.diff(dof[middle:]) <= 0)
    assert dof.min() >= 1


def test_one_seed_per_size_fits_nothing_and_diverged_runs_do_not_count():
    assert fit_seed_noise(COMPUTE, [[3.0]] * 5).dof == 0
    model = fit_seed_noise(COMPUTE[:2], [[3.0, math.inf], [2.9, 2.95]])
    assert model.dof == 1 and not model.by_compute
