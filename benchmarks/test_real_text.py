"""The second suite, on real text: the shipped ladder on ``pycode`` (CPython's standard library, frozen in the
package, BPE 512) at a quarter of the recipe's learning rate, against its own committed baseline
``pycode-reference``. Deselected by default (marker ``real_text``): run it with
``pytest --scaling benchmarks/ -m real_text``.

A second opinion on the law and on positions (RoPE is worth 1.28x compute here), not a gate for context bugs:
at these sizes models of code use no context past 8 tokens (a window of 8 is 2-3% *better* at the largest
sizes), and attention buys less loss than its FLOPs cost, so both pass here (docs/panel.md)."""

import pytest
from suite import MAX_BACKTEST_ERROR, MAX_SEED_NOISE, REAL_TEXT_SWEEP, REFERENCE_SEEDS, SIZES, law_figures
from variants import rope

from pytest_scaling import assert_on_curve, compute_multiplier

BASELINE = "pycode-reference"
pytestmark = [pytest.mark.scaling, pytest.mark.real_text]


def test_real_text_reference_is_a_law_on_its_committed_curve(scaling_sweep):
    result = scaling_sweep("gpt", SIZES, seeds=REFERENCE_SEEDS, **REAL_TEXT_SWEEP)
    assert_on_curve(result, baseline=BASELINE)
    law = law_figures(result)
    print(f"\nreal text: {law.text(result.loss)}")
    assert law.falls
    assert law.noise <= MAX_SEED_NOISE
    assert abs(law.error) <= MAX_BACKTEST_ERROR
    assert law.lo <= law.observed <= law.hi


def test_real_text_rope_is_on_or_below_the_curve(scaling_sweep):
    result = scaling_sweep(rope, SIZES, seeds=REFERENCE_SEEDS, **REAL_TEXT_SWEEP)
    assert_on_curve(result, baseline=BASELINE)
    multiplier = compute_multiplier(result, baseline=BASELINE)
    print(f"\nRoPE compute multiplier on real text: {multiplier.value:.2f}x "
          f"(95% CI {multiplier.lo:.2f}-{multiplier.hi:.2f})")
