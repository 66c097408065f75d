"""Paired against unpaired: how much of the seed noise a shared data order removes, and what gating on
paired differences would gain.

Run: ``python benchmarks/scripts/measure_pairing.py [--seed-sets 10] [--candidates reinit:1,context:6]``. Prints
figures; asserts nothing. Every run goes through the run cache (``.scaling/``); the reference runs are those
of ``measure_gate.py`` (seeds ``1000 + 2k`` and ``1001 + 2k``).

A seed fixes the data order for every model, and the initial weights only for the same architecture. For
each seed pair k the reference sweep with those seeds is recorded as a baseline (in memory), and each
candidate trained with the same seeds is gated two ways:

* **unpaired**: ``assert_on_curve``, the gate as it is;
* **paired**: on the per-seed log differences ``log c_s - log r_s`` at each size (the same batches in the
  same order), their noise fitted over sizes with :func:`pytest_scaling.fitting.noise.fit_seed_noise`, under the
  gate's rule (a size's z above its Bonferroni bound from Student's t, or Stouffer's combined z above the
  normal's ``1 - ALPHA`` quantile).

Candidates: ``reinit:K`` (``variants.reinitialised``: the reference with other initial weights and the same
data order, as an architecture change shares it) is no change, so its failures are false positives;
``context:W`` (attention over the last W tokens) and ``lr:F`` (F times the rule's learning rate; it shares
the initial weights too) are regressions, so their catches are power. Last, per candidate and size, over
all shared seeds: the correlation of the two losses and ``var(c_s - r_s) / (var(c) + var(r))`` (below 1:
pairing removes that share of a difference's noise).
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
import numpy as np
from measure_gate import ROOT, gate, pool, regressed_sweep, seed_pairs
from scipy.stats import norm, t
from suite import SIZES, SWEEP
from tabulate import tabulate
from variants import reinitialised

from pytest_scaling import Baseline, RunCache, SweepResult, run_sweep
from pytest_scaling.fitting.noise import fit_seed_noise
from pytest_scaling.gate.compare import ALPHA, compare

CANDIDATES = "reinit:1,context:6"


def paired_gate(candidate: SweepResult, reference: SweepResult) -> tuple[bool, float]:
    """The gate's rule applied to the per-seed log differences of two sweeps with the same seeds: (whether it
    fails, the combined z)."""
    diffs = [np.log(c.losses) - np.log(r.losses) for c, r in zip(candidate.points, reference.points, strict=True)]
    compute = np.array([r.compute for r in reference.points])
    noise = fit_seed_noise(compute, [list(np.exp(d)) for d in diffs])  # relative deviations = d_s - mean d
    z = np.array([d.mean() for d in diffs]) / (noise.at(compute) / math.sqrt(len(diffs[0])))
    dof = noise.dof_at(compute)
    bound = t.ppf(1 - ALPHA / len(z), dof)
    combined = norm.isf(t.sf(z, dof)).sum() / math.sqrt(len(z))
    return bool(np.any(z > bound) or combined > norm.ppf(1 - ALPHA)), float(combined)


def _spread(values: list[float]) -> str:
    return f"{np.median(values):+.2f} ({min(values):+.2f}..{max(values):+.2f})"


def candidate_sweep(name: str, seeds: list[int], reference: SweepResult, cache: RunCache) -> SweepResult:
    kind, _, value = name.partition(":")
    if kind == "reinit":
        factory = functools.partial(reinitialised, offset=int(value))
        return run_sweep(factory, SIZES, seeds=seeds, cache=cache, **SWEEP)
    return regressed_sweep(kind, float(value), seeds, reference, cache)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-sets", type=int, default=10)
    parser.add_argument("--candidates", default=CANDIDATES, help=f"comma-separated (default {CANDIDATES})")
    args = parser.parse_args()
    cache, start = RunCache(ROOT / ".scaling"), time.perf_counter()
    references = [run_sweep("gpt", SIZES, seeds=seeds, cache=cache, **SWEEP) for seeds in seed_pairs(args.seed_sets)]
    baselines = [Baseline.from_sweep("reference", r) for r in references]
    pooled_reference = functools.reduce(pool, references, None)
    for name in args.candidates.split(","):
        unpaired = paired = 0
        pooled, z_unpaired, z_paired = None, [], []
        for seeds, reference, baseline in zip(seed_pairs(args.seed_sets), references, baselines, strict=True):
            candidate = candidate_sweep(name, seeds, reference, cache)
            pooled = pool(pooled, candidate)
            unpaired += gate(candidate, baseline)
            z_unpaired.append(compare(candidate, baseline.curve).stouffer)
            failed, z = paired_gate(candidate, reference)
            paired += failed
            z_paired.append(z)
        null = name.startswith("reinit")
        gaps = [c.loss / r.loss - 1 for c, r in zip(pooled.points, pooled_reference.points, strict=True)]
        print(f"\n{name} ({'no change: failures are false positives' if null else 'a regression: catches are power'}"
              f"; true gap per size {', '.join(f'{100 * g:+.2f}%' for g in gaps)}, mean {100 * np.mean(gaps):+.2f}%)")
        print(f"  failed: unpaired {unpaired} of {args.seed_sets} seed pairs, paired {paired} of {args.seed_sets}; "
              f"combined z median (min..max): unpaired {_spread(z_unpaired)}, paired {_spread(z_paired)}")  # fmt: skip
        rows = []
        for c, r in zip(pooled.points, pooled_reference.points, strict=True):
            cl, rl = np.log(c.losses), np.log(r.losses)
            ratio = np.var(cl - rl, ddof=1) / (np.var(cl, ddof=1) + np.var(rl, ddof=1))
            rows.append([c.label, f"{np.corrcoef(cl, rl)[0, 1]:+.2f}", f"{100 * np.std(rl, ddof=1):.2f}%",
                         f"{100 * np.std(cl, ddof=1):.2f}%", f"{ratio:.2f}"])  # fmt: skip
        print(tabulate(rows, headers=["size", "corr", "ref seed std", "cand seed std", "var(paired)/var(unpaired)"],
                       tablefmt="github"))  # fmt: skip
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
