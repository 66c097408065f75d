"""The CUDA path of the trainer: bf16 autocast, tabulated peak and MFU, memory freed between models.

Skipped on machines without a CUDA GPU (CI has none); run on a lent GPU machine.
"""

from __future__ import annotations

import math

import pytest
import torch

from pytest_scaling.runners.cache import RunCache
from pytest_scaling.training.hardware import peak_flops, resolve_precision
from pytest_scaling.training.model import ModelSpec
from pytest_scaling.training.train import TrainConfig, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")

SRC = "synthetic:docs=512,val_docs=64"
SPEC = ModelSpec(width=64, depth=2, vocab_size=64, seq_len=64)


def gpu(**kw) -> TrainConfig:
    return TrainConfig(**{"tokens": 2**16, "eval_tokens": 4096, "device": "cuda", **kw})


def test_auto_picks_cuda_and_bf16_autocast():
    record = train("gpt", SPEC, TrainConfig(tokens=2**14, eval_tokens=4096), SRC)
    assert record.config.device == "cuda" and record.device.startswith("cuda: ")
    expected = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    assert record.config.precision == expected == resolve_precision("auto", "cuda")
    assert math.isfinite(record.loss) and not record.diverged
    if peak_flops("cuda") is not None:  # a GPU of the datasheet table
        assert 0 < record.mfu < 1
    else:
        assert record.mfu is None


def test_bf16_learns_as_well_as_fp32():
    bf16, fp32 = (train("gpt", SPEC, gpu(tokens=2**18, precision=p), SRC) for p in ("bf16", "fp32"))
    assert bf16.loss < math.log(64) - 0.2 and fp32.loss < math.log(64) - 0.2  # both learned
    assert abs(bf16.loss - fp32.loss) / fp32.loss < 0.03, (bf16.loss, fp32.loss)


def test_device_memory_is_freed_between_models():
    widths = (32, 64, 96, 128)
    for width in widths[::-1]:  # warm-up: CUDA context, cuBLAS/cuDNN workspaces of every shape, corpus
        train("gpt", ModelSpec(width=width, depth=2, vocab_size=64, seq_len=64), gpu(tokens=2**13), SRC)
    before = torch.cuda.memory_allocated()
    after = []
    for width in widths * 2:
        train("gpt", ModelSpec(width=width, depth=2, vocab_size=64, seq_len=64), gpu(tokens=2**13), SRC)
        after.append(torch.cuda.memory_allocated())
    assert max(after) <= before, (before, after)  # nothing of a finished model stays on the GPU


def test_cuda_and_cpu_runs_never_share_a_cache_entry(tmp_path):
    cache = RunCache(tmp_path)
    assert cache.key("gpt", SPEC, gpu(), SRC) != cache.key("gpt", SPEC, gpu(device="cpu"), SRC)
