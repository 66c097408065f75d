"""The ``pytest-scaling`` command line: ``fit`` a scaling law to a CSV, ``train`` one model, ``predict`` a
model nobody trained from a recorded baseline.

Bad input never shows a traceback: every :class:`ScalingError` becomes one line on stderr and
exit status 2 (argparse usage errors exit 2 as well).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings

import numpy as np
from tabulate import tabulate

from .data.spec import usage as data_usage
from .errors import ScalingDataError, ScalingError
from .fitting.laws import LAWS, ChinchillaLaw, PowerLaw
from .values import argument, positive_number, whole_number

_non_negative_int = argument(whole_number)
_count = argument(lambda text: whole_number(text, 1))
_positive_float = argument(positive_number)


# --------------------------------------------------------------------------------------------- fit
def _add_fit(sub) -> None:
    p = sub.add_parser("fit", help="fit a scaling law to points in a CSV file")
    p.add_argument("file", help="CSV file with a header row")
    p.add_argument("--law", choices=sorted(LAWS), default="chinchilla",
                   help="the form to fit (pytest_scaling.fitting.laws.LAWS; default chinchilla)")
    p.add_argument("--n", metavar="COL", help="parameter-count column (laws of N and D)")
    p.add_argument("--d", metavar="COL", help="token-count column")
    p.add_argument("--c", metavar="COL", help="training-compute column; D = C / (6 N)")
    p.add_argument("--x", metavar="COL", help="the single variable of a one-input law such as power (N, D or C)")
    p.add_argument("--loss", metavar="COL", required=True, help="loss column (nats/token)")
    p.add_argument("--no-offset", action="store_true", help="power law without E (Kaplan's L = (x_c/x)^alpha)")
    p.add_argument("--drop-highest", type=_non_negative_int, default=0, metavar="K",
                   help="drop the K highest-loss rows first (Epoch's Chinchilla fit drops 5)")
    p.add_argument("--bootstrap", type=_non_negative_int, default=0, metavar="K",
                   help="K bootstrap refits for 95%% percentile confidence intervals")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (same seed -> same intervals)")
    p.add_argument("--delta", type=float, default=1e-3, help="Huber delta (default 1e-3)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_run_fit)


def _law(args):
    """The law to fit: ``LAWS[--law]``, without its offset E under ``--no-offset`` (power laws only)."""
    form = LAWS[args.law]
    if issubclass(form, PowerLaw):
        return form(offset=not args.no_offset)
    if args.no_offset:
        raise ScalingDataError(f"--no-offset is for --law power, not --law {args.law}")
    return form()


def _fit_columns(args, law) -> tuple[dict[str, str], str | None]:
    """Map the law's inputs to CSV columns; returns (input -> column, compute column or None). A one-input law
    reads ``--x``; a law of N and D reads ``--n`` and ``--d``, or ``--c`` with D = C / (6 N)."""
    if len(law.inputs) == 1:
        if not args.x:
            raise ScalingDataError(f"--law {args.law} needs --x COL")
        if args.n or args.d or args.c:
            raise ScalingDataError(f"--law {args.law} takes --x, not --n/--d/--c")
        return {law.inputs[0]: args.x}, None
    if set(law.inputs) != {"N", "D"}:
        raise ScalingDataError(f"--law {args.law} takes inputs {law.inputs}; the command line maps only one "
                               "column (--x) or N and D")  # fmt: skip
    if args.x:
        raise ScalingDataError(f"--x is for --law power (a one-input law), not --law {args.law}")
    if not args.n:
        raise ScalingDataError(f"--law {args.law} needs --n COL")
    if bool(args.d) == bool(args.c):
        raise ScalingDataError(f"--law {args.law} needs exactly one of --d COL or --c COL")
    return ({"N": args.n, "D": args.d}, None) if args.d else ({"N": args.n}, args.c)


def _run_fit(args) -> int:
    from .fitting.allocation import optimal_allocation
    from .fitting.fit import bootstrap, fit
    from .fitting.points import drop_highest, read_columns

    try:
        delta = positive_number(args.delta)  # here, not as argparse's type: its errors print two lines
    except ValueError as exc:
        raise ScalingDataError(f"--delta: {exc}") from None
    law = _law(args)
    mapping, c_col = _fit_columns(args, law)
    wanted = list(dict.fromkeys([*mapping.values(), *([c_col] if c_col else []), args.loss]))
    table = drop_highest(read_columns(args.file, wanted), args.loss, args.drop_highest)
    inputs = {name: table[col] for name, col in mapping.items()}
    if c_col:
        inputs["D"] = table[c_col] / (6.0 * inputs["N"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = fit(law, table[args.loss], delta=delta, **inputs)
    for w in caught:
        print(f"pytest-scaling: warning: {w.message}", file=sys.stderr)
    boot = bootstrap(fitted, args.bootstrap, seed=args.seed) if args.bootstrap else None
    out = fitted.to_dict()
    if isinstance(law, ChinchillaLaw):
        out["allocation"] = {k: float(v) for k, v in optimal_allocation(fitted.params).items()}
        if boot is not None:
            lo_hi = {k: boot.interval(lambda p, k=k: optimal_allocation(p)[k]) for k in ("a", "b", "G")}
            out["allocation_ci"] = {k: [float(lo), float(hi)] for k, (lo, hi) in lo_hi.items()}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    ci = out.get("ci", {})
    headers = ["param", "value"] + (["95% CI low", "95% CI high"] if ci else [])
    rows = [[name, value, *ci.get(name, [])] for name, value in out["params"].items()]
    print(f"{args.law} fit of {args.file}: {out['n_points']} points")
    print(tabulate(rows, headers=headers, floatfmt=".6g"))
    print(f"objective (summed Huber, delta={args.delta:g}): {out['objective']:.6g}; "
          f"{out['converged_fraction']:.1%} of {out['n_starts']} starts reached the optimum")
    if "allocation" in out:
        alloc = out["allocation"]
        print(f"compute-optimal: N_opt = {alloc['G']:.4g} (C/6)^{alloc['a']:.4f}, "
              f"D_opt = (C/6)^{alloc['b']:.4f} / {alloc['G']:.4g}")
    return 0


# ------------------------------------------------------------------------------------------- train
# (written by the trainer helper; everything between here and build_parser belongs to `train`)
def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train one model (the reference GPT by default) and report its loss and speed",
        description="Train one model on a token budget and print its validation loss (nats/token), size, "
        "compute, speed and MFU. Without --cache every call trains; with --cache [DIR] (default DIR "
        ".scaling) an unchanged run is served from the run cache (cached: true).",
    )  # fmt: skip
    p.add_argument("--width", type=int, required=True, help="model width d")
    p.add_argument("--depth", type=int, required=True, help="number of blocks L")
    p.add_argument("--heads", type=int, default=None, help="attention heads (default: head dim 32)")
    p.add_argument("--seq-len", type=int, default=128, help="context length T (default 128)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--tokens", type=_count, help="training tokens, e.g. 2e6")
    budget.add_argument("--tokens-per-param", type=_positive_float, metavar="R",
                        help="training tokens = R x non-embedding parameters (Chinchilla: 20)")  # fmt: skip
    p.add_argument("--data", default=None, metavar="SPEC", help=f"{data_usage()} (default: topics)")
    p.add_argument("--factory", default="gpt", help="model factory: 'gpt' or 'package.module:function'")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation and data order")
    p.add_argument("--lr", type=_positive_float, default=None, help="peak learning rate (default: the size rule)")
    p.add_argument("--batch-tokens", type=_count, default=None, help="tokens per step (default: the rule)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=_count, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--cache", nargs="?", const=".scaling", default=None, metavar="DIR",
                   help="serve and store the run in the run cache under DIR (default .scaling)")  # fmt: skip
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: the run record, with 'flops' the compute C of the default "
                   "FLOP convention ('flops_by_method' has all); non-finite losses are null")  # fmt: skip
    p.set_defaults(handler=_run_train)


def _finite_or_none(value):
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def _run_train(args) -> int:
    from .data import get_source
    from .runners.cache import RunCache, train_cached
    from .training.identity import probe_model
    from .training.spec import ModelSpec
    from .training.topology import launch_rank
    from .training.train import COMPUTE_METHOD, TrainConfig

    source = get_source(args.data)
    spec = ModelSpec(width=args.width, depth=args.depth, heads=args.heads, seq_len=args.seq_len,
                     vocab_size=source.vocab_size)  # fmt: skip
    probe = probe_model(args.factory, spec)  # the model checked once; its fingerprint keys the cache
    tokens = args.tokens or max(1, round(args.tokens_per_param * probe.params.non_embedding))
    config = TrainConfig(tokens=tokens, lr=args.lr, batch_tokens=args.batch_tokens, seed=args.seed,
                         device=args.device, threads=args.threads)  # fmt: skip
    cache = RunCache(args.cache) if args.cache else None
    with _progress_bar(tokens, enabled=not args.json and sys.stderr.isatty() and launch_rank() == 0) as progress:
        record = train_cached(args.factory, spec, config, source, cache, fingerprint=probe.fingerprint,
                              progress=progress)  # fmt: skip
    if record.world_size > 1 and launch_rank() != 0:
        return 0
    if args.json:
        out = {**record.to_dict(), "flops": record.compute, "flops_by_method": record.flops}
        print(json.dumps(_finite_or_none(out), indent=2))
        return 0
    rows = [
        ["model", f"{args.factory} width={spec.width} depth={spec.depth} heads={spec.n_heads}"],
        ["context, data", f"{spec.seq_len} tokens, {record.data['name']}"],
        ["params (non-embedding)", f"{record.params:,} ({record.non_embedding_params:,})"],
        ["tokens", f"{record.tokens:,}"],
        [f"compute C ({COMPUTE_METHOD})", f"{record.compute:.4g} FLOPs"],
        ["validation loss", f"{record.loss:.4f} nats/token"],
    ]
    if record.loss_bits_per_byte is not None:
        rows.append(["bits/byte", f"{record.loss_bits_per_byte:.4f}"])
    rows += [
        ["tokens/s", f"{record.tokens_per_second:,.0f}"],
        ["MFU", f"{record.mfu:.1%}" if record.mfu is not None else "unknown peak"],
        ["seconds", f"{record.seconds:.2f}"],
        ["device", record.device],
        ["cached", str(record.cached).lower()],
        ["diverged", str(record.diverged).lower()],
    ]
    print(tabulate(rows, tablefmt="plain"))
    return 0


# ----------------------------------------------------------------------------------------- predict
def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict", help="predict the loss of a model nobody trained from a recorded baseline",
        description="Read a recorded baseline and predict, with a 95% interval, the loss of a model of N "
        "non-embedding parameters trained on D tokens, or the loss a compute budget reaches (with the "
        "compute-optimal N and D where the baseline's sizes vary tokens per parameter). The interval covers "
        "the law's fit and one run's seed noise, not the law's form failing far from the trained sizes: "
        "'reach' says how far the query is, in multiples of the largest trained compute.",
    )  # fmt: skip
    p.add_argument("baseline", help="a baseline file, or a name in --baselines-dir (e.g. reference)")
    p.add_argument("--baselines-dir", default="scaling_baselines", metavar="DIR",
                   help="where named baselines live (default scaling_baselines)")  # fmt: skip
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--params", type=_positive_float, metavar="N", help="non-embedding parameters, e.g. 1e6")
    query.add_argument("--compute", type=_positive_float, metavar="C", help="training FLOPs, e.g. 1e14")
    p.add_argument("--tokens", type=_positive_float, metavar="D",
                   help="training tokens with --params (default: the baseline's tokens per parameter x N)")  # fmt: skip
    p.add_argument("--flops-per-token", type=_positive_float, metavar="F",
                   help="the model's training FLOPs per token, when known (default: from the baseline's sizes)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_run_predict)


def _run_predict(args) -> int:
    from dataclasses import asdict

    from .gate.baseline import Baseline
    from .gate.predict import predict_compute, predict_size, resolve

    if args.compute is not None and (args.tokens is not None or args.flops_per_token is not None):
        raise ScalingDataError("--tokens and --flops-per-token go with --params, not --compute")
    base = Baseline.load(resolve(args.baseline, args.baselines_dir))
    if args.compute is not None:
        answer = predict_compute(base, args.compute)
    else:
        answer = predict_size(base, args.params, args.tokens, args.flops_per_token)
    if args.json:
        print(json.dumps({"baseline": base.name, **asdict(answer)}, indent=2))
        return 0
    where = ("beyond the largest trained size" if answer.reach > 1.001 else
             "below the smallest trained size" if answer.reach * max(p.compute for p in base.points)
             < min(p.compute for p in base.points) / 1.001 else "within the trained sizes")  # fmt: skip
    rows = [
        ["baseline, law", f"{base.name}, {answer.law}"],
        ["loss", f"{answer.loss:.4f} nats/token (95% interval {answer.lo:.4f} to {answer.hi:.4f})"],
        ["compute C", f"{answer.compute:.4g} FLOPs{' (6 N D)' if answer.law == 'L(N, D)' else ''}, "
                      f"{answer.reach:.3g}x the largest trained ({where})"],
    ]
    if answer.params is not None:
        rows.append(["params (non-embedding), tokens", f"{answer.params:.4g}, {answer.tokens:.4g} "
                     f"({answer.tokens / answer.params:.3g} per parameter)"])  # fmt: skip
    rows += [["note", note] for note in answer.notes]
    print(tabulate(rows, tablefmt="plain"))
    return 0


@contextlib.contextmanager
def _progress_bar(tokens: int, enabled: bool):
    """A tqdm bar of training tokens on stderr, or nothing (a pipe, --json, a rank other than 0)."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=tokens, unit="tok", unit_scale=True, desc="training", file=sys.stderr, leave=False) as bar:

        def update(seen: int, total: int) -> None:
            bar.total = total
            bar.update(seen - bar.n)

        yield update


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="pytest-scaling", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pytest-scaling {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_fit(sub)
    _add_train(sub)
    _add_predict(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ScalingError as exc:
        print(f"pytest-scaling: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pytest-scaling: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
