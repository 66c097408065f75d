"""How much of the seed noise a shared data order removes: candidate seed s against reference seed s.

Run after ``measure_gate.py`` (it reads that script's cached runs): ``python benchmarks/measure_pairing.py
[--seed-sets 20] [--regressions lr:0.2,context:6]``. Prints, per regression and size, the correlation of
the candidate's and the reference's losses over the shared seeds and the ratio var(c_s - r_s) /
(var(c) + var(r)): below 1, pairing by seed removes that share of the noise of a difference; asserts
nothing. A seed fixes the data order for every model, and the initial weights only for the same
architecture (``lr:``, a learning-rate change, shares both; ``context:``, a different attention, shares the
data order only).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from measure_gate import REGRESSIONS, ROOT, regressed_sweep, seed_pairs
from suite import SIZES, SWEEP
from tabulate import tabulate

from pytest_scaling import RunCache, run_sweep


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-sets", type=int, default=20)
    parser.add_argument("--regressions", default=REGRESSIONS)
    args = parser.parse_args()
    cache = RunCache(ROOT / ".scaling")
    seeds = [s for pair in seed_pairs(args.seed_sets) for s in pair]
    reference = run_sweep("gpt", SIZES, seeds=seeds, cache=cache, **SWEEP)
    for regression in args.regressions.split(","):
        kind, _, value = regression.partition(":")
        candidate = regressed_sweep(kind, float(value), seeds, reference, cache)
        rows = []
        for c, r in zip(candidate.points, reference.points, strict=True):
            cl, rl = np.log(c.losses), np.log(r.losses)
            ratio = np.var(cl - rl, ddof=1) / (np.var(cl, ddof=1) + np.var(rl, ddof=1))
            rows.append([c.label, f"{np.corrcoef(cl, rl)[0, 1]:+.2f}", f"{100 * np.std(rl, ddof=1):.2f}%",
                         f"{100 * np.std(cl, ddof=1):.2f}%", f"{ratio:.2f}"])  # fmt: skip
        print(f"\n{regression} ({len(seeds)} shared seeds)")
        print(tabulate(rows, headers=["size", "corr", "ref seed std", "cand seed std", "var(paired)/var(unpaired)"],
                       tablefmt="github"))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
