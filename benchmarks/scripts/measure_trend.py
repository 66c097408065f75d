"""Calibrate the report's trend sentence on the null: how often a re-seeded reference gets a trend claimed.

Run: ``python benchmarks/scripts/measure_trend.py [--seed-sets 20] [--constructed 2000]``.
Prints figures; asserts nothing. Trained runs go through the run cache (``.scaling/``; the same re-seeded
references as ``measure_gate.py``, so one warms the other).

* Trained, against the committed baseline: each re-seeded pair (seeds 1000 + 2k, 1001 + 2k) gated with
  ``assert_on_curve`` against ``scaling_baselines/reference.json``; its report's ``crossover.trend``.
* Trained, pair against pair: every two re-seeded pairs, one recorded as the baseline in memory, the other
  gated against it (``k (k - 1) / 2`` comparisons, not independent of each other).
* Constructed, from the measured noise: sweeps of the reference's mean loss per size times a normal seed
  deviation with the seed noise fitted to every trained seed (``fit_seed_noise``), two seeds a side; the
  null (the same means) and a gap that grows by ``--slope`` per 10x compute.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
import numpy as np
from suite import SIZES, SWEEP

from pytest_scaling import Baseline, RunCache, ScalingGateError, SweepResult, assert_on_curve, run_sweep
from pytest_scaling.fitting.noise import fit_seed_noise
from pytest_scaling.gate.gate import GateContext

ROOT = Path(__file__).resolve().parents[2]


def trend(candidate: SweepResult, baseline: Baseline) -> str:
    """The crossover trend the gate reports for ``candidate`` against ``baseline``."""
    candidate = replace(candidate, context=GateContext())
    try:
        assert_on_curve(candidate, baseline)
    except ScalingGateError:
        pass
    return candidate.context.reports[-1].crossover.trend


def constructed(template: SweepResult, means: np.ndarray, noise, rng, shift: np.ndarray) -> SweepResult:
    """``template``'s sizes with two seeds each at ``means * shift``, deviating by the fitted seed noise."""
    sd = noise.at(template.compute)
    points = [replace(p, losses=list(m * s * np.exp(rng.normal(0, d, 2)))) for p, m, s, d in
              zip(template.points, means, shift, sd, strict=True)]  # fmt: skip
    return replace(template, points=points, runs=[])


def tally(trends: list[str]) -> str:
    n = len(trends)
    counts = {k: trends.count(k) for k in ("none", "growing", "shrinking")}
    return f"none {counts['none']} of {n} ({100 * counts['none'] / n:.1f}%), " + ", ".join(
        f"{k} {v}" for k, v in counts.items() if k != "none"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-sets", type=int, default=20)
    parser.add_argument("--constructed", type=int, default=2000, help="constructed sweep pairs per case")
    parser.add_argument("--slope", type=float, default=0.01, help="the constructed trend, per 10x compute")
    args = parser.parse_args()
    start = time.perf_counter()
    cache = RunCache(ROOT / ".scaling")
    committed = Baseline.load(ROOT / "scaling_baselines" / "reference.json")
    pairs = [[1000 + 2 * k, 1001 + 2 * k] for k in range(args.seed_sets)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sweeps = [run_sweep("gpt", SIZES, seeds=seeds, cache=cache, **SWEEP) for seeds in pairs]
        against_committed = [trend(s, committed) for s in sweeps]
        print(f"trained, {len(sweeps)} re-seeded pairs against the committed baseline: {tally(against_committed)}")
        baselines = [Baseline.from_sweep("reference", s) for s in sweeps]
        pairwise = [trend(sweeps[i], baselines[j]) for i, j in itertools.combinations(range(len(sweeps)), 2)]
        print(f"trained, pair against pair: {tally(pairwise)}")
        losses = [[x for s in sweeps for x in s.points[k].losses] for k in range(len(SIZES))]
        noise = fit_seed_noise(sweeps[0].compute, losses)
        means = np.array([np.mean(runs) for runs in losses])
        print("seed noise per size (fitted to every trained seed): "
              + ", ".join(f"{100 * float(n):.2f}%" for n in noise.at(sweeps[0].compute)))  # fmt: skip
        rng = np.random.default_rng(0)
        decades = np.log10(sweeps[0].compute / sweeps[0].compute[0])
        cases = [("null", np.ones(len(SIZES))), (f"gap {args.slope:+.1%} per 10x", np.exp(args.slope * decades))]
        for name, shift in cases:
            trends = []
            for _ in range(args.constructed):
                base = Baseline.from_sweep("reference", constructed(sweeps[0], means, noise, rng, np.ones(len(SIZES))))
                trends.append(trend(constructed(sweeps[0], means, noise, rng, shift), base))
            print(f"constructed, {name}: {tally(trends)}")
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
