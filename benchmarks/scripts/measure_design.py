"""Seed designs for the gate, on sweeps constructed from the trained noise: false alarms, power at a given mean
gap, and the CPU-seconds each design costs.

Run: ``python benchmarks/scripts/measure_design.py [--seed-sets 20] [--designs "2,2,2,2,2;4,2,2,2,2"]
[--baseline-seeds 8] [--trials 1000] [--gap 0.01]``. Prints a table; asserts nothing.

The truth at each size of the shipped ladder is the mean loss of the reference's trained runs with seeds
1000 .. 1000 + 2 * seed-sets - 1 (``measure_gate.py`` trains them; here they come from the run cache, and
any missing one is trained), its noise the relative standard deviation of those runs, and a run's cost the
mean wall seconds they took. A design gives the candidate's seeds at each size; the baseline has
``--baseline-seeds`` at every size (0: the design's). Each trial draws a fresh baseline and a candidate from
lognormal noise around the truth (the candidate times ``1 + gap`` at every size for power) and gates the
candidate with ``assert_on_curve``'s statistics and rule (``judge_on_curve``), on the measured noise, with the
truth's departures from the gate's curve form included. Trials are independent, so a count of false alarms bounds
the rate (Clopper-Pearson). A design's cost is the seconds of the candidate sweep (a PR trains that; the
baseline is recorded once).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
import numpy as np
from measure_gate import pool, seed_pairs
from scipy.stats import beta
from suite import BASELINE_SEEDS, SIZES, SWEEP
from tabulate import tabulate

from pytest_scaling import Baseline, RunCache, SweepResult, run_sweep
from pytest_scaling.gate.compare import compare, judge_on_curve
from pytest_scaling.runners.records import SizePoint

ROOT = Path(__file__).resolve().parents[2]


def measured(sets: int, cache: RunCache) -> tuple[list[SizePoint], np.ndarray, np.ndarray, np.ndarray]:
    """The reference's points (shape, compute), and per size: mean loss, relative seed std, seconds per run."""
    pooled, seconds = None, [[] for _ in SIZES]
    for seeds in seed_pairs(sets):
        result = run_sweep("gpt", SIZES, seeds=seeds, cache=cache, **SWEEP)
        pooled = pool(pooled, result)
        specs = [p.spec for p in result.points]
        for run in result.runs:
            seconds[specs.index(run.spec)].append(run.seconds)
    noise = [np.std(np.log(p.losses), ddof=1) for p in pooled.points]
    return pooled.points, pooled.loss, np.array(noise), np.array([np.mean(s) for s in seconds])


def constructed(points, truth, noise, design, shift, rng) -> SweepResult:
    sized = [SizePoint(spec=p.spec, params=p.params, total_params=p.total_params, tokens=p.tokens,
                       compute=p.compute, losses=(t * shift * np.exp(rng.normal(0, s, n))).tolist())
             for p, t, s, n in zip(points, truth, noise, design, strict=True)]  # fmt: skip
    return SweepResult("gpt@constructed", {"name": "constructed"}, {}, sized)


def rate(points, truth, noise, design, base_design, shift, trials, rng) -> int:
    """How many of ``trials`` candidates (truth x ``shift``) fail, each against a baseline drawn with it."""
    fails = 0
    for _ in range(trials):
        baseline = Baseline.from_sweep("reference", constructed(points, truth, noise, base_design, 1.0, rng))
        fails += judge_on_curve(compare(constructed(points, truth, noise, design, shift, rng), baseline.curve))
    return fails


def upper_bound(k: int, n: int) -> float:
    """The 95% one-sided Clopper-Pearson upper bound of a rate seen k times in n."""
    return 1.0 if k >= n else float(beta.ppf(0.95, k + 1, n - k))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-sets", type=int, default=20, help="trained seed pairs that measure the noise")
    parser.add_argument("--designs", default="2,2,2,2,2;4,2,2,2,2;3,3,3,3,3;4,4,2,2,2;6,3,2,2,2",
                        help="seeds per size, ';' between designs")
    parser.add_argument("--baseline-seeds", type=int, default=len(BASELINE_SEEDS),
                        help="the baseline's seeds at every size (0: the candidate's design)")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--gap", type=float, default=0.01, help="the candidate's loss gap at every size, for power")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        points, truth, noise, seconds = measured(args.seed_sets, RunCache(ROOT / ".scaling"))
    sizes = zip(points, truth, noise, seconds, strict=True)
    print("per size: " + "; ".join(f"{p.label} loss {t:.4f} noise {100 * s:.2f}% {sec:.1f} s/run"
                                   for p, t, s, sec in sizes))  # fmt: skip
    rows = []
    for text in args.designs.split(";"):
        design = [int(n) for n in text.split(",")]
        base_design = [args.baseline_seeds] * len(design) if args.baseline_seeds else design
        rng = np.random.default_rng(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            false = rate(points, truth, noise, design, base_design, 1.0, args.trials, rng)
            caught = rate(points, truth, noise, design, base_design, 1 + args.gap, args.trials, rng)
        rows.append([text, f"{float(np.dot(design, seconds)):.0f}", f"{false} ({100 * false / args.trials:.1f}%)",
                     f"{100 * upper_bound(false, args.trials):.1f}%", f"{caught} ({100 * caught / args.trials:.0f}%)"])
        print(rows[-1], flush=True)
    print(tabulate(rows, headers=["seeds per size", "CPU s per candidate sweep", f"false alarms of {args.trials}",
                                  "95% upper bound", f"caught at +{100 * args.gap:g}% of {args.trials}"],
                   tablefmt="github"))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
