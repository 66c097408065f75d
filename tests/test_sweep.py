"""A sweep's arguments: every bad input is a one-line error before anything trains."""

from __future__ import annotations

import math

import pytest
import torch

from pytest_scaling.errors import ScalingDataError
from pytest_scaling.runners.cache import RunCache
from pytest_scaling.runners.sweep import NothingToTrain, run_sweep

SIZES = [dict(width=16, depth=1, seq_len=32)]
SRC = "synthetic:docs=512,val_docs=64"


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(flops=0), "flops must be a finite number > 0, got 0"),
        (dict(flops=-1e9), "flops must be a finite number > 0, got -1000000000.0"),
        (dict(flops=math.inf), "flops must be a finite number > 0, got inf"),
        (dict(flops=[math.nan]), "flops must be a finite number > 0, got nan"),
        (dict(tokens_per_param="abc"), "tokens_per_param must be a finite number > 0, got 'abc'"),
        (dict(tokens_per_param=math.inf), "tokens_per_param must be a finite number > 0, got inf"),
        (dict(tokens_per_param=0), "tokens_per_param must be a finite number > 0, got 0"),
        (dict(max_params=math.inf), "max_params must be a finite number > 0, got inf"),
        (dict(seeds=0), "seeds must be >= 1"),
        (dict(seeds="2"), "seeds must be a count or a list of distinct ints, got '2'"),
        (dict(seeds=[1, 1]), "seeds must be a count or a list of distinct ints, got [1, 1]"),
        (dict(flops=1e3), "size w16-d1: a budget of 0 training tokens is less than one sequence of 32; raise "),
    ],
)
def test_bad_arguments_fail_before_training(tmp_path, options, message):
    with pytest.raises(ScalingDataError, match=message.replace("[", r"\[").replace("(", r"\(")):
        run_sweep("gpt", SIZES, data=SRC, cache=RunCache(tmp_path), **options)
    assert not (tmp_path / "runs").exists()


class _EmbeddingsOnly(torch.nn.Module):
    """An embedding and an untied head: nothing between them."""

    def __init__(self, spec):
        super().__init__()
        self.embed = torch.nn.Embedding(spec.vocab_size, spec.width)
        self.head = torch.nn.Linear(spec.width, spec.vocab_size, bias=False)

    def forward(self, idx):
        return self.head(self.embed(idx))

    def get_output_embeddings(self):
        return self.head


def test_a_model_without_non_embedding_parameters_is_one_line_naming_the_size(tmp_path):
    with pytest.raises(ScalingDataError, match=r"^size w16-d1: the model has 0 non-embedding parameters \(all "):
        run_sweep(_EmbeddingsOnly, SIZES, data=SRC, cache=RunCache(tmp_path))
    assert not (tmp_path / "runs").exists()


def test_a_factory_that_builds_no_model_is_one_line(tmp_path):
    with pytest.raises(ScalingDataError, match="returned NoneType, not a torch.nn.Module"):
        run_sweep(lambda spec: None, SIZES, data=SRC, cache=RunCache(tmp_path))


def test_max_params_below_every_size_is_nothing_to_train(tmp_path):
    with pytest.raises(NothingToTrain, match=r"every size has more than max_params=100 .*smallest has 3,"):
        run_sweep("gpt", SIZES, data=SRC, cache=RunCache(tmp_path), max_params=100)


def test_a_baseline_trained_under_other_default_rules_is_a_mismatch(tmp_path, monkeypatch):
    """Losses trained with another batch or learning-rate rule are not comparable, even with the same config."""
    from pytest_scaling.gate.baseline import Baseline
    from pytest_scaling.training import train

    sizes = [dict(width=w, depth=1, seq_len=32) for w in (16, 32, 48)]
    result = run_sweep("gpt", sizes, data=SRC, cache=RunCache(tmp_path), tokens_per_param=2, workers=1)
    assert result.trainer["rules"]["target_steps"] == train.TARGET_STEPS
    baseline = Baseline.from_sweep("reference", result)
    assert baseline.differences(result) == []
    monkeypatch.setattr(train, "TARGET_STEPS", train.TARGET_STEPS * 2)
    again = run_sweep("gpt", sizes, data=SRC, cache=RunCache(tmp_path), tokens_per_param=2, workers=1)
    assert [d for d in baseline.differences(again) if d.startswith("trainer rules")]
