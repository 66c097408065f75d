"""Models for the causality check: the reference GPT with the leaks users write, and causal variants of it.

Every factory takes a :class:`~pytest_scaling.training.spec.ModelSpec`; the plugin's end-to-end test imports them
as ``tests.leaky:<name>``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pytest_scaling.training.model import GPT, Attention, ModelSpec


def _scores_attention(mask_of, dropout: float = 0.0):
    """An :class:`Attention` forward that masks scores with ``mask_of(t)`` (True = hidden), then drops out."""

    def forward(self: Attention, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-2, -1)) / (d // self.heads) ** 0.5
        hidden = mask_of(t)
        if hidden is not None:
            scores = scores.masked_fill(hidden, float("-inf"))
        weights = F.dropout(scores.softmax(dim=-1), dropout, training=True)  # on in eval mode too
        return self.proj((weights @ v).transpose(1, 2).reshape(b, t, d))

    return forward


def _with_attention(spec: ModelSpec, forward) -> GPT:
    model = GPT(spec)
    for block in model.blocks:
        block.attn.forward = forward.__get__(block.attn)
    return model


def off_by_one(spec: ModelSpec) -> GPT:
    """Mask ``triu(2)`` instead of ``triu(1)``: position t also sees token t + 1."""
    return _with_attention(spec, _scores_attention(lambda t: torch.ones(t, t, dtype=torch.bool).triu(2)))


def no_mask(spec: ModelSpec) -> GPT:
    """Attention over the whole sequence (``is_causal`` forgotten)."""
    return _with_attention(spec, _scores_attention(lambda t: None))


class ShiftedInput(GPT):
    """Reads ``idx`` shifted left by one: position t embeds token t + 1, the one it predicts."""

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.roll(idx, -1, dims=1))


def shifted_input(spec: ModelSpec) -> GPT:
    return ShiftedInput(spec)


def reads_ahead_late(spec: ModelSpec) -> GPT:
    """Causal except that position 9 sees token 12 (a leak in the middle of the sequence)."""

    def hidden(t: int) -> torch.Tensor:
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        if t > 12:
            mask[9, 12] = False
        return mask

    return _with_attention(spec, _scores_attention(hidden))


def custom_mask(spec: ModelSpec) -> GPT:
    """Causal through an explicit lower-triangular boolean mask, no ``is_causal``."""
    return _with_attention(spec, _scores_attention(lambda t: ~torch.ones(t, t, dtype=torch.bool).tril()))


class Dropped(GPT):
    """Causal, with dropout on the output (``nn.Dropout``, off in eval mode) and on the attention weights
    (``F.dropout(training=True)``, on even in eval mode)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        self.drop = nn.Dropout(0.2)
        forward = _scores_attention(lambda t: torch.ones(t, t, dtype=torch.bool).triu(1), dropout=0.1)
        for block in self.blocks:
            block.attn.forward = forward.__get__(block.attn)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.drop(super().forward(idx))


def dropout(spec: ModelSpec) -> GPT:
    return Dropped(spec)
