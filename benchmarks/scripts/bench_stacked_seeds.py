"""Several seeds as one stacked model (issue 3's stretch), measured:
``python benchmarks/scripts/bench_stacked_seeds.py``.

For each shape it trains S seeds of the reference GPT two ways on the same batches, learning rate, grad
clipping (per seed) and fused AdamW, for ``--steps`` steps:

* one after another, each a plain ``GPT`` (what ``train()`` does per seed);
* as one ``StackedGPT``: every weight gets a leading seed dimension, matmuls become ``bmm`` and the seeds
  fold into the attention batch, so S seeds cost one set of kernel launches and Python calls.

It prints the aggregate tokens/s of both (best of ``--repeats``), their ratio, and the largest difference
between a seed's final training loss in the two runs (the stacked model computes the same functions; only
floating-point summation order may differ).

Measured on the 2-core CPU (torch 2.13): 16x1 (3.1k parameters, 16 x 128 tokens per step) 1.34x with 2
seeds and 1.42x with 4; 32x2 1.09x; 64x2 0.98x; final losses equal within 7e-7. The stretch goal (>= 1.5x
at the tiny end) is not reached, and a ladder's wall time is spent at its largest sizes, where stacking
gains nothing, so ``train()`` keeps one model per run.

Usage: python benchmarks/scripts/bench_stacked_seeds.py [--shapes 16x1:16,32x2:16,64x2:32] [--seeds 2] [--steps 60]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from pytest_scaling.data import get_source
from pytest_scaling.training.hardware import set_flush_denormal
from pytest_scaling.training.model import GPT, ModelSpec, build_reference


class StackedGPT(nn.Module):
    """S reference GPTs (learned positions, tied head) as one module; ``forward(idx [S, B, T])``."""

    def __init__(self, models: list[GPT]) -> None:
        super().__init__()

        def stack(get) -> nn.Parameter:
            return nn.Parameter(torch.stack([get(m).detach() for m in models]))

        self.heads = models[0].blocks[0].attn.heads
        self.wte, self.wpe = stack(lambda m: m.wte.weight), stack(lambda m: m.wpe.weight)
        self.blocks = nn.ModuleList(
            nn.ParameterDict({  # [S, in, out] for bmm; LayerNorm weights [S, 1, d]
                "ln1": stack(lambda m, i=i: m.blocks[i].ln1.weight[None]),
                "qkv": stack(lambda m, i=i: m.blocks[i].attn.qkv.weight.T),
                "proj": stack(lambda m, i=i: m.blocks[i].attn.proj.weight.T),
                "ln2": stack(lambda m, i=i: m.blocks[i].ln2.weight[None]),
                "fc": stack(lambda m, i=i: m.blocks[i].mlp.fc.weight.T),
                "out": stack(lambda m, i=i: m.blocks[i].mlp.proj.weight.T),
            })
            for i in range(len(models[0].blocks))
        )  # fmt: skip
        self.ln_f = stack(lambda m: m.ln_f.weight[None])

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        s, b, t = idx.shape
        v, d = self.wte.shape[1:]
        offsets = (torch.arange(s, device=idx.device) * v).view(s, 1, 1)
        x = (F.embedding(idx + offsets, self.wte.view(s * v, d)) + self.wpe[:, None, :t]).view(s, b * t, d)
        for block in self.blocks:
            y = F.layer_norm(x, (d,)) * block["ln1"]
            q, k, w = torch.bmm(y, block["qkv"]).view(s * b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, w, is_causal=True).transpose(1, 2).reshape(s, b * t, d)
            x = x + torch.bmm(y, block["proj"])
            y = F.layer_norm(x, (d,)) * block["ln2"]
            x = x + torch.bmm(F.gelu(torch.bmm(y, block["fc"])), block["out"])
        x = F.layer_norm(x, (d,)) * self.ln_f
        return torch.bmm(x, self.wte.transpose(1, 2)).view(s, b, t, v)


def _models(spec: ModelSpec, seeds: int) -> list[GPT]:
    models = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        models.append(build_reference(spec))
    return models


def _batches(spec: ModelSpec, seqs: int, seeds: int, steps: int) -> list[torch.Tensor]:
    """[steps] x [seeds, seqs, seq_len + 1]: each seed's own data order, drawn before any timing."""
    source = get_source("synthetic")
    streams = [source.train_batches(seqs, spec.seq_len, seed=seed) for seed in range(seeds)]
    return [torch.stack([next(stream) for stream in streams]) for _ in range(steps)]


def run_solo(spec: ModelSpec, batches: list[torch.Tensor], lr: float) -> tuple[float, list[float]]:
    """Seconds and final losses training each seed's GPT by itself."""
    seconds, losses = 0.0, []
    for seed, model in enumerate(_models(spec, batches[0].shape[0])):
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, fused=True)
        start = time.perf_counter()
        for batch in batches:
            loss = F.cross_entropy(model(batch[seed, :, :-1]).flatten(0, 1), batch[seed, :, 1:].flatten())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(model.parameters()), 1.0, foreach=True)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        seconds += time.perf_counter() - start
        losses.append(loss.item())
    return seconds, losses


def run_stacked(spec: ModelSpec, batches: list[torch.Tensor], lr: float) -> tuple[float, list[float]]:
    """Seconds and final losses training all seeds as one StackedGPT (grad norm clipped per seed)."""
    model = StackedGPT(_models(spec, batches[0].shape[0]))
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, fused=True)
    start = time.perf_counter()
    for batch in batches:
        logits = model(batch[:, :, :-1])
        per_token = F.cross_entropy(logits.flatten(0, 2), batch[:, :, 1:].flatten(), reduction="none")
        losses = per_token.view(batch.shape[0], -1).mean(dim=1)
        losses.sum().backward()
        norms = torch.stack([p.grad.pow(2).flatten(1).sum(1) for p in params]).sum(0).sqrt()
        scale = (1.0 / (norms + 1e-6)).clamp(max=1.0)
        torch._foreach_mul_([p.grad for p in params], [scale.view(-1, *[1] * (p.dim() - 1)) for p in params])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start, losses.tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="16x1:16,32x2:16,64x2:32", help="WIDTHxDEPTH:SEQS_PER_STEP,...")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    set_flush_denormal(True)
    print(f"{args.seeds} seeds, {args.steps} steps, {args.threads} threads, torch {torch.__version__}")
    for item in args.shapes.split(","):
        shape, seqs = item.split(":")
        width, depth = (int(x) for x in shape.split("x"))
        spec = ModelSpec(width=width, depth=depth, vocab_size=64, seq_len=128)
        batches = _batches(spec, int(seqs), args.seeds, args.steps)
        tokens = args.seeds * args.steps * int(seqs) * spec.seq_len
        run_solo(spec, batches[:3], args.lr)  # warm-up
        run_stacked(spec, batches[:3], args.lr)
        solo = min((run_solo(spec, batches, args.lr) for _ in range(args.repeats)), key=lambda r: r[0])
        stacked = min((run_stacked(spec, batches, args.lr) for _ in range(args.repeats)), key=lambda r: r[0])
        gap = max(abs(a - b) for a, b in zip(solo[1], stacked[1], strict=True))
        print(f"{shape} ({seqs} x {spec.seq_len} tokens/step): one at a time {tokens / solo[0]:,.0f} tok/s, "
              f"stacked {tokens / stacked[0]:,.0f} tok/s, ratio {solo[0] / stacked[0]:.2f}; "
              f"largest final-loss difference {gap:.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
