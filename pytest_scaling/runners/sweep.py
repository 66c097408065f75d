"""Sweeps: a ladder of sizes x seeds trained through the run cache, summarised per size."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import numpy as np

from ..data import DataSource, get_source
from ..errors import ScalingDataError
from ..training import train
from ..training.identity import code_identity, probe_model
from ..training.model import LadderRung, flops_per_token, resolve_factory
from ..training.spec import ModelSpec
from ..training.train import COMPUTE_METHOD, RunRecord, TrainConfig
from ..values import multipliers, positive_number
from .cache import RunCache
from .parallel import Run, RunProgress, train_runs
from .ray_backend import RayBackend
from .records import SizePoint, SweepResult
from .tracking import Tracking, default_directory

#: Config fields that do not make two runs' curves incomparable (budget, seed, where and how fast).
_PER_RUN_FIELDS = ("tokens", "seed", "device", "threads", "lr_multiplier")


class NothingToTrain(ScalingDataError):
    """``max_params`` excludes every size of a sweep (the pytest plugin skips the test with this reason)."""


def trainer_settings(config: TrainConfig, environment: TrainConfig | None = None) -> dict:
    """The part of a config that must match for two sweeps' losses to be comparable: its fields (device and
    precision as ``environment`` resolved them where the runs trained; default: here), and the constants of
    the default rules that decide a run's batch, betas and learning rate (``rules``)."""
    settings = (environment or config.resolve_environment()).to_dict()
    for name in _PER_RUN_FIELDS:
        settings.pop(name, None)
    settings["rules"] = {
        "target_steps": train.TARGET_STEPS, "batch_seqs": [train.MIN_BATCH_SEQS, train.MAX_BATCH_SEQS],
        "small_batch_tokens": train.SMALL_BATCH_TOKENS, "lr": [train.LR_COEF, train.LR_EXPONENT, train.MAX_LR],
        "lr_ref_batch_seqs": train.LR_REF_BATCH_SEQS,
    }  # fmt: skip
    return settings


def _specs(sizes, defaults: dict) -> list[tuple[ModelSpec, int | None]]:
    """(spec, tokens or None) per size; sizes are dicts, ModelSpecs or ladder rungs."""
    if not sizes:
        raise ScalingDataError("a sweep needs at least one size")
    out = []
    for size in sizes:
        if isinstance(size, LadderRung):
            out.append((size.spec, size.tokens))
        elif isinstance(size, ModelSpec):
            out.append((size, None))
        elif isinstance(size, dict):
            out.append((ModelSpec.from_dict({**defaults, **size}), None))
        else:
            raise ScalingDataError(f"a size must be a dict, ModelSpec or LadderRung, got {type(size).__name__}")
    return out


def _positive(name: str, value) -> float:
    """``value`` as a float if it is a finite number > 0, else a one-line error naming ``name``."""
    try:
        return positive_number(value if isinstance(value, int | float) else None)
    except ValueError:
        raise ScalingDataError(f"{name} must be a finite number > 0, got {value!r}") from None


def _seeds(seeds) -> list[int]:
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ScalingDataError(f"seeds must be >= 1, got {seeds}")
        return list(range(seeds))
    given = seeds
    try:
        seeds = [] if isinstance(seeds, str | bytes) else list(seeds)
    except TypeError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) and not isinstance(s, bool)
                                                              for s in seeds):  # fmt: skip
        raise ScalingDataError(f"seeds must be a count or a list of distinct ints, got {given!r}")
    return seeds


def run_sweep(
    factory,
    sizes,
    *,
    tokens_per_param: float | None = None,
    flops: float | list[float] | None = None,
    seeds: int | list[int] = 1,
    data: str | DataSource | None = None,
    cache: RunCache | None = None,
    max_params: int | None = None,
    workers: int | str = "auto",
    backend: str | RayBackend = "local",
    progress: Callable[[RunProgress], None] | None = None,
    lr_grid: list[float] | None = None,
    lr_search_sizes: int | None = None,
    tracker: str | Tracking | None = None,
    **trainer_options,
) -> SweepResult:
    """Train ``factory`` at every size for every seed (through ``cache``) and summarise per size.

    Token budget per size: ``tokens_per_param`` x non-embedding parameters (default 20, Chinchilla), or
    the compute budget ``flops`` (one for all sizes, or one per size) divided by the FLOPs per token;
    ladder rungs carry their own budget. ``max_params`` skips larger sizes (listed in ``skipped``).
    ``workers``: processes that train the runs side by side (``"auto"``: one per CPU core for a sweep
    worth it, see :mod:`pytest_scaling.runners.parallel`; 1: all in this process). ``backend``: ``"local"`` (this
    process and its workers) or ``"ray"`` / a :class:`~pytest_scaling.runners.ray_backend.RayBackend` (each run a Ray
    task: one GPU, or ``cpus_per_run`` CPUs). ``progress`` is called with a
    :class:`~pytest_scaling.runners.parallel.RunProgress` as each run that was not in the cache finishes.
    ``trainer_options`` are :class:`~pytest_scaling.training.train.TrainConfig` fields (``lr``, ``schedule``...).

    ``lr_grid`` (e.g. ``[0.25, 0.5, 1, 2]``): every seed of every size also trains at each multiplier of the
    peak learning rate (the rule's, or ``lr``). A size's multiplier is the one with the lowest mean loss over
    its seeds on one half of the validation windows (the even ones); its losses are those of that
    multiplier's runs on the other half, so the minimum over noisy losses does not bias them. A warning
    names the sizes whose best multiplier is at an edge of the grid. ``lr_search_sizes=K`` searches only
    the K smallest sizes (by compute) and trains the others at the multiplier chosen at the largest of them.

    ``tracker``: ``"tensorboard"``, ``"mlflow"``, ``"wandb"`` (under ``.scaling-runs/`` beside the cache) or a
    :class:`~pytest_scaling.runners.tracking.Tracking`: every run's curve is logged there once the sweep is done,
    cached runs included (see :mod:`pytest_scaling.runners.tracking`).
    """
    if tokens_per_param is not None and flops is not None:
        raise ScalingDataError("give tokens_per_param or flops, not both")
    if tokens_per_param is not None:
        tokens_per_param = _positive("tokens_per_param", tokens_per_param)
    if max_params is not None:
        max_params = _positive("max_params", max_params)
    unknown = sorted(set(trainer_options) - {f.name for f in fields(TrainConfig)} - {"tokens", "seed"})
    if unknown or {"tokens", "seed"} & set(trainer_options):
        raise ScalingDataError(f"unknown or reserved trainer options {unknown or ['tokens', 'seed']}")
    grid = _lr_grid(lr_grid)
    if grid is not None and "lr_multiplier" in trainer_options:
        raise ScalingDataError("give lr_grid or lr_multiplier, not both")
    if lr_search_sizes is not None and (grid is None or isinstance(lr_search_sizes, bool)
                                        or not isinstance(lr_search_sizes, int) or lr_search_sizes < 1):  # fmt: skip
        raise ScalingDataError(f"lr_search_sizes must be an int >= 1 with an lr_grid, got {lr_search_sizes!r}")
    tracking = _tracking(tracker, cache)
    seed_list = _seeds(seeds)
    source = get_source(data)
    plan, skipped = _plan(factory, _specs(sizes, {"vocab_size": source.vocab_size}), tokens_per_param, flops,
                          max_params)  # fmt: skip
    train_sizes = functools.partial(_train_sizes, plan, factory, seed_list, trainer_options, source, cache,
                                    workers, progress, backend)  # fmt: skip
    by_compute = sorted(range(len(plan)), key=lambda i: plan[i].compute)
    searched = by_compute[: lr_search_sizes or len(plan)]
    points, runs = train_sizes(searched, grid)
    if len(searched) < len(plan):
        carried = points[searched[-1]].lr_multiplier
        more_points, more_runs = train_sizes([i for i in by_compute if i not in points], [carried])
        points, runs = {**points, **more_points}, runs + more_runs
    points = [points[i] for i in range(len(plan))]
    _warn_diverged(runs)
    if grid:
        _warn_grid_edges([points[i] for i in searched], grid)
    result = SweepResult(code_identity(factory), _data_identity(source),
                         _settings(trainer_options, runs[0], grid, lr_search_sizes), points, skipped, runs)  # fmt: skip
    if tracking is not None:
        tracking.log(runs, label=result.factory.partition("@")[0].rpartition(".")[2])
    return result


@dataclass(frozen=True)
class _PlannedSize:
    """One size to train: its spec, token budget, training compute and behavioural fingerprint."""

    spec: ModelSpec
    tokens: int
    compute: float
    fingerprint: str


def _plan(factory, specs: list[tuple[ModelSpec, int | None]], tokens_per_param: float | None,
          flops, max_params: float | None) -> tuple[list[_PlannedSize], list[dict]]:  # fmt: skip
    """Probe every size once (the model's checks and fingerprint) and give it its token budget; sizes above
    ``max_params`` are skipped. Returns (the sizes to train, the skipped sizes)."""
    build = resolve_factory(factory)
    budgets = flops if isinstance(flops, list | tuple) else [flops] * len(specs)
    if len(budgets) != len(specs):
        raise ScalingDataError(f"{len(budgets)} compute budgets for {len(specs)} sizes")
    budgets = [None if b is None else _positive("flops", b) for b in budgets]
    plan, skipped = [], []
    for (spec, rung_tokens), budget in zip(specs, budgets, strict=True):
        probe = probe_model(build, spec)
        counted = probe.params
        if counted.non_embedding < 1:
            raise ScalingDataError(f"size {spec.label}: the model has 0 non-embedding parameters (all "
                                   f"{counted.total:,} are embeddings or the output head), so it has no place on "
                                   "a scaling law's axis N; give it layers between the embedding and the head"
                                   )  # fmt: skip
        if max_params is not None and counted.non_embedding > max_params:
            skipped.append({**spec.to_dict(), "params": counted.non_embedding})
            continue
        per_token = flops_per_token(spec, COMPUTE_METHOD, params=counted)
        if rung_tokens is not None and tokens_per_param is None and budget is None:
            tokens = rung_tokens
        elif budget is not None:
            tokens = round(budget / per_token)
        else:
            tokens = round((20.0 if tokens_per_param is None else tokens_per_param) * counted.non_embedding)
        if tokens < spec.seq_len:
            raise ScalingDataError(f"size {spec.label}: a budget of {tokens:,} training tokens is less than one "
                                   f"sequence of {spec.seq_len}; raise tokens_per_param or flops")  # fmt: skip
        plan.append(_PlannedSize(spec, tokens, per_token * tokens, probe.fingerprint))
    if not plan:
        smallest = min(s["params"] for s in skipped)
        raise NothingToTrain(f"every size has more than max_params={max_params:g} non-embedding parameters "
                             f"(the smallest has {smallest:,}); nothing to train")  # fmt: skip
    return plan, skipped


def _train_sizes(plan: list[_PlannedSize], factory, seeds: list[int], trainer_options: dict, source: DataSource,
                 cache: RunCache | None, workers, progress, backend, sizes: list[int],
                 lr_multipliers: list[float] | None) -> tuple[dict[int, SizePoint], list[RunRecord]]:  # fmt: skip
    """Train every seed of the planned ``sizes`` (indices into ``plan``), at each of ``lr_multipliers``
    when given; returns each size's point and the runs, in order."""
    scaled = [{"lr_multiplier": m} for m in lr_multipliers] if lr_multipliers else [{}]
    runs = [Run(factory, size.spec, TrainConfig(tokens=size.tokens, seed=seed, **trainer_options, **m),
                size.compute, size.fingerprint)
            for size in (plan[i] for i in sizes) for m in scaled for seed in seeds]  # fmt: skip
    records = train_runs(runs, source, cache, workers, progress, backend)
    per_size = len(seeds) * len(scaled)
    points = {i: _size_point(records[k * per_size : (k + 1) * per_size], lr_multipliers, len(seeds),
                             source.floor_nats_per_token(plan[i].spec.seq_len))
              for k, i in enumerate(sizes)}  # fmt: skip
    return points, records


def _settings(trainer_options: dict, ran: RunRecord, grid: list[float] | None, lr_search_sizes: int | None) -> dict:
    """The sweep's trainer settings, with device and precision as resolved where ``ran`` trained (a Ray
    cluster's GPUs)."""
    config = TrainConfig(tokens=1, **trainer_options)
    environment = replace(config, device=ran.config.device, precision=ran.config.precision)
    return {**trainer_settings(config, environment), "lr_grid": grid, "lr_search_sizes": lr_search_sizes}


def _data_identity(source: DataSource) -> dict:
    """The data's identity, with the floor a fitted E is checked against where the source knows it."""
    data = dict(source.identity)
    if source.entropy_nats_per_token is not None:
        data["entropy_nats_per_token"] = round(source.entropy_nats_per_token, 4)
    return data


def _tracking(tracker: str | Tracking | None, cache: RunCache | None) -> Tracking | None:
    """The tracker to log to: a :class:`Tracking` as given, or one of ``kind`` under ``.scaling-runs/``
    beside the cache (the working directory without one)."""
    if tracker is None or isinstance(tracker, Tracking):
        return tracker
    if not isinstance(tracker, str):
        raise ScalingDataError(f"tracker must be a name or a Tracking, got {type(tracker).__name__}")
    return Tracking(tracker, default_directory(cache.root if cache is not None else None))


def _lr_grid(grid) -> list[float] | None:
    """The sorted multipliers of ``lr_grid``, or None; a one-line error for anything else."""
    if grid is None:
        return None
    try:
        return multipliers(grid)
    except ValueError:
        raise ScalingDataError(
            f"lr_grid must be distinct finite numbers > 0, e.g. [0.25, 0.5, 1, 2]; got {grid!r}"
        ) from None


def _size_point(records: list[RunRecord], grid: list[float] | None, n_seeds: int, floor: float | None) -> SizePoint:
    """One size's summary; with ``grid``, of the multiplier chosen on the even validation windows, with the
    losses of its runs on the odd ones (whose standard error is sqrt(2) times the whole set's)."""
    chosen, scores = records, None
    if grid:
        by_multiplier = [records[i : i + n_seeds] for i in range(0, len(records), n_seeds)]
        if any(r.loss_halves is None for r in records):
            raise ScalingDataError("a cached run has no validation halves (recorded by an older version); "
                                   "re-train with --scaling-retrain")  # fmt: skip
        scores = [[m, float(np.mean([r.loss_halves[0] for r in runs]))]
                  for m, runs in zip(grid, by_multiplier, strict=True)]  # fmt: skip
        best = min(range(len(grid)), key=lambda i: (scores[i][1], abs(math.log(grid[i]))))  # ties: nearest to 1
        chosen = by_multiplier[best]
    first = chosen[0]
    lrs = {r.config.lr for r in chosen}
    return SizePoint(
        spec=first.spec, params=first.non_embedding_params, total_params=first.params, tokens=first.tokens,
        compute=first.compute, losses=[r.loss_halves[1] if grid else r.loss for r in chosen],
        diverged=sum(r.diverged for r in chosen), lr=lrs.pop() if len(lrs) == 1 else None,
        lr_multiplier=first.config.lr_multiplier if grid else None, lr_scores=scores,
        loss_se=[None if r.loss_se is None else r.loss_se * (math.sqrt(2) if grid else 1) for r in chosen],
        floor=floor,
    )  # fmt: skip


def _warn_grid_edges(points: list[SizePoint], grid: list[float]) -> None:
    edges = [f"{p.label} (x{p.lr_multiplier:g})" for p in points
             if len(grid) > 1 and p.lr_multiplier in (grid[0], grid[-1]) and math.isfinite(p.loss)]  # fmt: skip
    if edges:
        warnings.warn(f"the best learning-rate multiplier is at an edge of lr_grid {grid} at {', '.join(edges)}: "
                      "the optimum may lie outside it; extend the grid", stacklevel=3)  # fmt: skip


def _warn_diverged(runs: list[RunRecord]) -> None:
    diverged = [f"{r.spec.label} seed {r.seed}" for r in runs if r.diverged]
    if diverged:
        warnings.warn(f"{len(diverged)} of {len(runs)} runs diverged (loss not finite, or above a uniform "
                      f"prediction): {', '.join(diverged)}; lower the learning rate or check the model",
                      stacklevel=3)  # fmt: skip
