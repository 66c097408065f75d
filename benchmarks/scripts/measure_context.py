"""How much context the reference GPT uses on the default language: seed-0 loss of the reference whose
attention sees only the last W tokens (``benchmarks/variants.short_context``), relative to the reference.

Usage (from the project root): python benchmarks/scripts/measure_context.py [--data SPEC] W [W ...]
(runs go through RunCache(.scaling) on the shipped ladder; ``--data`` replaces the suite's data, e.g.
``topics:cache=0``).
"""

import argparse
import functools
from pathlib import Path

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
import numpy as np
from suite import SIZES, SWEEP
from variants import short_context

from pytest_scaling import RunCache, run_sweep

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=SWEEP["data"])
    parser.add_argument("windows", nargs="+", type=int)
    args = parser.parse_args()
    sweep = {**SWEEP, "data": args.data}
    cache = RunCache(Path(__file__).resolve().parents[2] / ".scaling")
    reference = run_sweep("gpt", SIZES, seeds=[0], cache=cache, **sweep)
    for window in args.windows:
        limited = run_sweep(functools.partial(short_context, window=window), SIZES, seeds=[0], cache=cache, **sweep)
        gaps = [p.loss / r.loss - 1 for p, r in zip(limited.points, reference.points, strict=True)]
        print(f"window {window}: {', '.join(f'{100 * g:+.2f}%' for g in gaps)} (mean {100 * np.mean(gaps):+.2f}%)",
              flush=True)
