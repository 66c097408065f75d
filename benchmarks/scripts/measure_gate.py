"""Measure the gate on trained models: its false-positive rate and its power against known regressions.

Run: ``python benchmarks/scripts/measure_gate.py [--part fp|all] [--seed-sets 20] [--regressions lr:0.2,context:6]
[--lr-grid 0.5,1,2]``.
Prints figures; asserts nothing. Every run goes through the run cache (``.scaling/``), so an interrupted
measurement resumes.

* False positives: the reference GPT re-trained with ``--seed-sets`` fresh pairs of seeds, each pair gated
  with ``assert_on_curve`` against the committed baseline ``scaling_baselines/reference.json``.
* Power: regressions of known size, each re-trained with the same ``--seed-sets`` seed pairs and gated
  the same way; its true loss gap per size is measured against the false-positive part's reference runs
  (the same seeds: ``2 * --seed-sets`` runs per size on each side). The gate compares at equal compute, so
  a regression must cost loss per FLOP. Two kinds: ``lr:F``, the reference at F times each size's rule
  learning rate (on the default language its cost is largest at the smallest sizes), and ``context:W``,
  the reference whose attention sees only the last W tokens (``variants.short_context``; a cost spread
  over every size).
* ``--lr-grid``: every sweep searches its learning rate per size over the grid (``lr_grid``), and the
  baseline is the reference's searched sweep (seeds 0 and 1), recorded in memory: the false-positive rate
  and power of searched sweeps (``lr:`` regressions make no sense there: the search undoes them).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
import numpy as np
from suite import REFERENCE_SEEDS, SIZES, SWEEP
from variants import short_context

from pytest_scaling import Baseline, RunCache, ScalingGateError, SweepResult, assert_on_curve, run_sweep

ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = "lr:0.2,context:6"


def gate(result, baseline: Baseline) -> bool:
    """Whether ``assert_on_curve`` fails the sweep."""
    try:
        assert_on_curve(result, baseline)
    except ScalingGateError:
        return True
    return False


def seed_pairs(sets: int) -> list[list[int]]:
    return [[1000 + 2 * k, 1001 + 2 * k] for k in range(sets)]


def false_positives(baseline: Baseline, cache: RunCache, sets: int, sweep: dict) -> SweepResult:
    """Gate every re-seeded reference; returns all of their runs pooled per size."""
    fails, pooled = 0, None
    for seeds in seed_pairs(sets):
        result = run_sweep("gpt", SIZES, seeds=seeds, cache=cache, **sweep)
        pooled = pool(pooled, result)
        failed = gate(result, baseline)
        fails += failed
        worst = max(p.loss / base_p - 1 for p, base_p in zip(result.points, baseline.curve.anchors[0], strict=True))
        print(f"  seeds {seeds}: {'FAILED' if failed else 'passed'} (worst size deviation {100 * worst:+.2f}%)",
              flush=True)  # fmt: skip
    print(f"false positives: {fails} of {sets} re-seeded references failed ({100 * fails / sets:.1f}%; goal <= 1%)")
    return pooled


def pool(into: SweepResult | None, result: SweepResult) -> SweepResult:
    if into is None:
        return replace(result, points=[replace(p, losses=list(p.losses)) for p in result.points])
    for mine, theirs in zip(into.points, result.points, strict=True):
        mine.losses += theirs.losses
    return into


def regressed_sweep(kind: str, value: float, seeds: list[int], reference: SweepResult, cache: RunCache,
                    sweep: dict = SWEEP):  # fmt: skip
    """The reference ladder with one regression: ``lr`` (the rule's LR times ``value``) or ``context``
    (attention over the last ``value`` tokens)."""
    if kind == "context":
        return run_sweep(functools.partial(short_context, window=int(value)), SIZES, seeds=seeds, cache=cache,
                         **sweep)  # fmt: skip
    if "lr_grid" in sweep:
        raise SystemExit("an lr: regression under --lr-grid: the search undoes it; use context:W")
    rule_lr = {r.spec: r.config.lr for r in reference.runs}
    points = []
    for size, ref in zip(SIZES, reference.points, strict=True):
        lr = value * rule_lr[ref.spec]
        points += run_sweep("gpt", [size], seeds=seeds, cache=cache, lr=lr, **SWEEP).points
    return replace(reference, points=points, runs=[])  # same trainer settings: the lr is the regression


def power(baseline: Baseline, cache: RunCache, sets: int, reference: SweepResult, regressions: list[str],
          sweep: dict) -> None:  # fmt: skip
    for regression in regressions:
        kind, _, value = regression.partition(":")
        caught, pooled = 0, None
        for seeds in seed_pairs(sets):
            candidate = regressed_sweep(kind, float(value), seeds, reference, cache, sweep)
            pooled = pool(pooled, candidate)
            caught += gate(candidate, baseline)
        gaps = [p.loss / r.loss - 1 for p, r in zip(pooled.points, reference.points, strict=True)]
        print(f"{regression}: true loss gap per size {', '.join(f'{100 * g:+.1f}%' for g in gaps)} "
              f"(mean {100 * np.mean(gaps):+.1f}%; {2 * sets} seeds a side); caught {caught} of {sets} seed pairs "
              f"({100 * caught / sets:.0f}%)", flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("fp", "all"), default="all", help="fp: false positives only")
    parser.add_argument("--seed-sets", type=int, default=20)
    parser.add_argument("--regressions", default=REGRESSIONS,
                        help=f"comma-separated lr:FACTOR or context:WINDOW (default {REGRESSIONS})")  # fmt: skip
    parser.add_argument("--lr-grid", help="search every sweep's learning rate over these multipliers, e.g. 0.5,1,2")
    args = parser.parse_args()
    cache = RunCache(ROOT / ".scaling")
    start = time.perf_counter()
    sweep = dict(SWEEP)
    if args.lr_grid:
        sweep["lr_grid"] = [float(m) for m in args.lr_grid.split(",")]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # edge-of-grid warnings
            reference_sweep = run_sweep("gpt", SIZES, seeds=REFERENCE_SEEDS, cache=cache, **sweep)
        baseline = Baseline.from_sweep("reference", reference_sweep)
        print(f"baseline: the reference searched over {sweep['lr_grid']}, seeds {REFERENCE_SEEDS}: multipliers "
              f"{[p.lr_multiplier for p in reference_sweep.points]}")  # fmt: skip
    else:
        baseline = Baseline.load(ROOT / "scaling_baselines" / "reference.json")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # edge-of-grid and tuning warnings: verdicts are counted
        reference = false_positives(baseline, cache, args.seed_sets, sweep)
        if args.part == "all":
            power(baseline, cache, args.seed_sets, reference, args.regressions.split(","), sweep)
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
