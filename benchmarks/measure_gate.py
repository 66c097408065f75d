"""Measure the gate on trained models: its false-positive rate and its power against known regressions.

Run: ``python benchmarks/measure_gate.py [--part fp|power|all] [--seed-sets 20]``. Prints figures; asserts
nothing. Every run goes through the run cache (``.scaling/``), so an interrupted measurement resumes.

* False positives: the reference GPT re-trained with ``--seed-sets`` fresh pairs of seeds, each pair gated
  with ``assert_on_curve`` against the committed baseline ``scaling_baselines/reference.json``.
* Power: regressions of known size, their true loss gap measured against the reference with
  ``--power-seeds`` seeds, and the fraction of seed pairs the gate catches. The gate compares at equal
  compute, so a regression must cost loss per FLOP: a learning rate fixed below the size rule does; a
  narrower MLP (less compute per token) mostly does not, and is listed to show the difference.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from suite import SIZES, SWEEP

from pytest_scaling import Baseline, RunCache, ScalingGateError, assert_on_curve, run_sweep

ROOT = Path(__file__).resolve().parents[1]
# name: (size change, trainer options); the rule's learning rates run from 2.0e-2 (3.1k) to 9.3e-3 (98.6k)
REGRESSIONS = {
    "lr fixed at 3e-3": ({}, {"lr": 3e-3}),
    "lr fixed at 1.5e-3": ({}, {"lr": 1.5e-3}),
    "mlp_ratio=2": ({"mlp_ratio": 2.0}, {}),
}


def gate(result, baseline: Baseline) -> bool:
    """Whether ``assert_on_curve`` fails the sweep."""
    try:
        assert_on_curve(result, baseline)
    except ScalingGateError:
        return True
    return False


def false_positives(baseline: Baseline, cache: RunCache, sets: int) -> None:
    fails = 0
    for k in range(sets):
        seeds = [1000 + 2 * k, 1001 + 2 * k]
        result = run_sweep("gpt", SIZES, seeds=seeds, cache=cache, **SWEEP)
        failed = gate(result, baseline)
        fails += failed
        worst = max(p.loss / base_p - 1 for p, base_p in zip(result.points, baseline.curve.anchors[0], strict=True))
        print(f"  seeds {seeds}: {'FAILED' if failed else 'passed'} (worst size deviation {100 * worst:+.2f}%)")
    print(f"false positives: {fails} of {sets} re-seeded references failed ({100 * fails / sets:.1f}%; goal <= 5%)")


def power(baseline: Baseline, cache: RunCache, seeds: int) -> None:
    reference = run_sweep("gpt", SIZES, seeds=list(range(2000, 2000 + seeds)), cache=cache, **SWEEP)
    for name, (change, options) in REGRESSIONS.items():
        sizes = [{**size, **change} for size in SIZES]
        runs = run_sweep("gpt", sizes, seeds=list(range(2000, 2000 + seeds)), cache=cache, **SWEEP, **options)
        gaps = [p.loss / r.loss - 1 for p, r in zip(runs.points, reference.points, strict=True)]
        caught = 0
        pairs = [[2000 + i, 2001 + i] for i in range(0, seeds - 1, 2)]
        for pair in pairs:
            candidate = run_sweep("gpt", sizes, seeds=pair, cache=cache, **SWEEP, **options)
            candidate.trainer = baseline.trainer  # the lr is the regression under test, not a setting mismatch
            caught += gate(candidate, baseline)
        print(f"{name}: true loss gap per size {', '.join(f'{100 * g:+.1f}%' for g in gaps)} "
              f"(mean {100 * np.mean(gaps):+.1f}%, same size, {seeds} seeds); caught {caught} of {len(pairs)} pairs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("fp", "power", "all"), default="all")
    parser.add_argument("--seed-sets", type=int, default=20)
    parser.add_argument("--power-seeds", type=int, default=6)
    args = parser.parse_args()
    baseline = Baseline.load(ROOT / "scaling_baselines" / "reference.json")
    cache = RunCache(ROOT / ".scaling")
    start = time.perf_counter()
    if args.part in ("fp", "all"):
        false_positives(baseline, cache, args.seed_sets)
    if args.part in ("power", "all"):
        power(baseline, cache, args.power_seeds)
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
