"""The probe's causality check: leaking models fail with one line naming the leak; causal ones pass."""

from __future__ import annotations

import pytest
import torch

from pytest_scaling.errors import ScalingDataError
from pytest_scaling.training.causality import check_causal
from pytest_scaling.training.identity import probe_model
from pytest_scaling.training.model import GPT, ModelSpec
from tests import leaky

SPEC = ModelSpec(width=32, depth=1, vocab_size=64, seq_len=32)
LEAKS = {  # factory -> (first leaking position, the future token it reads) at depth 1
    leaky.off_by_one: (0, 1),
    leaky.no_mask: (0, 1),
    leaky.shifted_input: (0, 1),
    leaky.reads_ahead_late: (9, 12),
}


@pytest.mark.parametrize("factory", LEAKS, ids=[f.__name__ for f in LEAKS])
def test_a_leaking_model_fails_the_probe_with_one_line_naming_the_leak(factory):
    position, token = LEAKS[factory]
    with pytest.raises(ScalingDataError) as error:
        probe_model(factory, SPEC)
    message = str(error.value)
    assert "\n" not in message
    assert f"{factory.__name__} at w32-d1 is not causal" in message
    assert f"logits at position {position} change when token {token} changes" in message
    assert "is_causal=True" in message


@pytest.mark.parametrize("factory", [leaky.custom_mask, leaky.dropout, GPT], ids=["custom-mask", "dropout", "gpt"])
@pytest.mark.parametrize("spec", [SPEC, ModelSpec(width=32, depth=2, vocab_size=5, seq_len=8, rope=True)],
                         ids=["w32-d1", "w32-d2-rope"])  # fmt: skip
def test_a_causal_model_passes_the_probe(factory, spec):
    probe_model(factory, spec)


def test_the_check_leaves_the_fingerprint_and_the_callers_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = probe_model(GPT, SPEC)
    assert torch.equal(torch.rand(3), expected)
    assert probe_model(GPT, SPEC) == first


class _Stateful(GPT):
    """Adds a counter of its calls to the logits: two identical passes differ."""

    calls = 0

    def forward(self, idx):
        type(self).calls += 1
        return super().forward(idx) + type(self).calls


def test_a_model_whose_identical_passes_differ_cannot_be_called_causal():
    with pytest.raises(ScalingDataError, match=r"two identical eval-mode forward passes .* differ by 1"):
        check_causal(_Stateful(SPEC), torch.randint(0, 64, (2, 16)), 64, 0, "stateful")


def test_a_leak_into_the_other_sequence_of_the_batch_is_caught():
    class Mixing(GPT):
        def forward(self, idx):  # each sequence also reads the other one's last token
            logits = super().forward(idx)
            return logits + self.wte(idx.flip(0)[:, -1:]).sum(-1, keepdim=True)

    with pytest.raises(ScalingDataError, match="is not causal: its logits at position 0 change"):
        check_causal(Mixing(SPEC), torch.randint(0, 64, (2, 16)), 64, 0, "mixing")
