"""Architecture variants gated against the reference GPT: changes a team might really make.

Each factory takes the size spec and returns a module mapping token ids [B, T] to logits [B, T, V],
exactly like a user's own architecture would.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from pytest_scaling.model import GPT, INIT_STD, ModelSpec


class _Nothing(nn.Module):
    """A removed sub-layer: contributes nothing to the residual stream."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(())


def no_attention(spec: ModelSpec) -> nn.Module:
    """The reference with every attention layer removed: it can no longer look back (clearly worse)."""
    model = GPT(spec)
    for block in model.blocks:
        block.attn = _Nothing()
        block.ln1 = nn.Identity()
    return model


class SwiGLU(nn.Module):
    """Gated MLP (Shazeer 2020) with the hidden width scaled by 2/3 to keep the parameter count."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        hidden = max(1, round(2 * spec.hidden / 3))
        self.gate_up = nn.Linear(spec.width, 2 * hidden, bias=False)
        self.proj = nn.Linear(hidden, spec.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.proj(F.silu(gate) * up)


def swiglu_rope(spec: ModelSpec) -> nn.Module:
    """The reference with rotary positions and SwiGLU MLPs (plausibly better)."""
    model = GPT(dataclasses.replace(spec, rope=True))
    for block in model.blocks:
        block.mlp = SwiGLU(spec)
        nn.init.normal_(block.mlp.gate_up.weight, std=INIT_STD)
        nn.init.normal_(block.mlp.proj.weight, std=INIT_STD / (2 * spec.depth) ** 0.5)
    return model
