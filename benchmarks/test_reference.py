"""The reference GPT's scaling curve: recorded as the committed baseline from eight seeds a size, re-trained
with two (what a PR trains) and compared with it, backtested, checked against the language's known loss floor,
and held to the shape of a real scaling law (monotone, low seed noise)."""

import numpy as np
import pytest
from suite import BASELINE_SEEDS, MAX_BACKTEST_ERROR, MAX_SEED_NOISE, REFERENCE_SEEDS, SIZES, SWEEP, law_figures

from pytest_scaling import assert_on_curve, get_source
from pytest_scaling.fitting.laws import CURVE_LAW
from pytest_scaling.gate.baseline import fit_curve


@pytest.mark.scaling
def test_reference_baseline_is_recorded_from_eight_seeds(scaling_sweep, pytestconfig):
    if not pytestconfig.getoption("scaling_update"):
        pytest.skip(f"records baseline 'reference' from {len(BASELINE_SEEDS)} seeds a size under --scaling-update")
    result = scaling_sweep("gpt", SIZES, seeds=BASELINE_SEEDS, **SWEEP)
    assert_on_curve(result, baseline="reference")


@pytest.mark.scaling
def test_reference_is_on_its_committed_curve(scaling_sweep):
    result = scaling_sweep("gpt", SIZES, seeds=REFERENCE_SEEDS, **SWEEP)
    assert len(result.points) == len(SIZES)
    assert result.params.max() / result.params.min() >= 30
    assert_on_curve(result, baseline="reference")


@pytest.mark.scaling
def test_loss_falls_with_every_size_and_seeds_agree(scaling_sweep):
    result = scaling_sweep("gpt", SIZES, seeds=REFERENCE_SEEDS, **SWEEP)
    law = law_figures(result)
    print(f"\n{law.text(result.loss)}")
    assert law.falls
    assert law.noise <= MAX_SEED_NOISE


@pytest.mark.scaling
def test_backtest_predicts_the_largest_size(scaling_sweep):
    result = scaling_sweep("gpt", SIZES, seeds=REFERENCE_SEEDS, **SWEEP)
    law = law_figures(result)
    print(f"\nbacktest: fit on {len(SIZES) - 1} sizes; {law.text(result.loss)}")
    assert abs(law.error) <= MAX_BACKTEST_ERROR
    assert law.lo <= law.observed <= law.hi


@pytest.mark.scaling
def test_fitted_floor_is_not_below_the_true_entropy(scaling_sweep):
    result = scaling_sweep("gpt", SIZES, seeds=REFERENCE_SEEDS, **SWEEP)
    curve = fit_curve(result.compute, [p.losses for p in result.points])
    floor = get_source(SWEEP["data"]).floor_nats_per_token(result.points[0].spec.seq_len)
    assert result.data["entropy_nats_per_token"] == pytest.approx(floor, abs=1e-4)  # recorded with the baseline
    E, (lo, hi) = curve.params["E"], np.percentile(CURVE_LAW.params(curve.samples)["E"], [2.5, 97.5])
    print(f"\nfitted E = {E:.4f} nats/token (95% CI {lo:.4f}..{hi:.4f}); loss floor of the language "
          f"{floor:.4f}; best loss measured {result.loss.min():.4f}")
    assert result.loss.min() > floor  # no model beats the entropy of its data
    assert hi >= floor  # the fitted asymptote is not confidently below what is achievable
