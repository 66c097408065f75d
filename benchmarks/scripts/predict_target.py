"""Predict models nobody trained from the shipped ladder, then train them and compare.

Run: ``python benchmarks/scripts/predict_target.py [--target-size 128x5] [--seeds 0,1] [--predict-only]
[--data SPEC]``.
Prints figures; asserts nothing. Every run goes through the run cache (``.scaling/``): an interrupted
measurement resumes, and the ladder's runs are the shipped suite's.

* Ladder: the shipped sizes and seeds at 20 tokens per parameter (on the suite's data: the committed
  baseline's runs), and for ``L(N, D)`` also its ``--extra-sizes`` smallest sizes
  (default 4: every size below the largest) at 5 and 80 tokens per parameter (``--extra-ratios``).
* Targets: (a) the reference about 10x the ladder's largest in non-embedding parameters at 20 tokens per
  parameter (``--target-size``, WIDTHxDEPTH); (b) the ladder's largest size at 5 and at 80 tokens per
  parameter.
* Predictions are made before the targets train, from the ladder only (``pytest_scaling.gate.predict``, what
  ``pytest-scaling predict`` prints): ``L(C)`` along the 20 tokens/parameter line for (a), ``L(N, D)``
  fitted to the ladder with the extra ratios for (a) and (b). The target's compute is its exact FLOPs per
  token (the model's) times its tokens.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
from suite import REFERENCE_SEEDS, SIZES, SWEEP
from tabulate import tabulate

from pytest_scaling import Baseline, RunCache, run_sweep
from pytest_scaling.data import get_source
from pytest_scaling.gate.predict import predict_size
from pytest_scaling.training.identity import probe_model
from pytest_scaling.training.model import flops_per_token
from pytest_scaling.training.spec import ModelSpec
from pytest_scaling.training.train import COMPUTE_METHOD

ROOT = Path(__file__).resolve().parents[2]


def per_token(size: dict, vocab: int) -> tuple[int, float]:
    """(non-embedding parameters, training FLOPs per token) of the reference at ``size``, without training."""
    spec = ModelSpec(**size, vocab_size=vocab)
    probe = probe_model("gpt", spec)
    return probe.params.non_embedding, flops_per_token(spec, COMPUTE_METHOD, params=probe.params)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target-size", default="128x5", help="WIDTHxDEPTH of target (a) (default 128x5)")
    parser.add_argument("--seeds", default="0,1", help="seeds of every target (default 0,1)")
    parser.add_argument("--extra-ratios", default="5,80", help="tokens per parameter of the ladder's extra runs")
    parser.add_argument("--extra-sizes", type=int, default=4, help="how many of the smallest sizes train at them")
    parser.add_argument("--predict-only", action="store_true", help="print the predictions, train no target")
    parser.add_argument("--data", default=SWEEP["data"], help="data spec of the ladder and the targets "
                        "(default: the suite's; docs/prediction.md measured topics:cache=0)")
    args = parser.parse_args()
    start = time.perf_counter()
    cache = RunCache(ROOT / ".scaling")
    seeds = [int(s) for s in args.seeds.split(",")]
    ratios = [float(r) for r in args.extra_ratios.split(",")]
    width, depth = (int(v) for v in args.target_size.split("x"))
    data = args.data
    vocab = get_source(data).vocab_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ladder = run_sweep("gpt", SIZES, seeds=REFERENCE_SEEDS, cache=cache, **{**SWEEP, "data": data})
        extra = [run_sweep("gpt", SIZES[: args.extra_sizes], seeds=REFERENCE_SEEDS, cache=cache, data=data,
                           tokens_per_param=r) for r in ratios]  # fmt: skip
    line = Baseline.load(ROOT / "scaling_baselines" / "reference.json")
    extra_points = [p for s in extra for p in s.points]
    grid = Baseline.from_sweep("ladder-nd", replace(ladder, points=ladder.points + extra_points))
    ladder_compute = sum(r.compute for s in (ladder, *extra) for r in s.runs)

    targets = []  # (name, size, tokens per parameter, [(law name, prediction)])
    big = dict(width=width, depth=depth)
    n_big, f_big = per_token(big, vocab)
    targets.append((f"(a) {ModelSpec(**big).label}, {n_big / ladder.points[-1].params:.1f}x the largest, 20 tok/param",
                    big, 20.0, [("L(C)", predict_size(line, n_big, 20.0 * n_big, f_big)),
                                ("L(N, D)", predict_size(grid, n_big, 20.0 * n_big))]))  # fmt: skip
    n_top, _ = per_token(SIZES[-1], vocab)
    for r in ratios:
        targets.append((f"(b) the largest size at {r:g} tok/param", SIZES[-1], r,
                        [("L(N, D)", predict_size(grid, n_top, r * n_top))]))  # fmt: skip
    rows, target_compute = [], 0.0
    for name, size, ratio, predictions in targets:
        measured = None
        if not args.predict_only:
            result = run_sweep("gpt", [size], seeds=seeds, cache=cache, data=data, tokens_per_param=ratio)
            measured, target_compute = result.points[0], target_compute + sum(r.compute for r in result.runs)
        for law, p in predictions:
            row = [name, law, f"{p.loss:.4f} ({p.lo:.4f}-{p.hi:.4f})", f"{p.reach:.3g}x"]
            if measured is not None:
                m = measured.loss
                row += [" / ".join(f"{x:.4f}" for x in measured.losses), f"{100 * (p.loss / m - 1):+.2f}%",
                        "yes" if p.lo <= m <= p.hi else "NO"]  # fmt: skip
            rows.append(row)
    headers = ["target", "law", "predicted (95% interval)", "reach"]
    if not args.predict_only:
        headers += ["measured, per seed", "error", "inside"]
    print(tabulate(rows, headers=headers, tablefmt="github"))
    print(f"ladder: {len(ladder.runs)} runs at 20 tok/param + {sum(len(s.runs) for s in extra)} at "
          f"{args.extra_ratios}, {ladder_compute:.3g} FLOPs", end="")  # fmt: skip
    if target_compute:
        print(f"; targets {target_compute:.3g} FLOPs: the ladder costs {100 * ladder_compute / target_compute:.1f}% "
              "of the targets' compute", end="")  # fmt: skip
    print(f"\n({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
