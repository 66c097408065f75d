"""The reference decoder-only transformer, the size ladder, and parameter / FLOP counting.

The reference model (``GPT``) is a GPT-2 style decoder: token embedding (+ learned positions unless
``rope``), ``depth`` pre-LayerNorm blocks ``x + attn(ln(x))``, ``x + mlp(ln(x))``, a final LayerNorm and
a linear head (tied to the token embedding by default). Design choices, all for speed on small CPUs:

* no biases anywhere (LayerNorm included): they add parameters and kernel launches but nothing that
  matters at this scale (as in nanoGPT's ``bias=False`` option);
* one fused ``qkv`` projection and causal ``scaled_dot_product_attention``; no dropout;
* GPT-2 init: every weight ~ N(0, 0.02), the two residual output projections per block
  ~ N(0, 0.02 / sqrt(2 * depth)), LayerNorm weights 1.

Head rule (``ModelSpec.heads=None``): head dim 32 when ``width`` is a multiple of 32, else 16 when it is a
multiple of 16, else one head of size ``width``.

Parameter convention (Kaplan et al. 2020): ``non_embedding`` = total minus the token embedding, the
learned position embedding and an untied output head, so a tied and an untied model of the same shape
have the same N; the head's compute is counted separately (``6*d*V`` in ``"6N+attn"``).

FLOPs per token (training = forward + backward = 3 x forward; ``L`` depth, ``d`` width, ``T`` seq_len,
``V`` vocab, ``h`` MLP hidden = round(mlp_ratio * d), N non-embedding parameters):

* ``"6N"``: ``6 N`` (Kaplan's approximation).
* ``"6N+attn"``: ``6 N + 12 L d T + 6 d V``. The attention term is PaLM's convention: QK^T and AV over
  the full T x T score matrix, ``2 * 2 T d`` forward per token per layer, no discount for the causal mask
  (Kaplan's ``6 L T d`` is half of it). This is what ``FlopCounterMode`` measures, so ``"measured"`` and
  ``"6N+attn"`` agree up to LayerNorm weights counted in N.
* ``"deepseek"``: DeepSeek LLM's non-embedding M = ``72 L d^2 + 12 L d T`` for mlp_ratio 4, generalised
  to ``6 L (4 d^2 + 2 d h) + 12 L d T`` (attention and MLP matmuls, no norms, no head).
* ``"measured"``: ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass of a [1, T] batch,
  times 3, divided by T. Works for any module (matmuls and attention only).

Training compute is ``C = flops_per_token * tokens``.
"""

from __future__ import annotations

import functools
import importlib
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ScalingDataError
from .spec import ModelSpec

FLOP_METHODS = ("6N", "6N+attn", "deepseek", "measured")
INIT_STD = 0.02


# ---------------------------------------------------------------------------------------------- model


class Rotary(nn.Module):
    """Rotary position embedding (rotate-half form) for [B, H, T, head_dim] queries and keys."""

    def __init__(self, head_dim: int, seq_len: int, base: float = 10000.0) -> None:
        super().__init__()
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, half = x.shape[-2], x.shape[-1] // 2
        cos, sin = self.cos[:t], self.sin[:t]
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.heads = spec.n_heads
        self.qkv = nn.Linear(spec.width, 3 * spec.width, bias=False)
        self.proj = nn.Linear(spec.width, spec.width, bias=False)
        self.rotary = Rotary(spec.head_dim, spec.seq_len) if spec.rope else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class MLP(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.fc = nn.Linear(spec.width, spec.hidden, bias=False)
        self.proj = nn.Linear(spec.hidden, spec.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(spec.width, bias=False)
        self.attn = Attention(spec)
        self.ln2 = nn.LayerNorm(spec.width, bias=False)
        self.mlp = MLP(spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Decoder-only transformer: ``forward(idx [B, T] int64) -> logits [B, T, vocab] float``."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.wte = nn.Embedding(spec.vocab_size, spec.width)
        self.wpe = None if spec.rope else nn.Embedding(spec.seq_len, spec.width)
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.depth))
        self.ln_f = nn.LayerNorm(spec.width, bias=False)
        self.lm_head = None if spec.tied_embeddings else nn.Linear(spec.width, spec.vocab_size, bias=False)
        self.apply(self._init_weights)
        residual_std = INIT_STD / math.sqrt(2 * spec.depth)
        for block in self.blocks:
            nn.init.normal_(block.attn.proj.weight, std=residual_std)
            nn.init.normal_(block.mlp.proj.weight, std=residual_std)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=INIT_STD)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.spec.seq_len:
            raise ValueError(f"sequence length {t} exceeds the model's seq_len {self.spec.seq_len}")
        x = self.wte(idx)
        if self.wpe is not None:
            x = x + self.wpe.weight[:t]
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        return self.lm_head(x) if self.lm_head is not None else F.linear(x, self.wte.weight)

    def get_output_embeddings(self) -> nn.Module:
        """The module holding the output head's weight (the token embedding when tied)."""
        return self.lm_head if self.lm_head is not None else self.wte


def build_reference(spec: ModelSpec) -> GPT:
    """The built-in factory (name ``"gpt"``)."""
    return GPT(spec)


# ------------------------------------------------------------------------------------------ factories

FACTORIES: dict[str, Callable[[ModelSpec], nn.Module]] = {"gpt": build_reference}
Factory = Callable[[ModelSpec], nn.Module]


def resolve_factory(factory: str | Factory) -> Factory:
    """A callable as is; a registered name (``"gpt"``); or an import path ``"package.module:function"``."""
    if callable(factory):
        return factory
    if not isinstance(factory, str):
        raise ScalingDataError(f"a model factory must be a name or a callable, got {type(factory).__name__}")
    if factory in FACTORIES:
        return FACTORIES[factory]
    if ":" in factory:
        module_name, _, attr = factory.partition(":")
        try:
            obj = functools.reduce(getattr, attr.split("."), importlib.import_module(module_name))
        except (ImportError, AttributeError) as exc:
            raise ScalingDataError(f"cannot import model factory {factory!r}: {exc}") from exc
        if not callable(obj):
            raise ScalingDataError(f"model factory {factory!r} is not callable")
        return obj
    raise ScalingDataError(
        f"unknown model factory {factory!r}; valid names: {sorted(FACTORIES)} or 'package.module:function'"
    )


def logits_of(output: object) -> torch.Tensor:
    """The logits of a model's forward output: a tensor, an object with ``.logits``, or a tuple's first."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, tuple | list) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ScalingDataError(f"model output {type(output).__name__} is neither a tensor nor has .logits")


def check_model(model: object, factory: object) -> nn.Module:
    """``model`` if it is a ``torch.nn.Module`` with parameters, else a one-line :class:`ScalingDataError`."""
    name = getattr(factory, "__qualname__", None) or repr(factory)
    if not isinstance(model, nn.Module):
        raise ScalingDataError(f"model factory {name} returned {type(model).__name__}, not a torch.nn.Module")
    if next(model.parameters(), None) is None:
        raise ScalingDataError(f"model factory {name} built a {type(model).__name__} without parameters")
    return model


def check_logits(logits: torch.Tensor, batch: tuple[int, int], vocab_size: int) -> torch.Tensor:
    """``logits`` if shaped ``[B, T, vocab_size]`` for a ``[B, T]`` batch, else a one-line error."""
    if tuple(logits.shape) != (*batch, vocab_size):
        raise ScalingDataError(
            f"the model maps token ids {list(batch)} to logits {list(logits.shape)}; expected "
            f"{[*batch, vocab_size]} (one logit per class of the vocabulary, vocab_size={vocab_size}; set "
            "'vocab_size' in the size spec if the model pads its vocabulary)"
        )
    return logits


UNUSED_ATTRIBUTE = "scaling_unused_parameters"  # a model's names (or prefixes) of parameters it may leave unused


def check_used(model: nn.Module, where: str) -> None:
    """After a backward pass: every trainable parameter received a gradient, else a one-line error.

    A parameter outside the loss's graph (``grad is None``) is counted in N and charged in the compute but
    never trained: a block that reads the embedding instead of the previous block's output (``h =
    block(x)``), a layer built and never called. Names listed in the model's ``scaling_unused_parameters``
    (exact names or prefixes ending in ``.``, e.g. MoE experts a short batch may not reach) are exempt."""
    exempt = tuple(getattr(model, UNUSED_ATTRIBUTE, ()))
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None
              and not any(name == e or (e.endswith(".") and name.startswith(e)) for e in exempt)]  # fmt: skip
    if unused:
        total = sum(1 for p in model.parameters() if p.requires_grad)
        shown = ", ".join(unused[:4]) + (f" and {len(unused) - 4} more" if len(unused) > 4 else "")
        raise ScalingDataError(
            f"{where}: {len(unused)} of {total} trainable parameter tensors get no gradient from the loss ({shown}): "
            "the model counts and pays for parameters it never uses (a block that reads the embedding instead of "
            "the previous block's output, h = block(x); a layer built and never called); if they are unused by "
            f"design, name them (or a prefix ending in '.') in the model's {UNUSED_ATTRIBUTE}"
        )


# ------------------------------------------------------------------------------------------- counting


@dataclass
class ParamCount:
    total: int
    non_embedding: int


def reference_params(spec: ModelSpec) -> ParamCount:
    """Analytic parameter count of ``GPT(spec)`` without building it."""
    d, v = spec.width, spec.vocab_size
    non_embedding = spec.depth * (4 * d * d + 2 * d * spec.hidden + 2 * d) + d
    embedding = v * d + (0 if spec.rope else spec.seq_len * d) + (0 if spec.tied_embeddings else v * d)
    return ParamCount(total=non_embedding + embedding, non_embedding=non_embedding)


def _output_head(model: nn.Module, vocab_size: int | None) -> nn.Module | None:
    get = getattr(model, "get_output_embeddings", None)  # GPT and Hugging Face models
    if callable(get):
        return get()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears and linears[-1].out_features == vocab_size else None


def count_params(model: nn.Module, spec: ModelSpec | None = None) -> ParamCount:
    """Total and non-embedding parameters (shared tensors counted once).

    Embedding parameters: every ``nn.Embedding`` (token and learned positions) and the output head, found
    as ``get_output_embeddings()`` (GPT, Hugging Face) or else the last registered ``nn.Linear`` if its
    out_features is the vocab size (``spec.vocab_size``, or the first embedding's size without a spec)."""
    params = {id(p): p for p in model.parameters()}
    embeddings = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    vocab_size = spec.vocab_size if spec is not None else embeddings[0].num_embeddings if embeddings else None
    head = _output_head(model, vocab_size)
    embedding_modules = embeddings + ([head] if head is not None else [])
    embedding_ids = {id(p) for m in embedding_modules for p in m.parameters()}
    total = sum(p.numel() for p in params.values())
    embedding = sum(p.numel() for i, p in params.items() if i in embedding_ids)
    return ParamCount(total=total, non_embedding=total - embedding)


def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """Forward FLOPs of attention: QK^T and AV over the full score matrix (the causal mask is ignored)."""
    b, h, s_q, d_q = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    return 2 * b * h * s_q * s_k * (d_q + d_v)


def _custom_flop_formulas() -> dict:
    # The CPU flash-attention kernel has no registered formula in FlopCounterMode (it would count 0).
    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {op: _sdpa_flops} if op is not None else {}


def measured_flops_per_token(model: nn.Module, spec: ModelSpec, batch_size: int = 1) -> float:
    """Training FLOPs per token measured with ``FlopCounterMode``: forward on [B, seq_len] x 3 / tokens."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    idx = torch.zeros(batch_size, spec.seq_len, dtype=torch.long, device=device)
    counter = FlopCounterMode(display=False, custom_mapping=_custom_flop_formulas())
    with torch.no_grad(), counter:
        model(idx)
    return 3.0 * counter.get_total_flops() / (batch_size * spec.seq_len)


def flops_per_token(
    spec: ModelSpec, method: str, *, model: nn.Module | None = None, params: ParamCount | None = None
) -> float:
    """Training FLOPs per token by ``method`` (see the module docstring for the conventions).

    N comes from ``params``, else ``count_params(model, spec)``, else the reference model's analytic count.
    """
    if method not in FLOP_METHODS:
        raise ScalingDataError(f"unknown FLOP method {method!r}; valid: {list(FLOP_METHODS)}")
    L, d, T, V = spec.depth, spec.width, spec.seq_len, spec.vocab_size
    attention = 12 * L * d * T
    if method == "deepseek":
        return float(6 * L * (4 * d * d + 2 * d * spec.hidden) + attention)
    if method == "measured":
        if model is None:
            raise ScalingDataError("FLOP method 'measured' needs the model")
        return measured_flops_per_token(model, spec)
    if params is None:
        params = count_params(model, spec) if model is not None else reference_params(spec)
    six_n = 6 * params.non_embedding
    return float(six_n if method == "6N" else six_n + attention + 6 * d * V)


def all_flops_per_token(spec: ModelSpec, model: nn.Module) -> dict[str, float]:
    """FLOPs per token by every method in ``FLOP_METHODS``; "measured" is nan (with a warning) for a
    module that ``FlopCounterMode`` cannot trace (e.g. one whose output is a view of a parameter)."""
    params = count_params(model, spec)
    out = {}
    for method in FLOP_METHODS:
        try:
            out[method] = flops_per_token(spec, method, model=model, params=params)
        except (RuntimeError, AssertionError, AttributeError) as exc:
            if method != "measured":
                raise
            warnings.warn(f"FlopCounterMode cannot trace {type(model).__name__} ({exc}); 'measured' FLOPs are nan",
                          stacklevel=2)  # fmt: skip
            out[method] = math.nan
    return out


# --------------------------------------------------------------------------------------------- ladder

ASPECT = 32  # target width / depth
ASPECT_BAND = (16, 64)  # allowed width / depth
WIDTH_STEP = 16
MAX_DEPTH = 64
N_TOLERANCE = 0.10  # relative distance to the target N within which the aspect decides


@dataclass
class LadderRung:
    spec: ModelSpec
    non_embedding_params: int
    tokens: int

    @property
    def compute(self) -> float:
        """Kaplan's C = 6 N D (N non-embedding)."""
        return 6.0 * self.non_embedding_params * self.tokens


def _shape_for(target: float, lo: float, hi: float, base: dict) -> ModelSpec | None:
    """The shape for ``target`` non-embedding parameters under the aspect rule (see ``ladder``)."""
    best_key, best = None, None
    for depth in range(1, MAX_DEPTH + 1):
        first = max(WIDTH_STEP, -(-ASPECT_BAND[0] * depth // WIDTH_STEP) * WIDTH_STEP)
        for width in range(first, ASPECT_BAND[1] * depth + 1, WIDTH_STEP):
            spec = ModelSpec(width=width, depth=depth, **base)
            n_params = reference_params(spec).non_embedding
            if not lo <= n_params <= hi:
                continue
            miss = abs(math.log(n_params / target))
            aspect_miss = abs(math.log(width / (ASPECT * depth)))
            key = (0.0, aspect_miss) if miss <= math.log1p(N_TOLERANCE) else (miss, aspect_miss)
            if best_key is None or key < best_key:
                best_key, best = key, spec
    return best


def ladder(
    min_params: float | None = None,
    max_params: float | None = None,
    n: int | None = None,
    *,
    sizes: list[dict] | None = None,
    vocab_size: int = 256,
    seq_len: int = 128,
    tokens_per_param: float = 20.0,
    compute_budgets: float | list[float] | None = None,
    spec_defaults: dict | None = None,
) -> list[LadderRung]:
    """A ladder of model shapes with token budgets, sorted by non-embedding parameters N.

    Shapes: the explicit ``sizes`` (dicts of ``ModelSpec`` fields, or ModelSpecs), else ``n`` (default 5)
    targets log-spaced over [``min_params``, ``max_params``] (default 1e4 to 3e5). Aspect rule: width a
    multiple of 16, 16 <= width / depth <= 64 and N inside [min_params, max_params]; among such shapes
    within 10% of the target N pick the one with width / depth nearest 32, else the shape nearest the
    target N (in log). Duplicate shapes are merged. ``spec_defaults`` (e.g. ``{"rope": True}``) applies to
    every shape. N is the reference model's (``reference_params``).

    Tokens: ``tokens_per_param * N`` (Chinchilla's 20 by default), or from ``compute_budgets`` with
    D = C / (6 N): one budget gives every shape that budget (an isoFLOP profile); a list gives one rung per
    (budget, shape) pair, ordered by budget then N.
    """
    base = {"vocab_size": vocab_size, "seq_len": seq_len, **(spec_defaults or {})}
    if sizes is not None:
        specs = [s if isinstance(s, ModelSpec) else ModelSpec.from_dict({**base, **s}) for s in sizes]
        if not specs:
            raise ScalingDataError("ladder: 'sizes' is empty")
    else:
        lo = 1e4 if min_params is None else float(min_params)
        hi = 3e5 if max_params is None else float(max_params)
        count = 5 if n is None else int(n)
        if not 0 < lo <= hi or count < 1 or (count > 1 and lo == hi):
            raise ScalingDataError(f"ladder: need 0 < min_params < max_params, n >= 1; got {lo}, {hi}, {n}")
        targets = [lo] if count == 1 else [lo * (hi / lo) ** (i / (count - 1)) for i in range(count)]
        found = [_shape_for(t, lo, hi, base) for t in targets]
        specs = [s for s in found if s is not None]
        if not specs:
            raise ScalingDataError(f"ladder: no model shape has between {lo:g} and {hi:g} parameters")
    specs = sorted(set(specs), key=lambda s: (reference_params(s).non_embedding, s.depth))
    shapes = [(s, reference_params(s).non_embedding) for s in specs]
    if compute_budgets is None:
        if not tokens_per_param > 0:
            raise ScalingDataError(f"ladder: tokens_per_param must be > 0, got {tokens_per_param}")
        return [LadderRung(s, p, max(1, round(tokens_per_param * p))) for s, p in shapes]
    budgets = [compute_budgets] if isinstance(compute_budgets, int | float) else sorted(compute_budgets)
    if not budgets or not all(c > 0 for c in budgets):
        raise ScalingDataError(f"ladder: compute budgets must be positive, got {compute_budgets}")
    return [LadderRung(s, p, max(1, round(c / (6 * p)))) for c in budgets for s, p in shapes]
