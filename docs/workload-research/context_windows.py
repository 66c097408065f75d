"""How much context the reference GPT uses on the default language: seed-0 loss of the reference whose
attention sees only the last W tokens (``benchmarks/variants.short_context``), relative to the reference.

Usage (from the project root): python docs/workload-research/context_windows.py W [W ...]
(runs go through RunCache(.scaling) on the shipped ladder).
"""

import functools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from suite import SIZES, SWEEP  # noqa: E402
from variants import short_context  # noqa: E402

from pytest_scaling import RunCache, run_sweep  # noqa: E402

if __name__ == "__main__":
    cache = RunCache(Path(__file__).resolve().parents[2] / ".scaling")
    reference = run_sweep("gpt", SIZES, seeds=[0], cache=cache, **SWEEP)
    for window in map(int, sys.argv[1:]):
        limited = run_sweep(functools.partial(short_context, window=window), SIZES, seeds=[0], cache=cache, **SWEEP)
        gaps = [p.loss / r.loss - 1 for p, r in zip(limited.points, reference.points, strict=True)]
        print(f"window {window}: {', '.join(f'{100 * g:+.1f}%' for g in gaps)} (mean {100 * np.mean(gaps):+.2f}%)",
              flush=True)
