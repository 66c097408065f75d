"""Architecture variants gated against the committed reference curve, each with its expected verdict."""

import numpy as np
import pytest
from suite import REFERENCE_SEEDS, SIZES, SWEEP
from variants import no_attention, short_context, swiglu_rope

from pytest_scaling import ScalingGateError, assert_on_curve, compute_multiplier


@pytest.mark.scaling
def test_reseeded_reference_stays_on_the_curve(scaling_sweep):
    seeds = [s + 100 for s in REFERENCE_SEEDS]  # fresh seeds: only noise may differ
    result = scaling_sweep("gpt", SIZES, seeds=seeds, **SWEEP)
    assert_on_curve(result, baseline="reference")


@pytest.mark.scaling
def test_attention_removed_falls_off_the_curve(scaling_sweep):
    result = scaling_sweep(no_attention, SIZES, seeds=1, **SWEEP)
    with pytest.raises(ScalingGateError, match="off baseline 'reference'"):
        assert_on_curve(result, baseline="reference")
    reference = scaling_sweep("gpt", SIZES, seeds=REFERENCE_SEEDS, **SWEEP)
    gaps = result.loss / reference.loss - 1
    print(f"\nwithout attention, loss per size vs the reference: {', '.join(f'{100 * g:+.1f}%' for g in gaps)}")
    assert np.all(gaps[1:] > 0.02)  # context matters at every size but the smallest


@pytest.mark.scaling
def test_attention_over_the_last_8_tokens_falls_off_the_curve(scaling_sweep):
    result = scaling_sweep(short_context, SIZES, seeds=1, **SWEEP)  # documents repeat words from far back
    with pytest.raises(ScalingGateError, match="off baseline 'reference'"):
        assert_on_curve(result, baseline="reference")


@pytest.mark.scaling
def test_swiglu_rope_is_on_or_below_the_curve(scaling_sweep):
    result = scaling_sweep(swiglu_rope, SIZES, seeds=REFERENCE_SEEDS, **SWEEP)
    assert_on_curve(result, baseline="reference")
    multiplier = compute_multiplier(result, baseline="reference")
    print(f"\nSwiGLU + RoPE compute multiplier vs the reference: {multiplier.value:.2f}x "
          f"(95% CI {multiplier.lo:.2f}-{multiplier.hi:.2f})")
