"""The learning-rate search on the shipped ladder: a reparametrised reference (same model, optimum LR 4x
lower) against the reference, with and without ``lr_grid``; attention removed under the search; the cheap
mode (search the smallest sizes, carry the choice up); re-seeded references under the search.

Run: ``python benchmarks/scripts/bench_lr_search.py [--grid 0.25,0.5,1,2] [--reseeded 1]``. Prints figures; asserts
nothing. Runs go through the run cache (``.scaling/``). Baselines are recorded in memory from the
reference sweeps (seeds 0 and 1), never written.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
from suite import REFERENCE_SEEDS, SIZES, SWEEP
from variants import no_attention, reparametrised

from pytest_scaling import Baseline, RunCache, ScalingGateError, assert_on_curve, run_sweep
from pytest_scaling.gate.compare import compare

ROOT = Path(__file__).resolve().parents[2]


def verdict(result, baseline: Baseline) -> str:
    """'passed' or 'FAILED', with the per-size deviations and the chosen multipliers."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            assert_on_curve(result, baseline)
            outcome = "passed"
        except ScalingGateError:
            outcome = "FAILED"
    rows = compare(result, baseline.curve).rows
    sizes = ", ".join(f"{r.label} {100 * r.deviation:+.2f}% (z {r.z:+.1f})"
                      + (f" x{r.lr_multiplier:g}" if r.lr_multiplier else "") for r in rows)  # fmt: skip
    notes = "".join(f"\n    warning: {w.message}" for w in caught if "differ from baseline" in str(w.message))
    return f"{outcome}: {sizes}{notes}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="0.25,0.5,1,2")
    parser.add_argument("--reseeded", type=int, default=1, help="re-seeded reference pairs gated under the search")
    args = parser.parse_args()
    grid = [float(m) for m in args.grid.split(",")]
    cache, start = RunCache(ROOT / ".scaling"), time.perf_counter()

    def sweep(factory, seeds=REFERENCE_SEEDS, **options):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # edge-of-grid warnings: the table shows the choices
            return run_sweep(factory, SIZES, seeds=seeds, cache=cache, **SWEEP, **options)

    plain = Baseline.from_sweep("reference", sweep("gpt"))
    print(f"without a search, reparametrised (W stored /4, used x4): {verdict(sweep(reparametrised), plain)}")
    searched_ref = sweep("gpt", lr_grid=grid)
    searched = Baseline.from_sweep("reference", searched_ref)
    print(f"lr_grid {grid}: reference's choices {[p.lr_multiplier for p in searched_ref.points]}")
    print(f"  reparametrised: {verdict(sweep(reparametrised, lr_grid=grid), searched)}")
    print(f"  attention removed (1 seed): {verdict(sweep(no_attention, seeds=1, lr_grid=grid), searched)}")
    for k in range(args.reseeded):
        seeds = [200 + 2 * k, 201 + 2 * k]
        print(f"  reference re-seeded {seeds}: {verdict(sweep('gpt', seeds=seeds, lr_grid=grid), searched)}")
    cheap = sweep(reparametrised, lr_grid=grid, lr_search_sizes=2)
    cheap_base = Baseline.from_sweep("reference", sweep("gpt", lr_grid=grid, lr_search_sizes=2))
    print(f"lr_search_sizes=2 (search the 2 smallest, carry up): reparametrised {verdict(cheap, cheap_base)}")
    full = sweep(reparametrised, lr_grid=grid)
    print("  its loss vs the full search per size: " + ", ".join(
        f"{c.label} {100 * (c.loss / f.loss - 1):+.2f}%" for c, f in zip(cheap.points, full.points, strict=True)))
    print(f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
