"""Check the trainer's per-size rules on the shipped ladder: no nearby learning rate or batch does better.

Run: ``python benchmarks/scripts/bench_recipe.py [--seeds 0] [--workers auto]``. Prints a table; asserts nothing.
For every size of ``suite.SIZES`` on the suite's data it trains the reference GPT with the default rules
(batch from ``train.default_batch_tokens``, peak LR from ``train.default_lr`` scaled for the batch) and
with four alternatives at the same token budget, so the same compute: the rule's LR x0.5 and x2 (at the
rule's batch), and the batch x0.5 and x2 (each with the LR the rule gives that batch). A cell is the
alternative's mean loss over ``--seeds`` relative to the rule's; the goal is that none is better than
the rule by more than 1%. Runs go through the run cache (``.scaling/``), so a rerun only reads.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
import numpy as np
from suite import SIZES, SWEEP
from tabulate import tabulate

from pytest_scaling import RunCache, run_sweep

ROOT = Path(__file__).resolve().parents[2]
GOAL = 0.01  # no alternative may beat the rules by more than this share of the loss


def sweep_one(size: dict, seeds: list[int], cache: RunCache, workers, **options):
    """The mean loss and the runs of one size at ``options`` (TrainConfig fields)."""
    result = run_sweep("gpt", [size], seeds=seeds, cache=cache, workers=workers, **SWEEP, **options)
    return float(np.mean(result.points[0].losses)), result.runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--cache", type=Path, default=ROOT / ".scaling")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    workers = args.workers if args.workers == "auto" else int(args.workers)
    cache, start = RunCache(args.cache), time.perf_counter()
    rows, worst = [], -np.inf
    for size in SIZES:
        rule, runs = sweep_one(size, seeds, cache, workers)
        config, seq_len = runs[0].config, runs[0].spec.seq_len
        lr, batch_seqs = config.lr, config.batch_tokens // seq_len
        cells = []
        for options in ({"lr": lr / 2}, {"lr": lr * 2}, {"batch_tokens": batch_seqs // 2 * seq_len},
                        {"batch_tokens": batch_seqs * 2 * seq_len}):  # fmt: skip
            if options.get("batch_tokens", seq_len) < seq_len:
                cells.append("below one sequence")
                continue
            loss, _ = sweep_one(size, seeds, cache, workers, **options)
            worst = max(worst, 1 - loss / rule)
            cells.append(f"{100 * (loss / rule - 1):+.2f}%")
        rows.append([runs[0].spec.label, f"{runs[0].non_embedding_params:,}", batch_seqs,
                     runs[0].tokens // config.batch_tokens, f"{lr:.4f}", f"{rule:.4f}", *cells])  # fmt: skip
    print(tabulate(rows, headers=["size", "params", "batch (seqs)", "steps", "rule LR", "rule loss", "LR x0.5",
                                  "LR x2", "batch x0.5", "batch x2"], tablefmt="github"))  # fmt: skip
    print(f"\nseeds {seeds}, data {SWEEP['data']!r}; the best alternative beats the rules by {100 * worst:.2f}% "
          f"(goal <= {100 * GOAL:.0f}%); {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
