"""Seed noise per size of the reference GPT on the default language: relative standard deviation over seeds.

Usage (from the project root): python benchmarks/scripts/measure_noise_by_size.py SEEDS WxD [WxD ...]
e.g. ``12 16x1 24x1 32x1 32x2``; runs go through RunCache(.scaling), seeds 100.. (fresh ones).
"""

import sys
from pathlib import Path

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
import numpy as np
from suite import SWEEP

from pytest_scaling import RunCache, run_sweep

if __name__ == "__main__":
    cache = RunCache(Path(__file__).resolve().parents[2] / ".scaling")
    seeds = list(range(100, 100 + int(sys.argv[1])))
    for shape in sys.argv[2:]:
        width, depth = map(int, shape.split("x"))
        result = run_sweep("gpt", [dict(width=width, depth=depth)], seeds=seeds, cache=cache, **SWEEP)
        losses = np.array(result.points[0].losses)
        print(f"{shape}: mean {losses.mean():.4f}, relative seed std {100 * losses.std(ddof=1) / losses.mean():.2f}% "
              f"over {len(seeds)} seeds; {np.round(losses, 4).tolist()}", flush=True)
