"""What the run identity costs against the run it identifies, on the shipped ladder.

Per size of ``benchmarks/suite.py`` (and per variant factory): the code identity of the factory (the walk
over its source, first call in this process and once warm), the behavioural probe (build, one forward and
backward pass, fingerprint, causality check), the causality check alone, and one training run of that
size at the suite's budget, so the overhead reads as a share of a run. The trainer's own identity is
computed once per process; its cold cost is printed too.

    python benchmarks/scripts/bench_identity.py [--no-train]
"""

from __future__ import annotations

import argparse
import time

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
import torch
from suite import SIZES, SWEEP
from tabulate import tabulate
from variants import no_attention, swiglu_rope

from pytest_scaling.data import get_source
from pytest_scaling.runners import cache
from pytest_scaling.training.causality import check_causal
from pytest_scaling.training.identity import PROBE_SEED, PROBE_TOKENS, code_identity, probe_model
from pytest_scaling.training.model import ModelSpec, resolve_factory
from pytest_scaling.training.train import TrainConfig, train


def timed(fn, *args) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-train", action="store_true", help="skip the training runs (identity costs only)")
    args = parser.parse_args()
    source = get_source(SWEEP["data"])
    _, trainer = timed(cache._trainer_identity)
    print(f"trainer identity (once per process, cold): {1000 * trainer:.0f} ms")
    for name, factory in (("gpt", "gpt"), ("no_attention", no_attention), ("swiglu_rope", swiglu_rope)):
        _, cold = timed(code_identity, factory)
        _, warm = timed(code_identity, factory)
        print(f"\n{name}: code identity {1000 * cold:.1f} ms cold, {1000 * warm:.2f} ms warm")
        rows = []
        for size in SIZES:
            spec = ModelSpec(**size, vocab_size=source.vocab_size)
            probe, probe_s = timed(probe_model, factory, spec)
            tokens = torch.randint(0, spec.vocab_size, (2, min(spec.seq_len, PROBE_TOKENS)))
            _, causal_s = timed(check_causal, resolve_factory(factory)(spec), tokens, spec.vocab_size, PROBE_SEED, name)
            row = [spec.label, f"{probe.params.non_embedding:,}", f"{1000 * probe_s:.1f}",
                   f"{1000 * causal_s:.1f}"]  # fmt: skip
            if not args.no_train:
                tokens = round(SWEEP["tokens_per_param"] * probe.params.non_embedding)
                record, run_s = timed(train, factory, spec, TrainConfig(tokens=tokens), source)
                row += [f"{run_s:.2f}", f"{100 * (probe_s + warm) / run_s:.2f}%"]
            rows.append(row)
        headers = ["size", "params", "probe ms", "causality ms"]
        headers += [] if args.no_train else ["run s", "identity / run"]
        print(tabulate(rows, headers=headers))


if __name__ == "__main__":
    main()
