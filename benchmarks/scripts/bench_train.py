"""Trainer speed benchmark (prints figures; no assertions): ``python benchmarks/scripts/bench_train.py``.

For each shape it times, in this process:

* ``pytest_scaling.training.train.train`` end to end (model build, Accelerate set-up, batches, optimizer steps,
  validation, record): tokens/s and MFU as the run record reports them;
* a plain nanoGPT-shaped PyTorch loop written here (same shape, same batch, same number of tokens and
  peak learning rate, batches from the same source, ``torch.optim.AdamW`` defaults, no evaluation), and
  the same loop with denormals flushed to zero as train() does (``plain + FTZ``: how much of the
  difference is that one setting);
* the fp32 matmul peak of this CPU, calibrated now at the same thread count (the MFU denominator; measured
  again after each shape, the best figure kept).

MFU counts the ``"6N+attn"`` FLOPs per token for both. The synthetic corpus is generated once before
any timing (it is cached per process, so a sweep pays it once). Each measurement is repeated
``--repeats`` times, alternating ours and the plain loop; the best of each is reported, both by wall
time and by process CPU time / threads (robust when other processes share the cores).

``--isa avx2`` re-runs the benchmark with MKL and ATen limited to AVX2 (``MKL_ENABLE_INSTRUCTIONS=AVX2``,
``ATEN_CPU_CAPABILITY=avx2``): the peak and every kernel are then those of an AVX2 CPU, the class of CPU
whose figures the MFU goals were set on (an AVX-512 CPU doubles the matmul peak, not the rest).

Usage: python benchmarks/scripts/bench_train.py [--shapes 64x2:1048576,128x4:524288] [--repeats K] [--threads T]
       [--device cpu|cuda] [--isa avx2] [--batch SEQS]   (on CUDA all run in bf16 autocast; MFU against
       the bf16 peak)
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

from pytest_scaling.data import get_source
from pytest_scaling.training.hardware import cpu_peak_flops, peak_flops, set_flush_denormal
from pytest_scaling.training.model import ModelSpec, flops_per_token
from pytest_scaling.training.train import TrainConfig, train


class PlainBlock(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d, bias=False), nn.LayerNorm(d, bias=False)
        self.qkv, self.proj = nn.Linear(d, 3 * d, bias=False), nn.Linear(d, d, bias=False)
        self.fc, self.out = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class PlainGPT(nn.Module):
    """nanoGPT's model (and init) with bias=False, no dropout, tied head."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        d = spec.width
        self.wte, self.wpe = nn.Embedding(spec.vocab_size, d), nn.Embedding(spec.seq_len, d)
        self.blocks = nn.ModuleList(PlainBlock(d, spec.n_heads) for _ in range(spec.depth))
        self.ln_f = nn.LayerNorm(d, bias=False)
        self.head = nn.Linear(d, spec.vocab_size, bias=False)
        self.head.weight = self.wte.weight
        for name, p in self.named_parameters():  # nanoGPT's init
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * spec.depth) if name.endswith(("proj.weight", "out.weight")) else 0.02
                nn.init.normal_(p, std=std)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


ISA_ENV = {"avx2": {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}}


def plain_loop(spec: ModelSpec, tokens: int, batch_tokens: int, lr: float, source, device: str,
               flush: bool = False) -> float:
    """Seconds for a plain training loop of ``tokens`` tokens at a constant ``lr`` (model build included),
    in bf16 autocast on CUDA as train() does there; ``flush``: denormals flushed to zero meanwhile."""
    set_flush_denormal(flush)
    try:
        return _plain_loop(spec, tokens, batch_tokens, lr, source, device)
    finally:
        set_flush_denormal(False)


def _plain_loop(spec: ModelSpec, tokens: int, batch_tokens: int, lr: float, source, device: str) -> float:
    start = time.perf_counter()
    torch.manual_seed(0)
    model = PlainGPT(spec).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.99), weight_decay=0.1)
    batch_seqs = batch_tokens // spec.seq_len
    batches = source.train_batches(batch_seqs, spec.seq_len, seed=0)
    for _ in range(math.ceil(tokens / batch_tokens)):
        batch = next(batches).to(device, non_blocking=True)
        with torch.autocast(device, torch.bfloat16, enabled=device == "cuda"):
            logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    loss.item()
    return time.perf_counter() - start


def timed(fn, *args):
    """(result, wall seconds, CPU-time seconds / threads) of ``fn(*args)``.

    On a shared machine other processes steal cores; the process CPU time divided by the thread count
    is then the better estimate of the time the work itself took (OpenMP threads spin while they wait,
    so they count as busy)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, (time.process_time() - cpu) / torch.get_num_threads()


def bench(width: int, depth: int, tokens: int, repeats: int, source, threads: int, device: str,
          batch_seqs: int | None) -> None:  # fmt: skip
    spec = ModelSpec(width=width, depth=depth, seq_len=128, vocab_size=source.vocab_size)
    fpt = flops_per_token(spec, "6N+attn")
    batch_tokens = batch_seqs * spec.seq_len if batch_seqs else None
    config = TrainConfig(tokens=tokens, threads=threads, device=device, batch_tokens=batch_tokens)
    runs = {"train()": [], "plain loop": [], "plain + FTZ": []}
    record = None
    for _ in range(repeats):
        record, wall, cpu = timed(train, "gpt", spec, config, source)
        runs["train()"].append((wall, cpu))
        batch, lr = record.config.batch_tokens, record.config.lr
        for name, flush in (("plain loop", False), ("plain + FTZ", True)):
            _, wall, cpu = timed(plain_loop, spec, record.tokens, batch, lr, source, device, flush)
            runs[name].append((wall, cpu))
    peak = cpu_peak_flops(threads, refresh=True) if device == "cpu" else peak_flops(device)
    print(f"width {width}, depth {depth}, T 128: {record.non_embedding_params:,} non-embedding params, "
          f"{record.tokens:,} tokens, batch {record.config.batch_tokens} tokens, loss {record.loss:.4f}")
    best = {}
    for name, times in runs.items():
        wall, cpu = min(t[0] for t in times), min(t[1] for t in times)
        best[name] = (record.tokens / wall, record.tokens / cpu)
        # CPU time stands in for the work's own time on a shared CPU; on a GPU it means nothing
        cpu_time = (f"cpu-time: {best[name][1]:9,.0f} tokens/s, MFU {best[name][1] * fpt / peak:6.1%}   "
                    if device == "cpu" else "")  # fmt: skip
        print(f"  {name:<11} wall: {best[name][0]:9,.0f} tokens/s, MFU {best[name][0] * fpt / peak:6.1%}   "
              f"{cpu_time}(wall s: {', '.join(f'{t[0]:.2f}' for t in times)})")
    for plain in ("plain loop", "plain + FTZ"):
        ratio_wall = best["train()"][0] / best[plain][0]
        ratio_cpu = best["train()"][1] / best[plain][1]
        print(f"  ratio train()/{plain}: wall {ratio_wall:.2f}"
              + (f", cpu-time {ratio_cpu:.2f}" if device == "cpu" else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="64x2:1048576,128x4:524288",
                        help="WIDTHxDEPTH:TOKENS,... (default: the issue's two CPU shapes)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--batch", type=int, help="sequences per step (default: train()'s batch rule)")
    parser.add_argument("--isa", choices=sorted(ISA_ENV), help="limit MKL and ATen to this instruction set")
    args = parser.parse_args()
    if args.isa and any(os.environ.get(k) != v for k, v in ISA_ENV[args.isa].items()):
        # the limits are read when MKL and ATen first dispatch: run again with them in the environment
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **ISA_ENV[args.isa]})
    torch.set_num_threads(args.threads)
    source = get_source(args.data)
    source.split("train")  # generate the corpus before any timing
    if args.device == "cpu":
        peak = f"fp32 matmul peak {cpu_peak_flops(args.threads) / 1e9:.1f} GFLOP/s"
    else:
        peak = f"{torch.cuda.get_device_name()}, bf16 peak {(peak_flops('cuda') or math.nan) / 1e12:.0f} TFLOP/s"
    isa = torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__} ({isa}), {args.threads} threads, {peak}, data {args.data}")
    for shape in args.shapes.split(","):
        dims, _, tokens = shape.partition(":")
        width, _, depth = dims.partition("x")
        bench(int(width), int(depth), int(tokens), args.repeats, source, args.threads, args.device, args.batch)


if __name__ == "__main__":
    main()
