"""Measure the gate on trained models: its false-positive rate and its power against known regressions.

Run: ``python benchmarks/measure_gate.py [--part fp|all] [--seed-sets 20] [--lr-factors 0.2,0.1]``.
Prints figures; asserts nothing. Every run goes through the run cache (``.scaling/``), so an interrupted
measurement resumes.

* False positives: the reference GPT re-trained with ``--seed-sets`` fresh pairs of seeds, each pair gated
  with ``assert_on_curve`` against the committed baseline ``scaling_baselines/reference.json``.
* Power: regressions of known size, each re-trained with the same ``--seed-sets`` seed pairs and gated
  the same way; its true loss gap per size is measured against the false-positive part's reference runs
  (the same seeds: ``2 * --seed-sets`` runs per size on each side). The gate compares at equal compute, so
  a regression must cost loss per FLOP: a peak learning rate scaled below the size rule does (by a
  factor: the gap grows as the factor falls).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from suite import SIZES, SWEEP

from pytest_scaling import Baseline, RunCache, ScalingGateError, SweepResult, assert_on_curve, run_sweep

ROOT = Path(__file__).resolve().parents[1]
LR_FACTORS = "0.2,0.1"  # regressions: the peak learning rate at this factor times the size rule


def gate(result, baseline: Baseline) -> bool:
    """Whether ``assert_on_curve`` fails the sweep."""
    try:
        assert_on_curve(result, baseline)
    except ScalingGateError:
        return True
    return False


def seed_pairs(sets: int) -> list[list[int]]:
    return [[1000 + 2 * k, 1001 + 2 * k] for k in range(sets)]


def false_positives(baseline: Baseline, cache: RunCache, sets: int) -> SweepResult:
    """Gate every re-seeded reference; returns all of their runs pooled per size."""
    fails, pooled = 0, None
    for seeds in seed_pairs(sets):
        result = run_sweep("gpt", SIZES, seeds=seeds, cache=cache, **SWEEP)
        pooled = pool(pooled, result)
        failed = gate(result, baseline)
        fails += failed
        worst = max(p.loss / base_p - 1 for p, base_p in zip(result.points, baseline.curve.anchors[0], strict=True))
        print(f"  seeds {seeds}: {'FAILED' if failed else 'passed'} (worst size deviation {100 * worst:+.2f}%)")
    print(f"false positives: {fails} of {sets} re-seeded references failed ({100 * fails / sets:.1f}%; goal <= 5%)")
    return pooled


def pool(into: SweepResult | None, result: SweepResult) -> SweepResult:
    if into is None:
        return replace(result, points=[replace(p, losses=list(p.losses)) for p in result.points])
    for mine, theirs in zip(into.points, result.points, strict=True):
        mine.losses += theirs.losses
    return into


def scaled_lr_sweep(factor: float, seeds: list[int], reference: SweepResult, cache: RunCache) -> SweepResult:
    """The reference ladder trained at ``factor`` times each size's rule learning rate."""
    rule_lr = {json.dumps(r.spec, sort_keys=True): r.config["lr"] for r in reference.runs}
    points = []
    for size, ref in zip(SIZES, reference.points, strict=True):
        lr = factor * rule_lr[json.dumps(ref.spec, sort_keys=True)]
        one = run_sweep("gpt", [size], seeds=seeds, cache=cache, lr=lr, **SWEEP)
        points += one.points
    return replace(reference, points=points, runs=[])  # same trainer settings: the lr is the regression


def power(baseline: Baseline, cache: RunCache, sets: int, reference: SweepResult, factors: list[float]) -> None:
    for factor in factors:
        caught, pooled = 0, None
        for seeds in seed_pairs(sets):
            candidate = scaled_lr_sweep(factor, seeds, reference, cache)
            pooled = pool(pooled, candidate)
            caught += gate(candidate, baseline)
        gaps = [p.loss / r.loss - 1 for p, r in zip(pooled.points, reference.points, strict=True)]
        print(f"lr x{factor} of the rule: true loss gap per size {', '.join(f'{100 * g:+.1f}%' for g in gaps)} "
              f"(mean {100 * np.mean(gaps):+.1f}%; {2 * sets} seeds a side); caught {caught} of {sets} seed pairs "
              f"({100 * caught / sets:.0f}%)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("fp", "all"), default="all", help="fp: false positives only")
    parser.add_argument("--seed-sets", type=int, default=20)
    parser.add_argument("--lr-factors", default=LR_FACTORS, help=f"comma-separated (default {LR_FACTORS})")
    args = parser.parse_args()
    baseline = Baseline.load(ROOT / "scaling_baselines" / "reference.json")
    cache = RunCache(ROOT / ".scaling")
    start = time.perf_counter()
    reference = false_positives(baseline, cache, args.seed_sets)
    if args.part == "all":
        power(baseline, cache, args.seed_sets, reference, [float(f) for f in args.lr_factors.split(",")])
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
