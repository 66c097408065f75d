"""The verdict panel: architecture changes whose direction on real language models is published, each gated
on the shipped ladder against the reference on every candidate workload, with its verdict.

Run: ``python benchmarks/scripts/panel.py [--data pycode,topics] [--only NAME,...] [--markdown docs/panel.md]``.
Prints one table per workload; asserts nothing. Every run goes through the run cache (``.scaling/``), so an
interrupted panel resumes. The baseline of each workload is the reference GPT with the committed baseline's
seeds (``BASELINE_SEEDS``, eight), recorded in memory (the reparametrised entry: both sides searched over
``LR_GRID``, its baseline with the candidates' two seeds). Bugs train one seed (the gate must catch them with
one); neutral changes and improvements train the candidates' seeds (``REFERENCE_SEEDS``).

A row agrees with the literature when a bug fails ``assert_on_curve`` and a neutral change or an
improvement passes it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import _suite_path  # noqa: F401  (benchmarks/ on sys.path)
import variants
from suite import BASELINE_SEEDS, REFERENCE_SEEDS, SIZES, SWEEP, law_figures
from tabulate import tabulate

from pytest_scaling import (
    Baseline,
    RunCache,
    ScalingDataError,
    ScalingGateError,
    assert_on_curve,
    compute_multiplier,
    run_sweep,  # fmt: skip
)
from pytest_scaling.gate.compare import compare

ROOT = Path(__file__).resolve().parents[2]
LR_GRID = dict(lr_grid=[0.125, 0.25, 0.5, 1, 2], lr_search_sizes=2)  # the reparametrised entry's search
BUG, NEUTRAL, BETTER = "worse (bug)", "neutral", "better"


@dataclass(frozen=True)
class Entry:
    name: str
    factory: object
    expected: str
    source: str
    seeds: list[int] = field(default_factory=lambda: list(REFERENCE_SEEDS))
    options: dict = field(default_factory=dict)


ENTRIES = [
    Entry("no attention", variants.no_attention, BUG, "no context at all", seeds=[0]),
    Entry("attention over the last 8 tokens", variants.short_context, BUG,
          "loss falls with context position far past 8 tokens (Kaplan et al. 2020, Fig. 20)", seeds=[0]),
    Entry("blocks do not compose (h = block(x))", variants.blocks_do_not_compose, BUG,
          "depth buys loss at fixed width (Kaplan et al. 2020, Fig. 5); induction needs two composed "
          "layers (Olsson et al. 2022)", seeds=[0]),
    Entry("NoPE (no position embedding, causal mask kept)", variants.nope, NEUTRAL,
          "close to learned positions (Haviv et al. 2022; Kazemnejad et al. 2023)"),
    Entry("MLP ratio 1 instead of 4", variants.mlp_ratio_1, NEUTRAL,
          "shape matters little at equal parameters (Kaplan et al. 2020, Fig. 5)"),
    Entry("SwiGLU", variants.swiglu, BETTER, "Shazeer 2020"),
    Entry("RoPE", variants.rope, BETTER, "Su et al. 2021 (on par or better)"),
    Entry("SwiGLU + RoPE", variants.swiglu_rope, BETTER, "the LLaMA recipe (Touvron et al. 2023)"),
    Entry("reference re-seeded (seeds 100, 101)", "gpt", NEUTRAL, "the same model",
          seeds=[s + 100 for s in REFERENCE_SEEDS]),
    Entry("reference reparametrised (W/4 stored, x4 used), LR searched", variants.reparametrised, NEUTRAL,
          "the same function; its best LR is 4x smaller", options=LR_GRID),
]


@dataclass
class Row:
    entry: Entry
    failed: bool
    deviations: list[float]
    combined_z: float
    multiplier: str
    seconds: float

    @property
    def agrees(self) -> bool:
        return self.failed == (self.entry.expected == BUG)


def lr_option(lr: float) -> dict:
    return {"lr_multiplier": lr} if lr != 1 else {}


def gate(entry: Entry, data: str, cache: RunCache, baselines: dict, lr: float) -> Row:
    options = {**SWEEP, "data": data, **entry.options}
    if "lr_grid" in options:
        options["lr_grid"] = [m * lr for m in options["lr_grid"]]
    else:
        options.update(lr_option(lr))
    key = tuple(sorted((k, str(v)) for k, v in entry.options.items()))
    if key not in baselines:  # an entry with its own options (the searched one) gets its own baseline
        baselines[key] = Baseline.from_sweep("reference", run_sweep("gpt", SIZES, seeds=REFERENCE_SEEDS,
                                                                    cache=cache, **options))  # fmt: skip
    baseline = baselines[key]
    start = time.perf_counter()
    try:
        result = run_sweep(entry.factory, SIZES, seeds=entry.seeds, cache=cache, **options)
    except ScalingDataError as exc:  # the probe rejected the model before anything trained
        reason = str(exc).split(": ", 1)[-1].split(" from the loss")[0].split(" (")[0][:60]
        return Row(entry, True, [], math.nan, f"probe: {reason}", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    comparison = compare(result, baseline.curve)
    try:
        assert_on_curve(result, baseline)
        failed = False
    except ScalingGateError:
        failed = True
    try:
        m = compute_multiplier(result, baseline)
        multiplier = f"{m.value:.3g}x ({m.lo:.3g}-{m.hi:.3g})" if math.isfinite(m.value) else "beyond the curve"
    except ScalingGateError as exc:
        multiplier = str(exc).splitlines()[0][:40]
    return Row(entry, failed, [r.deviation for r in comparison.rows], comparison.stouffer, multiplier, seconds)


def table(rows: list[Row]) -> str:
    body = [[r.entry.name, r.entry.expected, len(r.entry.seeds), "FAILED" if r.failed else "passed",
             "yes" if r.agrees else "**NO**", " / ".join(f"{100 * d:+.1f}" for d in r.deviations) or "not trained",
             f"{r.combined_z:+.2f}" if math.isfinite(r.combined_z) else "n/a", r.multiplier, r.entry.source]
            for r in rows]  # fmt: skip
    return tabulate(body, headers=["change", "expected", "seeds", "gate", "agrees", "deviation per size %",
                                   "combined z", "compute multiplier (95% CI)", "published direction"],
                    tablefmt="github")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="pycode,topics", help="comma-separated data specs (default pycode,topics)")
    parser.add_argument("--only", help="comma-separated substrings of entry names")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this Markdown file")
    parser.add_argument("--lr-multiplier", type=float, default=1.0,
                        help="every sweep at this multiple of the rule's learning rate (the searched entry: its grid)")
    args = parser.parse_args()
    entries = [e for e in ENTRIES if not args.only or any(s in e.name for s in args.only.split(","))]
    cache = RunCache(ROOT / ".scaling")
    sections = []
    for data in args.data.split(","):
        rows = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # edge-of-grid and tuning warnings: verdicts are counted
            reference = run_sweep("gpt", SIZES, seeds=BASELINE_SEEDS, cache=cache,
                                  **{**SWEEP, "data": data, **lr_option(args.lr_multiplier)})  # fmt: skip
            figures = f"reference: {law_figures(reference).text(reference.loss)}"
            print(figures, flush=True)
            baselines = {(): Baseline.from_sweep("reference", reference)}
            for entry in entries:
                rows.append(gate(entry, data, cache, baselines, args.lr_multiplier))
                print(f"[{data}] {entry.name}: {'FAILED' if rows[-1].failed else 'passed'} "
                      f"({rows[-1].seconds:.0f} s)", flush=True)  # fmt: skip
        agree = sum(r.agrees for r in rows)
        lr = f", learning rate x{args.lr_multiplier:g} the rule's" if args.lr_multiplier != 1 else ""
        section = f"### `{data}`{lr}: {agree} of {len(rows)} verdicts agree with the literature\n\n{table(rows)}\n"
        print("\n" + section, flush=True)
        sections.append(f"{section}\n{figures}\n")
    if args.markdown:
        args.markdown.write_text("\n".join(sections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
