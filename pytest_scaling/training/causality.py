"""The causality check: a language model's logits at position t may depend on tokens <= t only.

A model that sees the token it predicts (a causal mask off by one, attention without ``is_causal``, inputs
shifted by one, a cache that reads ahead) reaches a loss no real model can, and a scaling gate would read
it as a win. :func:`check_causal` catches it exactly, before anything trains: for every cut k it changes
every token after k (in the first sequence of the batch after k, in the second after ``T - 2 - k``) and
requires the logits at positions <= the cut to stay as they were, to rounding. Each pass runs in eval mode
from the same seed, so dropout and other seeded randomness draw the same values in both passes.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ScalingDataError
from .model import logits_of

_FIX = ("make position t attend to positions <= t only: scaled_dot_product_attention(..., is_causal=True), or "
        "mask scores where torch.ones(T, T).triu(1) is set (diagonal excluded) with -inf; the logits at t "
        "predict token t + 1 from tokens <= t")  # fmt: skip


def _tolerance(logits: torch.Tensor) -> float:
    """Absolute rounding allowance for float32 ``logits``: 16 ulps at the logits' scale."""
    return 16 * torch.finfo(torch.float32).eps * max(1.0, logits.abs().max().item())


def _changed(tokens: torch.Tensor, positions: slice, vocab_size: int, generator: torch.Generator) -> torch.Tensor:
    """``tokens`` with every token at ``positions`` replaced by a different token of the vocabulary."""
    out = tokens.clone()
    shift = torch.randint(1, vocab_size, out[positions].shape, generator=generator)
    out[positions] = (out[positions] + shift) % vocab_size
    return out


def check_causal(model: nn.Module, tokens: torch.Tensor, vocab_size: int, seed: int, name: str) -> None:
    """Raise a one-line :class:`ScalingDataError` naming the first position of ``model``'s logits that reads a
    later token of ``tokens`` (``[2, T]`` token ids), or that differs between two identical passes."""
    if vocab_size < 2 or tokens.shape[1] < 2:
        return
    model.eval()

    def logits(batch: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(seed)
        with torch.no_grad():
            return logits_of(model(batch)).float()

    reference = logits(tokens)
    tol = _tolerance(reference)
    drift = (logits(tokens) - reference).abs().max().item()
    if drift > tol:
        raise ScalingDataError(
            f"{name}: two identical eval-mode forward passes from the same seed differ by {drift:.3g}, so "
            "causality cannot be checked; the model keeps state between calls or is not deterministic on the CPU"
        )
    generator = torch.Generator().manual_seed(seed)

    def moved(changes: dict[int, slice]) -> torch.Tensor:
        """Which positions' logits move, ``[2, T]``, when each row's tokens at its ``changes`` change."""
        batch = tokens.clone()
        for row, positions in changes.items():
            batch[row] = _changed(tokens[row], positions, vocab_size, generator)
        return (logits(batch) - reference).abs().amax(dim=-1) > tol

    length = tokens.shape[1]
    leaks = []  # (position, row)
    for cut in range(length - 1):
        cuts = (cut, length - 2 - cut)
        changed = moved({row: slice(k + 1, None) for row, k in enumerate(cuts)})
        leaks += [(int(changed[row, : k + 1].nonzero()[0]), row) for row, k in enumerate(cuts)
                  if changed[row, : k + 1].any()]  # fmt: skip
    if not leaks:
        return
    position, row = min(leaks)
    read = next((j for j in range(position + 1, length) if moved({row: slice(j, j + 1)})[row, position]), None)
    what = f"token {read} changes" if read is not None else "later tokens of the batch change"
    raise ScalingDataError(
        f"{name} is not causal: its logits at position {position} change when {what}, tokens it must not see "
        f"(its loss would fall below what any language model can reach); {_FIX}"
    )
