"""How many tokens per parameter real text needs at the shipped ladder's sizes before it behaves like a
language-model scaling law: seeds that agree, attention that pays, depth that composes.

Run: ``python benchmarks/scripts/measure_real_text.py [--data pycode,pycode:bytes] [--tpp 20,80,320]``.
Prints one row per (data, tokens per parameter, size); asserts nothing; every run goes through the run cache
(``.scaling/``). Per size: the reference's loss for seeds 0 and 1 and their spread, and the loss of seed 0 of
the reference without attention and of the ``h = block(x)`` bug (depth 2 only) relative to the reference's
mean (positive: the bug costs loss, as it does in real language models).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
import variants
from suite import SIZES
from tabulate import tabulate

from pytest_scaling import RunCache, run_sweep

ROOT = Path(__file__).resolve().parents[2]
STUDY_SIZES = [SIZES[1], SIZES[2]]  # w32-d1, w32-d2: one depth step at the same width


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="pycode,pycode:bytes")
    parser.add_argument("--tpp", default="20,80,320", help="tokens per parameter, comma-separated")
    args = parser.parse_args()
    cache = RunCache(ROOT / ".scaling")
    rows = []
    for data in args.data.split(","):
        for tpp in [float(x) for x in args.tpp.split(",")]:
            start = time.perf_counter()
            sweep = dict(tokens_per_param=tpp, data=data, cache=cache)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                reference = run_sweep("gpt", STUDY_SIZES, seeds=[0, 1], **sweep)
                blind = run_sweep(variants.no_attention, STUDY_SIZES, seeds=[0], **sweep)
                uncomposed = run_sweep(variants.blocks_do_not_compose, STUDY_SIZES[1:], seeds=[0], **sweep)
            seconds = time.perf_counter() - start
            for i, point in enumerate(reference.points):
                a, b = point.losses
                bug = f"{100 * (uncomposed.points[0].loss / point.loss - 1):+.1f}%" if i == 1 else ""
                spread = f"{100 * abs(a - b) / point.loss:.1f}%"
                rows.append([data, f"{tpp:g}", point.label, f"{a:.4f} / {b:.4f}", spread,
                             f"{100 * (blind.points[i].loss / point.loss - 1):+.1f}%", bug,
                             f"{100 * (point.loss / reference.points[0].loss - 1):+.1f}%" if i else "",
                             f"{seconds:.0f}"])  # fmt: skip
            print(tabulate(rows[-2:], tablefmt="plain"), flush=True)
    print(tabulate(rows, headers=["data", "tokens/param", "size", "loss, seeds 0 / 1", "seed spread",
                                  "no attention", "h = block(x)", "depth 1 -> 2", "wall s (all runs)"],
                   tablefmt="github"))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
