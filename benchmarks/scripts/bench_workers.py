"""Sweep runs on worker processes against one process (prints figures; no assertions):
``python benchmarks/scripts/bench_workers.py``.

For each shape it trains ``--seeds`` seeds of the reference GPT at ``--tokens-per-param`` through a fresh
run cache twice: ``workers=1`` (one after another in this process, all cores to each run) and ``workers=N``
(``pytest_scaling.runners.parallel``: N spawn workers, ``cores // N`` threads each; their start-up included). It
prints the aggregate tokens/s of both and their ratio, and the largest loss difference between the two
(the thread count changes floating-point rounding, which training amplifies a little).

Usage: python benchmarks/scripts/bench_workers.py [--shapes 16x1,32x2,64x2] [--seeds 4] [--tokens-per-param 100]
       [--workers N]   (default: the auto rule's count, one per core)
"""

from __future__ import annotations

import argparse
import tempfile
import time

from pytest_scaling.runners.cache import RunCache
from pytest_scaling.runners.sweep import run_sweep
from pytest_scaling.training.hardware import available_cores


def timed_sweep(shape: dict, seeds: int, tokens_per_param: float, workers: int) -> tuple[float, list[float], int]:
    """(seconds, losses, tokens per run) of one sweep through an empty cache."""
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        result = run_sweep("gpt", [shape], seeds=seeds, tokens_per_param=tokens_per_param, cache=RunCache(root),
                           workers=workers)  # fmt: skip
        return time.perf_counter() - start, result.points[0].losses, result.points[0].tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="16x1,32x2,64x2", help="WIDTHxDEPTH,...")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--tokens-per-param", type=float, default=100)
    parser.add_argument("--workers", type=int, default=available_cores())
    args = parser.parse_args()
    print(f"{available_cores()} cores, {args.workers} workers, {args.seeds} seeds per shape, "
          f"{args.tokens_per_param:g} tokens per parameter")  # fmt: skip
    for text in args.shapes.split(","):
        width, _, depth = text.partition("x")
        shape = dict(width=int(width), depth=int(depth))
        one, losses_one, tokens = timed_sweep(shape, args.seeds, args.tokens_per_param, 1)
        many, losses_many, _ = timed_sweep(shape, args.seeds, args.tokens_per_param, args.workers)
        total = tokens * args.seeds
        diff = max(abs(a - b) for a, b in zip(losses_one, losses_many, strict=True))
        print(f"{text}: {args.seeds} x {tokens:,} tokens; one process {total / one:9,.0f} tokens/s ({one:.1f} s), "
              f"{args.workers} workers {total / many:9,.0f} tokens/s ({many:.1f} s): {one / many:.2f}x; "
              f"largest loss difference {diff:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
