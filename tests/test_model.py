"""The reference model, factories, parameter / FLOP counting and the size ladder."""

from __future__ import annotations

import math

import pytest
import torch

from pytest_scaling.errors import ScalingDataError
from pytest_scaling.training.model import (
    FLOP_METHODS,
    GPT,
    LadderRung,
    ModelSpec,
    ParamCount,
    all_flops_per_token,
    build_reference,
    count_params,
    flops_per_token,
    ladder,
    logits_of,
    reference_params,
    resolve_factory,
)

SMALL = ModelSpec(width=32, depth=2, vocab_size=64, seq_len=16)


def test_forward_shape_and_dtype():
    model = GPT(SMALL)
    logits = model(torch.randint(0, 64, (3, 16)))
    assert logits.shape == (3, 16, 64) and logits.dtype == torch.float32
    assert model(torch.randint(0, 64, (2, 5))).shape == (2, 5, 64)  # shorter than seq_len is fine
    with pytest.raises(ValueError, match="exceeds"):
        model(torch.randint(0, 64, (1, 17)))


@pytest.mark.parametrize("rope", [False, True])
def test_causal(rope):
    torch.manual_seed(0)
    model = GPT(ModelSpec(width=32, depth=2, vocab_size=64, seq_len=16, rope=rope))
    idx = torch.randint(0, 64, (2, 16))
    changed = idx.clone()
    changed[:, 10] = (changed[:, 10] + 1) % 64
    a, b = model(idx), model(changed)
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_init_std_gpt2():
    spec = ModelSpec(width=128, depth=8, vocab_size=256, seq_len=64)
    model = GPT(spec)
    residual = 0.02 / math.sqrt(2 * spec.depth)
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    projections = torch.cat(
        [torch.cat([b.attn.proj.weight.flatten(), b.mlp.proj.weight.flatten()]) for b in model.blocks]
    )
    assert projections.std().item() == pytest.approx(residual, rel=0.05)
    assert all(p.requires_grad for p in model.parameters())
    assert not any("bias" in name for name, _ in model.named_parameters())


def test_param_counts_tied_untied_rope():
    d, L, V, T = 32, 2, 64, 16
    non_embedding = L * (4 * d * d + 2 * d * 4 * d + 2 * d) + d  # attn 4d^2, mlp 8d^2, 2 LayerNorms; ln_f
    tied = GPT(SMALL)
    expected = ParamCount(total=non_embedding + V * d + T * d, non_embedding=non_embedding)
    assert count_params(tied, SMALL) == expected
    untied_spec = ModelSpec(width=d, depth=L, vocab_size=V, seq_len=T, tied_embeddings=False)
    untied = count_params(GPT(untied_spec), untied_spec)
    assert untied == ParamCount(total=non_embedding + 2 * V * d + T * d, non_embedding=non_embedding)
    rope_spec = ModelSpec(width=d, depth=L, vocab_size=V, seq_len=T, rope=True)
    rope = GPT(rope_spec)
    assert rope.wpe is None
    assert count_params(rope, rope_spec) == ParamCount(non_embedding + V * d, non_embedding)
    for spec in (SMALL, untied_spec, rope_spec, ModelSpec(width=64, depth=2)):  # 64 * 4 == vocab 256
        assert count_params(GPT(spec), spec) == reference_params(spec)


def test_rope_changes_outputs_and_counts():
    torch.manual_seed(0)
    idx = torch.randint(0, 64, (1, 16))
    plain = GPT(SMALL)
    torch.manual_seed(0)
    rope = GPT(ModelSpec(width=32, depth=2, vocab_size=64, seq_len=16, rope=True))
    assert not torch.allclose(plain(idx), rope(idx))
    with pytest.raises(ScalingDataError, match="even"):
        ModelSpec(width=30, depth=1, heads=2, rope=True)


@pytest.mark.parametrize(
    ("width", "heads", "expected_heads"),
    [(32, None, 1), (64, None, 2), (128, None, 4), (48, None, 3), (80, None, 5), (40, None, 1), (64, 8, 8)],
)
def test_heads_rule(width, heads, expected_heads):
    spec = ModelSpec(width=width, depth=1, heads=heads)
    assert spec.n_heads == expected_heads and spec.head_dim * spec.n_heads == width
    assert GPT(spec)(torch.zeros(1, 4, dtype=torch.long)).shape == (1, 4, 256)


@pytest.mark.parametrize(
    "kwargs",
    [dict(width=0, depth=1), dict(width=64, depth=1, heads=3), dict(width=8, depth=1, mlp_ratio=0)],
)
def test_bad_spec(kwargs):
    with pytest.raises(ScalingDataError):
        ModelSpec(**kwargs)


def test_spec_dict_round_trip():
    spec = ModelSpec(width=48, depth=3, heads=3, vocab_size=100, seq_len=32, mlp_ratio=2.0, rope=True)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ScalingDataError, match="unknown ModelSpec keys"):
        ModelSpec.from_dict({"width": 8, "depth": 1, "n_embd": 3})


# ---------------------------------------------------------------------------------------- counting


def test_flop_formulas_hand_computed():
    # width 64, depth 2, T 128, V 256, mlp 4: N = 2 * (12 * 64^2 + 2 * 64) + 64 = 98624
    spec = ModelSpec(width=64, depth=2)
    params = reference_params(spec)
    assert params.non_embedding == 98_624
    assert flops_per_token(spec, "6N") == 6 * 98_624 == 591_744
    # + 12 L d T = 12 * 2 * 64 * 128 = 196608, + 6 d V = 6 * 64 * 256 = 98304
    assert flops_per_token(spec, "6N+attn") == 591_744 + 196_608 + 98_304
    # DeepSeek M = 72 L d^2 + 12 L d T = 72 * 2 * 4096 + 196608
    assert flops_per_token(spec, "deepseek") == 589_824 + 196_608
    # mlp_ratio 2 generalises 72 -> 6 * (4 + 2 * 2) = 48
    half = ModelSpec(width=64, depth=2, mlp_ratio=2.0)
    assert flops_per_token(half, "deepseek") == 48 * 2 * 4096 + 196_608
    assert flops_per_token(spec, "6N", params=ParamCount(total=0, non_embedding=10)) == 60
    with pytest.raises(ScalingDataError, match="unknown FLOP method"):
        flops_per_token(spec, "7N")
    with pytest.raises(ScalingDataError, match="needs the model"):
        flops_per_token(spec, "measured")


@pytest.mark.parametrize(
    "spec",
    [ModelSpec(64, 2), ModelSpec(width=48, depth=3, seq_len=64, rope=True, tied_embeddings=False)],
)
def test_measured_matches_analytic(spec):
    model = GPT(spec)
    flops = all_flops_per_token(spec, model)
    assert set(flops) == set(FLOP_METHODS)
    assert flops["measured"] == pytest.approx(flops["6N+attn"], rel=0.03)
    # attention must be counted (the CPU SDPA kernel has no built-in formula)
    assert flops["measured"] > flops["6N"] + 6 * spec.width * spec.vocab_size


# --------------------------------------------------------------------------------------- factories


def test_resolve_factory():
    assert resolve_factory("gpt") is build_reference
    assert resolve_factory(build_reference) is build_reference
    assert resolve_factory("pytest_scaling.training.model:build_reference") is build_reference
    with pytest.raises(ScalingDataError, match="valid names: \\['gpt'\\]"):
        resolve_factory("llama")
    with pytest.raises(ScalingDataError, match="cannot import"):
        resolve_factory("no_such_module_xyz:make")


def test_logits_of():
    t = torch.zeros(1, 2, 3)
    assert logits_of(t) is t
    assert logits_of((t, None)) is t

    class Out:
        logits = t

    assert logits_of(Out()) is t
    with pytest.raises(ScalingDataError):
        logits_of({"x": 1})


def test_hf_model_via_factory():
    transformers = pytest.importorskip("transformers", reason="transformers is not installed")

    def hf_gpt2(spec: ModelSpec):
        config = transformers.GPT2Config(
            vocab_size=spec.vocab_size, n_positions=spec.seq_len, n_embd=spec.width, n_layer=spec.depth,
            n_head=spec.n_heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        )  # fmt: skip
        return transformers.GPT2LMHeadModel(config)

    spec = ModelSpec(width=32, depth=2, vocab_size=64, seq_len=16)
    model = resolve_factory(hf_gpt2)(spec)
    logits = logits_of(model(torch.randint(0, 64, (2, 16))))
    assert logits.shape == (2, 16, 64)
    params = count_params(model, spec)
    # GPT-2 has biases: per block 12 d^2 + 13 d (qkv, proj, fc, mlp proj, 2 LayerNorms), final LN 2 d
    d = 32
    assert params.non_embedding == 2 * (12 * d * d + 13 * d) + 2 * d
    assert params.total == params.non_embedding + 64 * d + 16 * d  # tied head counted once
    flops = all_flops_per_token(spec, model)
    assert flops["measured"] == pytest.approx(flops["6N+attn"], rel=0.05)


# ------------------------------------------------------------------------------------------ ladder


def test_default_ladder_spans_range_monotonic():
    rungs = ladder()
    assert len(rungs) == 5
    n_params = [r.non_embedding_params for r in rungs]
    assert n_params == sorted(n_params) and len(set(n_params)) == 5
    assert 1e4 <= n_params[0] < 2e4 and 2e5 <= n_params[-1] <= 3e5
    for r in rungs:
        assert isinstance(r, LadderRung)
        assert r.non_embedding_params == reference_params(r.spec).non_embedding
        assert r.spec.width % 16 == 0 and 16 <= r.spec.width / r.spec.depth <= 64
        assert r.tokens == round(20 * r.non_embedding_params)
        assert r.compute == pytest.approx(6 * r.non_embedding_params * r.tokens)
    depths = [r.spec.depth for r in rungs]
    assert depths == sorted(depths)  # width grows with depth along the ladder


def test_ladder_range_and_options():
    rungs = ladder(3e4, 3e6, 4, vocab_size=64, seq_len=32, tokens_per_param=5, spec_defaults={"rope": True})
    assert all(3e4 <= r.non_embedding_params <= 3e6 for r in rungs)
    assert all(r.spec.rope and r.spec.vocab_size == 64 and r.spec.seq_len == 32 for r in rungs)
    assert [r.tokens for r in rungs] == [round(5 * r.non_embedding_params) for r in rungs]
    with pytest.raises(ScalingDataError):
        ladder(3e5, 1e4)
    with pytest.raises(ScalingDataError, match="no model shape"):
        ladder(10, 20)


def test_ladder_explicit_sizes_and_compute_budgets():
    sizes = [{"width": 64, "depth": 2}, {"width": 32, "depth": 1, "heads": 2}]
    rungs = ladder(sizes=sizes, compute_budgets=[1e12, 1e11])
    assert [(r.spec.width, r.spec.depth) for r in rungs] == [(32, 1), (64, 2), (32, 1), (64, 2)]
    assert rungs[0].spec.n_heads == 2
    for r, budget in zip(rungs, [1e11, 1e11, 1e12, 1e12], strict=True):
        assert r.tokens == round(budget / (6 * r.non_embedding_params))
        assert r.compute == pytest.approx(budget, rel=1e-5)
    single = ladder(sizes=sizes, compute_budgets=1e12)
    assert len(single) == 2
    with pytest.raises(ScalingDataError, match="unknown ModelSpec keys"):
        ladder(sizes=[{"width": 64, "layers": 2}])
