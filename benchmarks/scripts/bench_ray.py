"""The Ray backend's overhead against the local backend, on a local Ray instance of this machine's cores.

Run: ``python benchmarks/scripts/bench_ray.py [--tiny-runs 20]``. Prints figures; asserts nothing. Caches are fresh
temporary directories, so every run trains. Two workloads, each trained by the local backend (one worker
process per core, one thread each) and by Ray (one CPU, one thread per task):

* the shipped ladder (``suite.SIZES``, seeds 0 and 1: 10 runs of 0.5-18 s);
* ``--tiny-runs`` runs of a width-16 model on 2k tokens, where the per-run overhead is nearly all there is.

The Ray instance's start is timed apart; the losses are compared to the last digit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
from suite import REFERENCE_SEEDS, SIZES, SWEEP

from pytest_scaling import RayBackend, RunCache, run_sweep
from pytest_scaling.training.hardware import available_cores


def timed(**options) -> tuple[float, list]:
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        result = run_sweep(cache=RunCache(cache), threads=1, **options)
        return time.perf_counter() - start, [p.losses for p in result.points]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny-runs", type=int, default=20)
    args = parser.parse_args()
    cores = available_cores()
    backend = RayBackend()
    start = time.perf_counter()
    backend.connect()
    print(f"local Ray instance of {cores} CPUs started in {time.perf_counter() - start:.1f} s")
    tiny = dict(factory="gpt", sizes=[dict(width=16, depth=1, seq_len=32)], seeds=list(range(args.tiny_runs)),
                tokens_per_param=1, batch_tokens=256, eval_tokens=1024, data="synthetic:docs=512")  # fmt: skip
    ladder = dict(factory="gpt", sizes=SIZES, seeds=REFERENCE_SEEDS, **SWEEP)
    for name, workload, runs in (("shipped ladder", ladder, len(SIZES) * len(REFERENCE_SEEDS)),
                                 ("tiny runs", tiny, args.tiny_runs)):  # fmt: skip
        first, _ = timed(backend=backend, **workload)  # Ray's worker processes start and import torch
        local, local_losses = timed(workers=cores, **workload)
        remote, remote_losses = timed(backend=backend, **workload)
        same = "identical" if remote_losses == local_losses else "DIFFERENT"
        print(f"{name} ({runs} runs): local backend {local:.1f} s; Ray {first:.1f} s on its first sweep, then "
              f"{remote:.1f} s ({remote / local:.2f}x, {(remote - local) / runs * cores:+.2f} s per run per core); "
              f"losses {same}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
