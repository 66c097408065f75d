"""Architecture variants gated against the reference GPT: changes a team might really make.

Each factory takes the size spec and returns a module mapping token ids [B, T] to logits [B, T, V],
exactly like a user's own architecture would.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from pytest_scaling.training.model import GPT, INIT_STD, Attention, ModelSpec


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


def _with_swiglu(model: GPT, spec: ModelSpec) -> GPT:
    """``model`` with every MLP replaced by a SwiGLU at equal parameters, initialised like the reference's."""
    for block in model.blocks:
        block.mlp = SwiGLU(spec)
        nn.init.normal_(block.mlp.gate_up.weight, std=INIT_STD)
        nn.init.normal_(block.mlp.proj.weight, std=INIT_STD / (2 * spec.depth) ** 0.5)
    return model


def swiglu_rope(spec: ModelSpec) -> nn.Module:
    """The reference with rotary positions and SwiGLU MLPs (plausibly better)."""
    return _with_swiglu(GPT(dataclasses.replace(spec, rope=True)), spec)


class LocalAttention(Attention):
    """Causal attention that sees only the last ``window`` positions (itself included)."""

    def __init__(self, spec: ModelSpec, window: int) -> None:
        super().__init__(spec)
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        pos = torch.arange(t, device=x.device)
        lag = pos[:, None] - pos[None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=(lag >= 0) & (lag < self.window))
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


def short_context(spec: ModelSpec, window: int = 8) -> nn.Module:
    """The reference limited to the last ``window`` tokens of context (worse where context matters), with the
    reference's initial weights (a window of ``seq_len`` is the reference)."""
    model = GPT(spec)
    for block in model.blocks:
        local = LocalAttention(spec, window)
        local.load_state_dict(block.attn.state_dict())
        block.attn = local
    return model


class _Scaled(nn.Module):
    """A parametrization: the stored tensor times ``scale``."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, stored: torch.Tensor) -> torch.Tensor:
        return stored * self.scale


def reparametrised(spec: ModelSpec, scale: float = 4.0) -> nn.Module:
    """The reference with every parameter stored as W / scale and used as scale * W: the same function and
    initial distribution, but Adam's steps move W ``scale`` times further, so its best learning rate is
    ``scale`` times smaller. Nothing about the architecture is worse."""
    model = GPT(spec)
    for module in list(model.modules()):
        for name, param in list(module.named_parameters(recurse=False)):
            with torch.no_grad():
                param.div_(scale)
            parametrize.register_parametrization(module, name, _Scaled(scale))
    return model


def reinitialised(spec: ModelSpec, offset: int = 1) -> nn.Module:
    """The reference with its initial weights drawn from another seed (the run's seed plus ``offset`` times
    a prime), while the data order stays the run's seed's: a change that is no change, and shares only the
    data order with the reference run of the same seed, as an architecture change does."""
    torch.manual_seed(torch.initial_seed() + 7919 * offset)
    return GPT(spec)


class _Uncomposed(GPT):
    """The ``h = block(x)`` bug: every block reads the embedding and only the last block's output is used."""

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe.weight[:t]
        h = x
        for block in self.blocks:
            h = block(x)
        return F.linear(self.ln_f(h), self.wte.weight)


def blocks_do_not_compose(spec: ModelSpec) -> nn.Module:
    """The reference with the ``h = block(x)`` bug: depth buys nothing (clearly worse where depth matters)."""
    return _Uncomposed(spec)


def nope(spec: ModelSpec) -> nn.Module:
    """The reference without its position embedding (NoPE): the causal mask alone tells positions apart,
    which Haviv et al. (2022) and Kazemnejad et al. (2023) find close to learned positions."""
    model = GPT(spec)
    model.wpe = None
    return model


def mlp_ratio_1(spec: ModelSpec) -> nn.Module:
    """The reference with MLP hidden width 1x instead of 4x: a smaller model gated at its own compute;
    Kaplan et al. (2020, Fig. 5) find shape matters little at equal parameters."""
    return GPT(dataclasses.replace(spec, mlp_ratio=1.0))


def swiglu(spec: ModelSpec) -> nn.Module:
    """The reference with SwiGLU MLPs at equal parameters (Shazeer 2020: better)."""
    return _with_swiglu(GPT(spec), spec)


def rope(spec: ModelSpec) -> nn.Module:
    """The reference with rotary positions instead of learned ones (Su et al. 2021: on par or better)."""
    return GPT(dataclasses.replace(spec, rope=True))
