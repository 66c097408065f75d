"""The reference GPT's scaling curve: recorded as the committed baseline, backtested, and checked
against the synthetic language's known entropy floor."""

import numpy as np
import pytest
from suite import REFERENCE_SEEDS, SIZES, SWEEP

from pytest_scaling import assert_on_curve, backtest, get_source
from pytest_scaling.baseline import CURVE_LAW, fit_curve


@pytest.mark.scaling
def test_reference_is_on_its_committed_curve(scaling_sweep):
    result = scaling_sweep("gpt", SIZES, seeds=REFERENCE_SEEDS, **SWEEP)
    assert len(result.points) == len(SIZES)
    assert result.params.max() / result.params.min() >= 20
    assert_on_curve(result, baseline="reference")


@pytest.mark.scaling
@pytest.mark.xfail(strict=True, reason="measured +7.1%: the synthetic language's copy skill emerges between 25k and "
                   "55k parameters, so the curve steepens past the fitted power law (open work, issue 5)")
def test_backtest_predicts_the_largest_size(scaling_sweep):
    result = scaling_sweep("gpt", SIZES, seeds=REFERENCE_SEEDS, **SWEEP)
    C = np.concatenate([[p.compute] * len(p.losses) for p in result.points])
    L = np.concatenate([p.losses for p in result.points])
    check = backtest(CURVE_LAW, L, C=C)
    observed, predicted = check.observed.mean(), check.predicted.mean()
    error = predicted / observed - 1
    print(f"\nbacktest: fit on {len(SIZES) - 1} sizes, largest size loss {observed:.4f}, "
          f"predicted {predicted:.4f}, error {100 * error:+.2f}% (goal <= 2%)")
    assert abs(error) <= 0.02


@pytest.mark.scaling
@pytest.mark.xfail(strict=True, reason="measured: the fitted E is ~0, below the source's 1.97 nats; the curve has not "
                   "started to flatten by 1e5 parameters (open work, issue 5)")
def test_fitted_floor_is_not_below_the_true_entropy(scaling_sweep):
    result = scaling_sweep("gpt", SIZES, seeds=REFERENCE_SEEDS, **SWEEP)
    curve = fit_curve(result.compute, [p.losses for p in result.points])
    floor = get_source(SWEEP["data"]).floor_nats_per_token(result.points[0].spec["seq_len"])
    E, (lo, hi) = curve.params["E"], np.percentile(CURVE_LAW.params(curve.samples)["E"], [2.5, 97.5])
    print(f"\nfitted E = {E:.4f} nats/token (95% CI {lo:.4f}..{hi:.4f}); true entropy of the source "
          f"{floor:.4f}; best loss measured {result.loss.min():.4f}")
    assert result.loss.min() > floor  # no model beats the entropy of its data
    assert hi >= floor  # the fitted asymptote is not confidently below what is achievable
