"""Train one model on a token budget with Hugging Face Accelerate and return a :class:`RunRecord`.

Recipe (every default can be overridden in :class:`TrainConfig`):

* AdamW, eps 1e-8, weight decay 0.1 on matrices (parameters with ``dim >= 2``, embeddings included)
  and none on vectors (norm gains, biases); gradients clipped to global norm 1.0; fused AdamW when
  the device supports it, else the foreach implementation.
* Betas ``(0.9, 0.95)``, except ``beta2 = 0.99`` when the batch is smaller than
  :data:`SMALL_BATCH_TOKENS` tokens: with few tokens per step the second-moment estimate needs a longer
  average (Porian et al. 2024, "Resolving discrepancies in compute-optimal scaling").
* Batch rule (:func:`default_batch_tokens`): the power-of-two number of sequences that gives about
  :data:`TARGET_STEPS` steps, clamped to ``[1, 512]`` sequences per step (512 bounds activation memory):
  the small end of a ladder gets hundreds of optimizer steps too (the batch shrinks with compute, as in
  Porian et al. 2024 and DeepSeek LLM).
* Learning-rate rule (:func:`default_lr`): DeepSeek LLM's ``eta = 0.3118 * C^-0.125``, C the training
  FLOPs (``"6N+attn"`` per token times tokens), capped at :data:`MAX_LR`, times ``sqrt(b / 16)`` for a
  batch of b < 16 sequences (the batch it was tuned at); checked against LR x0.5/x2 and batch x0.5/x2
  per size by ``benchmarks/scripts/bench_recipe.py`` (``docs/workload.md``). Set ``lr`` to override.
* Linear warmup over ``warmup`` (a fraction of the steps, at least one step), then cosine (or linear)
  decay to ``final_lr_ratio * lr``, reached exactly at the last step, i.e. at the token budget.
* bf16 autocast on CUDA, fp32 on CPU (see :func:`pytest_scaling.training.hardware.resolve_precision`).
* Denormal floats are flushed to zero during the run, in every OpenMP thread
  (:func:`pytest_scaling.training.hardware.set_flush_denormal`; the caller's setting is restored): once a model
  has learned sharp attention its softmax produces denormals, which slow CPU steps down.

The budget is rounded up to whole sequences (``seq_len`` targets each, a multiple of the number of
processes); the last step takes the remainder so the run ends exactly there. Data-parallel runs
(``torchrun``) read the same global batches as a single process; rank ``r`` trains on its contiguous
share of each. A run has diverged (``diverged=True``, ``loss=inf``) when its training loss is not finite
at one of the ~``curve_points`` curve points (no per-step host sync), when it is more than
:data:`DIVERGENCE_MARGIN` nats above a uniform prediction over the vocabulary (``log vocab_size``) at a
curve point in the second half of the run, or when its validation loss is either; such a run ends there.
"""

from __future__ import annotations

import gc
import json
import math
import time
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DistributedType

from .. import __version__
from ..data import DataSource, get_source
from ..errors import ScalingDataError
from .hardware import (
    default_threads,
    device_name,
    mfu,
    peak_flops,
    resolve_device,
    resolve_precision,
    set_flush_denormal,
)
from .identity import code_identity
from .model import (
    all_flops_per_token,
    check_logits,
    check_model,
    count_params,
    flops_per_token,
    logits_of,
    resolve_factory,
)
from .spec import ModelSpec

__all__ = [
    "COMPUTE_METHOD",
    "RunRecord",
    "TrainConfig",
    "default_batch_tokens",
    "default_betas",
    "default_lr",
    "lr_schedule",
    "param_groups",
    "plan_steps",
    "train",
]

COMPUTE_METHOD = "6N+attn"  # the FLOP convention of RunRecord.compute, the LR rule and MFU
TARGET_STEPS = 512
MIN_BATCH_SEQS, MAX_BATCH_SEQS = 1, 512
LR_REF_BATCH_SEQS = 16  # the LR rule was tuned at this batch; smaller batches scale it by sqrt(b / 16)
SMALL_BATCH_TOKENS = 2**17
LR_COEF, LR_EXPONENT = 0.3118, 0.125
MAX_LR = 3e-2
DIVERGENCE_MARGIN = 1.0  # nats per token above a uniform prediction that count as diverged
_PLAIN_DISTRIBUTED = (DistributedType.NO, DistributedType.MULTI_CPU, DistributedType.MULTI_GPU)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one run. ``None`` fields are filled by the documented rules."""

    tokens: int
    batch_tokens: int | None = None
    lr: float | None = None
    lr_multiplier: float = 1.0  # the peak learning rate is lr (or the rule's) times this (lr_grid searches it)
    warmup: float = 0.05
    schedule: str = "cosine"
    final_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    betas: tuple[float, float] | None = None
    eps: float = 1e-8
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    eval_tokens: int = 2**16  # validation tokens: the same fixed windows for every run
    curve_points: int = 20
    threads: int | None = None  # CPU threads for this run (None: hardware.default_threads())

    def __post_init__(self) -> None:
        betas_ok = self.betas is None or (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas))
        checks = [
            (isinstance(self.tokens, int) and self.tokens > 0, f"tokens must be an int >= 1: {self.tokens}"),
            (self.batch_tokens is None or self.batch_tokens >= 1, f"batch_tokens < 1: {self.batch_tokens}"),
            (self.lr is None or self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (math.isfinite(self.lr_multiplier) and self.lr_multiplier > 0,
             f"lr_multiplier must be a finite number > 0, got {self.lr_multiplier}"),
            (0 <= self.warmup < 1, f"warmup must be a fraction in [0, 1), got {self.warmup}"),
            (self.schedule in ("cosine", "linear"), f"schedule must be cosine or linear: {self.schedule!r}"),
            (0 <= self.final_lr_ratio <= 1, f"final_lr_ratio must be in [0, 1], got {self.final_lr_ratio}"),
            (self.weight_decay >= 0 and self.grad_clip >= 0, "weight_decay and grad_clip must be >= 0"),
            (betas_ok, f"betas must be two numbers in [0, 1): {self.betas}"),
            (self.eval_tokens >= 1 and self.curve_points >= 1, "eval_tokens and curve_points must be >= 1"),
            (self.threads is None or self.threads >= 1, f"threads must be >= 1, got {self.threads}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ScalingDataError(f"TrainConfig: {message}")
        if self.betas is not None:
            object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas) if self.betas is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def resolve_environment(self) -> TrainConfig:
        """``device`` and ``precision`` resolved for this machine (they change the result; threads do not)."""
        device = resolve_device(self.device)
        return replace(self, device=device, precision=resolve_precision(self.precision, device))


def default_batch_tokens(tokens: int, seq_len: int) -> int:
    """Tokens per step: ``seq_len`` times the power of two nearest ``tokens / (TARGET_STEPS * seq_len)``
    sequences, clamped to [MIN_BATCH_SEQS, MAX_BATCH_SEQS]."""
    seqs = tokens / (TARGET_STEPS * seq_len)
    seqs = 2 ** round(math.log2(seqs)) if seqs > 0 else 1
    return seq_len * min(MAX_BATCH_SEQS, max(MIN_BATCH_SEQS, seqs))


def default_betas(batch_tokens: int) -> tuple[float, float]:
    """(0.9, 0.95), with beta2 = 0.99 for batches under SMALL_BATCH_TOKENS tokens."""
    return (0.9, 0.99 if batch_tokens < SMALL_BATCH_TOKENS else 0.95)


def default_lr(compute: float, batch_seqs: int = LR_REF_BATCH_SEQS) -> float:
    """Peak learning rate ``LR_COEF * C^-0.125`` (C in FLOPs; DeepSeek LLM's form) capped at MAX_LR, times
    ``sqrt(batch_seqs / LR_REF_BATCH_SEQS)`` for batches smaller than the one the rule was tuned at."""
    return min(MAX_LR, LR_COEF * compute**-LR_EXPONENT) * min(1.0, math.sqrt(batch_seqs / LR_REF_BATCH_SEQS))


def lr_schedule(steps: int, lr: float, warmup: float, schedule: str, final_ratio: float) -> list[float]:
    """The learning rate of every step: linear warmup over ``max(1, round(warmup * steps))`` steps (the
    last of them at ``lr``), then cosine or linear decay whose last step is exactly ``final_ratio * lr``."""
    if steps <= 1:
        return [lr] * steps
    n_warm = min(steps - 1, max(1, round(warmup * steps)))
    n_decay = steps - n_warm
    lrs = [lr * (s + 1) / n_warm for s in range(n_warm)]
    for s in range(1, n_decay + 1):
        progress = s / n_decay
        shape = 0.5 * (1 + math.cos(math.pi * progress)) if schedule == "cosine" else 1 - progress
        lrs.append(lr * (final_ratio + (1 - final_ratio) * shape))
    return lrs


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: weight decay on matrices (``dim >= 2``), none on vectors and scalars."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


@dataclass
class RunRecord:
    """The result of one training run (losses in nats/token)."""

    spec: ModelSpec
    factory: str
    seed: int
    params: int
    non_embedding_params: int
    tokens: int
    flops: dict[str, float]
    flops_per_token: dict[str, float]
    compute: float
    loss: float
    loss_bits_per_byte: float | None
    curve: list[list[float]]
    seconds: float
    tokens_per_second: float
    mfu: float | None
    device: str
    data: dict
    version: str
    diverged: bool
    config: TrainConfig  # as the run resolved it: device, precision, batch and peak learning rate filled in
    world_size: int = 1
    cached: bool = False
    loss_halves: list[float] | None = None  # mean loss over the even and the odd validation windows
    loss_se: float | None = None  # standard error of ``loss`` over the validation windows (None: diverged, older)
    key: str | None = None  # the run cache's key, once the record has passed through a cache

    def to_dict(self) -> dict:
        """JSON-ready values: the spec and the config as their dicts."""
        return {**asdict(self), "spec": self.spec.to_dict(), "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> RunRecord:
        names = {f.name for f in fields(cls)}
        missing = sorted(f.name for f in fields(cls) if f.default is MISSING and f.name not in d)
        if missing:
            raise ScalingDataError(f"run record lacks {missing}")
        typed = {"spec": ModelSpec.from_dict(d["spec"]), "config": TrainConfig.from_dict(d["config"])}
        return cls(**{**{k: v for k, v in d.items() if k in names}, **typed})

    def to_json(self) -> str:
        """JSON (non-finite losses as ``Infinity``/``NaN``, which Python's json reads back)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        return cls.from_dict(json.loads(text))


def plan_steps(tokens: int, seq_len: int, batch_tokens: int, world: int = 1) -> tuple[int, list[int]]:
    """(sequences per step, global sequences of every step). The budget is rounded up to whole sequences
    and to a multiple of ``world``; the batch to a multiple of ``world``; the last step takes the rest."""
    total = -(-max(tokens, seq_len * world) // seq_len)
    total = -(-total // world) * world
    batch = min(total, max(world, -(-batch_tokens // seq_len) // world * world))
    return batch, [batch] * (total // batch) + ([total % batch] if total % batch else [])


def _adamw(groups: list[dict], lr: float, betas: tuple[float, float], eps: float) -> torch.optim.AdamW:
    """Fused AdamW where this torch build and device support it (CPU since torch 2.4), else foreach."""
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, foreach=True)


def _flushes_denormals() -> bool:
    """Whether this thread flushes denormal floats to zero (then a denormal times one is zero)."""
    return (torch.tensor([1e-39]) * 1.0).item() == 0.0


def _reset_accelerate() -> None:
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def train(
    factory: object, spec: ModelSpec, config: TrainConfig, source: str | DataSource | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunRecord:  # fmt: skip
    """Train ``factory(spec)`` on ``config.tokens`` tokens of ``source`` and evaluate it on the fixed
    validation windows. Under ``torchrun`` every rank calls this; the returned records are equal.
    ``progress(tokens_seen, tokens)`` is called at every curve point (no extra host syncs)."""
    start = time.perf_counter()
    source = get_source(source)
    if source.vocab_size > spec.vocab_size:
        raise ScalingDataError(
            f"data source {source.name!r} has vocab {source.vocab_size} > model vocab_size {spec.vocab_size}"
        )
    build = resolve_factory(factory)
    config = config.resolve_environment()
    previous_threads, previous_flush = torch.get_num_threads(), _flushes_denormals()
    threads = config.threads or default_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    set_flush_denormal(True)
    _reset_accelerate()
    accelerator = Accelerator(
        cpu=config.device == "cpu", mixed_precision="bf16" if config.precision == "bf16" else "no"
    )
    try:
        return _run(accelerator, build, factory, spec, config, source, start, progress)
    finally:
        # In fp32 on a CPU reference counting frees the model as soon as this frame ends (the run has no
        # reference cycles: tested), and a full gc.collect() would cost 0.15-0.3 s, most of a tiny run.
        # Mixed precision makes a cycle (Accelerate wraps model.forward in a method bound to the model),
        # and free_memory() collects garbage before it drops its own references to the model, so it
        # stayed on the GPU until the next run (measured on an H100): drop them, then collect.
        if accelerator.device.type != "cpu" or accelerator.mixed_precision != "no":
            accelerator.free_memory()
            gc.collect()
            if accelerator.device.type == "cuda":
                torch.cuda.empty_cache()
        _reset_accelerate()
        torch.set_num_threads(previous_threads)
        set_flush_denormal(previous_flush)


def _run(accelerator, build, factory, spec, config, source, start, progress) -> RunRecord:
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    torch.manual_seed(config.seed)
    model = check_model(build(spec), factory)
    params = count_params(model, spec)
    compute_per_token = flops_per_token(spec, COMPUTE_METHOD, model=model, params=params)
    batch_tokens = config.batch_tokens or default_batch_tokens(config.tokens, spec.seq_len)
    batch_seqs, sizes = plan_steps(config.tokens, spec.seq_len, batch_tokens, world)
    tokens = sum(sizes) * spec.seq_len
    lr = (config.lr or default_lr(compute_per_token * tokens, batch_seqs)) * config.lr_multiplier
    config = replace(config, batch_tokens=batch_seqs * spec.seq_len, lr=lr,  # the record's lr: multiplier applied
                     betas=config.betas or default_betas(batch_seqs * spec.seq_len))  # fmt: skip
    lrs = lr_schedule(len(sizes), lr, config.warmup, config.schedule, config.final_lr_ratio)

    optimizer = _adamw(param_groups(model, config.weight_decay), lr, config.betas, config.eps)
    model, optimizer = accelerator.prepare(model, optimizer)
    trainable = [p for p in model.parameters() if p.requires_grad]
    # The wrapped optimizer's own step where AcceleratedOptimizer.step would only add branches not taken
    # (gradient accumulation, an fp16 loss scaler, XLA, LOMO) and two importlib look-ups per step (about
    # 1.5% of a width-64 run on a CPU); under DeepSpeed or FSDP (set up from Accelerate's environment)
    # the wrapper's step is the right one.
    plain = optimizer.scaler is None and accelerator.distributed_type in _PLAIN_DISTRIBUTED
    optimizer_step = (optimizer.optimizer if plain else optimizer).step
    batches = source.train_batches(batch_seqs, spec.seq_len, seed=config.seed)
    check_every = max(1, len(sizes) // config.curve_points)
    curve: list[list[float]] = []
    running = torch.zeros((), device=device)
    since, seen, diverged = 0, 0, False
    exploded = math.log(spec.vocab_size) + DIVERGENCE_MARGIN

    model.train()
    for step, size in enumerate(sizes):
        batch = next(batches)
        local = size // world
        batch = batch[rank * local : (rank + 1) * local].to(device, non_blocking=True)
        for group in optimizer.param_groups:
            group["lr"] = lrs[step]
        logits = logits_of(model(batch[:, :-1]))
        if step == 0:
            check_logits(logits, tuple(batch[:, :-1].shape), spec.vocab_size)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch[:, 1:].reshape(-1))
        accelerator.backward(loss)
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip, foreach=True)
        optimizer_step()
        optimizer.zero_grad(set_to_none=True)
        running += loss.detach()
        since += 1
        seen += size * spec.seq_len
        if since == check_every or step == len(sizes) - 1:
            mean = (accelerator.reduce(running, "mean") if world > 1 else running).item() / since
            curve.append([seen, mean])
            if progress is not None:
                progress(seen, tokens)
            running.zero_()
            since = 0
            if not math.isfinite(mean) or (2 * (step + 1) > len(sizes) and mean > exploded):
                diverged = True
                break

    val_loss, halves, loss_se = math.inf, [math.inf, math.inf], None
    if not diverged:
        val_loss, halves, loss_se = _evaluate(accelerator, model, source, spec.seq_len, spec.vocab_size,
                                              config.eval_tokens)  # fmt: skip
        diverged = not val_loss <= exploded
    loss = math.inf if diverged else val_loss
    halves, loss_se = ([math.inf, math.inf], None) if diverged else (halves, loss_se)
    seconds = time.perf_counter() - start

    fpt = all_flops_per_token(spec, accelerator.unwrap_model(model))  # after the clock: bookkeeping
    threads = torch.get_num_threads()
    peak = peak_flops(device.type, threads)
    peak = peak * world if peak else None
    flops = {m: f * tokens for m, f in fpt.items()}
    bits = loss / math.log(2) / source.bytes_per_token if source.bytes_per_token else None
    return RunRecord(
        spec=spec, factory=code_identity(factory), seed=config.seed, params=params.total,
        non_embedding_params=params.non_embedding, tokens=tokens, flops=flops, flops_per_token=fpt,
        compute=flops[COMPUTE_METHOD], loss=loss, loss_bits_per_byte=bits, curve=curve, seconds=seconds,
        tokens_per_second=seen / seconds, mfu=mfu(fpt[COMPUTE_METHOD] * seen / seconds, peak),
        device=device_name(device.type, threads), data=dict(source.identity), version=__version__,
        diverged=diverged, config=config, world_size=world, loss_halves=halves, loss_se=loss_se,
    )  # fmt: skip


@torch.no_grad()
def _evaluate(accelerator, model, source, seq_len: int, vocab: int,
              eval_tokens: int) -> tuple[float, list[float], float]:  # fmt: skip
    """Mean validation loss (nats/token) over the fixed validation windows, shared out among ranks, the means
    over its two interleaved halves (even and odd windows), and the mean's standard error over windows."""
    net = accelerator.unwrap_model(model)
    net.eval()
    rank, world, device = accelerator.process_index, accelerator.num_processes, accelerator.device
    # [half, (loss sum, tokens, sum of the squared per-window mean losses)]
    total = torch.zeros(2, 3, dtype=torch.float64, device=device)
    # Tokens per batch: 32K on a GPU; 4K on a CPU, where the activations then stay near the caches
    # (32K-token batches made evaluation 1.4x (width 64, depth 2) to 1.7x (width 128, depth 4) slower on
    # 2 threads). Fewer when the logits would pass 256 MiB.
    batch_tokens = 2**12 if device.type == "cpu" else 2**15
    batch_size = max(1, min(batch_tokens // seq_len, 2**26 // (seq_len * vocab)))
    batches = source.val_batches(seq_len, n_tokens=eval_tokens, batch_size=batch_size)
    for index in range(rank, len(batches), world):
        batch = batches[index].to(device)
        with accelerator.autocast():
            logits = logits_of(net(batch[:, :-1]))
        targets = batch[:, 1:]
        per_window = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                                     reduction="none").view(targets.shape).sum(dim=1)  # fmt: skip
        half = (torch.arange(len(batch), device=device) + index * batch_size) % 2  # the window's global parity
        total[:, 0] += torch.zeros(2, dtype=torch.float64, device=device).index_add_(0, half, per_window.double())
        total[:, 1] += torch.bincount(half, minlength=2).double() * targets.shape[1]
        squares = (per_window.double() / targets.shape[1]).square()
        total[:, 2] += torch.zeros(2, dtype=torch.float64, device=device).index_add_(0, half, squares)
    if world > 1:
        total = accelerator.reduce(total, "sum")
    loss_sum, tokens, squares = total.sum(dim=0).tolist()
    n = tokens / seq_len  # windows: each holds seq_len targets
    mean = loss_sum / tokens if tokens else math.nan
    variance = max(0.0, (squares - n * mean * mean) / (n - 1)) if n > 1 else 0.0
    return mean, (total[:, 0] / total[:, 1]).tolist(), math.sqrt(variance / n) if n else 0.0
