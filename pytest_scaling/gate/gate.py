"""The gate: compare a sweep with a named baseline curve, and the ``assert_*`` helpers built on it.

The statistics are :mod:`pytest_scaling.gate.compare`'s; each check's report is built by
:mod:`pytest_scaling.gate.reporting`.

A size with a diverged run (see :mod:`pytest_scaling.training.train`) is ``DIVERGED`` and fails ``assert_on_curve``
and ``assert_beats_curve``; ``compute_multiplier`` fails when every run of a size diverged. A size with a
run whose loss lies below the data's floor (``SizePoint.floor``) by more than the run's standard error is
``IMPOSSIBLE``: every helper fails and nothing is recorded. A gain no architecture change plausibly gives
(``IMPLAUSIBLE_MULTIPLIER``, or below the baseline's E at every size) is a warning in the report.

Baselines: a helper that names a baseline file that does not exist fails with the command that records it
(and the closest existing names); under ``--scaling-update`` it records it. The test that recorded a
baseline re-records it under ``--scaling-update``; every other test that names it (a variant gated
against the reference) is compared with it as usual, never writes it. A sweep with diverged runs is not
recorded unless ``--scaling-allow-diverged`` is given.
"""

from __future__ import annotations

import math
import shlex
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import norm

from ..errors import ScalingError
from ..fitting.laws import CURVE_LAW
from ..runners.records import SweepResult
from .baseline import Baseline, BaselineError, fit_curve, names_hint
from .compare import ALPHA, Comparison, compare, judge_on_curve
from .records import seed_noise_text
from .reporting import LEAK_CAUSES, bound_text, build_report, noise_record, size_table

DEFAULT_BASELINES = "scaling_baselines"


class ScalingGateError(AssertionError):
    """A scaling assertion failed (the test fails with this message)."""


@dataclass
class GateContext:
    """Where a test's baselines live and where its reports go (set by the pytest plugin)."""

    baselines_dir: Path = field(default_factory=lambda: Path(DEFAULT_BASELINES))
    update: bool = False
    writer: bool = True  # False on torchrun ranks other than 0
    nodeid: str = ""
    reports: list = field(default_factory=list)
    allow_diverged: bool = False  # record a baseline although some of its runs diverged


def _context(result: SweepResult) -> GateContext:
    if not isinstance(result, SweepResult):
        raise TypeError(f"expected the SweepResult of scaling_sweep(...), got {type(result).__name__}")
    return result.context if isinstance(result.context, GateContext) else GateContext()


def _report(result: SweepResult, base: Baseline, check: str, verdict: str, message: str,
            comparison: Comparison | None = None, **extra) -> None:
    """Add the check's report to the test's, and warn of what may make its verdict misleading."""
    ctx = _context(result)
    report = build_report(result, base, ctx.nodeid, check, verdict, message, comparison, **extra)
    for line in report.warnings:
        warnings.warn(line, stacklevel=3)
    ctx.reports.append(report)


def _fail(message: str):
    __tracebackhide__ = True
    raise ScalingGateError(message) from None  # the reason, not the chain of errors that led to it


def _load_or_record(result: SweepResult, baseline: str | Baseline, check: str) -> Baseline | None:
    """The baseline to compare with, or None when this call recorded it (reported as such)."""
    __tracebackhide__ = True
    breaches = _floor_breaches(result)
    if isinstance(baseline, Baseline):
        if breaches:
            _fail_impossible(result, baseline, check, breaches)
        return baseline
    ctx = _context(result)
    path = Path(baseline) if str(baseline).endswith(".json") else ctx.baselines_dir / f"{baseline}.json"
    name = path.stem
    recording = not path.exists() or (ctx.update and _owns(ctx.nodeid, path))
    if breaches:
        if not recording:
            _fail_impossible(result, _load(path, result), check, breaches)
        why = _impossible(breaches)
        _fail(f"cannot record baseline {name!r}: {why}" if ctx.update else why)
    if not path.exists() and not ctx.update:
        _fail(_missing(name, path, ctx.nodeid))
    if recording:
        verdict = "updated" if path.exists() else "recorded"
        diverged = [f"{p.label} ({p.diverged} of {len(p.losses)} runs)" for p in result.points if p.diverged]
        if diverged and not ctx.allow_diverged:
            _fail(f"cannot record baseline {name!r}: runs diverged at {', '.join(diverged)}; fix the run (a lower "
                  "learning rate?) or record it anyway with --scaling-allow-diverged")  # fmt: skip
        try:
            recorded = Baseline.from_sweep(name, result, recorded_by=ctx.nodeid)
        except ScalingError as exc:
            _fail(f"cannot record baseline {name!r}: {exc}")
        if ctx.writer:
            try:
                recorded.save(path)
            except OSError as exc:
                _fail(f"cannot write baseline {name!r} to {path}: {exc.strerror or exc}")
        _report(result, recorded, check, verdict, f"baseline {name!r} {verdict} at {path}")
        return None
    return _load(path, result)


def _load(path: Path, result: SweepResult) -> Baseline:
    """The baseline stored at ``path``, if it was recorded with the settings of ``result``."""
    __tracebackhide__ = True
    try:
        loaded = Baseline.load(path)
    except BaselineError as exc:
        _fail(str(exc))
    diffs = loaded.differences(result)
    if diffs:
        _fail(f"baseline {path.stem!r} ({path}) was recorded with other settings than this run: " + "; ".join(diffs)
              + ". Re-record it with `pytest --scaling --scaling-update` if the change is intended.")  # fmt: skip
    return loaded


def _floor_breaches(result: SweepResult) -> dict[int, str]:
    """Per size (its index) whose data knows its loss floor, its worst run whose validation loss lies below
    the floor by more than the run's standard error, as ``"label (loss ± se < floor)"``."""
    breaches = {}
    for i, point in enumerate(result.points):
        if point.floor is None:
            continue
        errors = [se or 0.0 for se in point.loss_se or [None] * len(point.losses)]  # unknown: 0
        below = [(loss, se) for loss, se in zip(point.losses, errors, strict=True)
                 if math.isfinite(loss) and loss + se < point.floor]  # fmt: skip
        if below:
            loss, se = min(below)
            breaches[i] = f"{point.label} ({loss:.4f} ± {se:.4f} < {point.floor:.4f})"
    return breaches


def _impossible(breaches: dict[int, str]) -> str:
    """Why the sweep's losses are impossible, from its :func:`_floor_breaches`."""
    return (f"IMPOSSIBLE: validation loss below the data's entropy floor, which no model can beat, at "
            f"{', '.join(breaches.values())} nats/token; {LEAK_CAUSES}")


def _fail_impossible(result: SweepResult, base: Baseline, check: str, breaches: dict[int, str]):
    """Report the sweep against ``base`` with its ``breaches`` marked ``IMPOSSIBLE``, and fail."""
    __tracebackhide__ = True
    message = _impossible(breaches)
    comp = compare(result, base.curve)
    for i, row in enumerate(comp.rows):
        row.verdict = "IMPOSSIBLE" if i in breaches else None
    _report(result, base, check, "failed", message, comp)
    _fail(f"{message}\n{size_table(comp.rows)}")


def _missing(name: str, path: Path, nodeid: str) -> str:
    """Why a named baseline that does not exist fails, with the command that records it."""
    known = names_hint(name, path.parent)
    command = "pytest --scaling --scaling-update" + (f" {shlex.quote(nodeid)}" if nodeid else "")
    stop = "" if known.endswith("?") else "."
    return f"baseline {name!r} does not exist ({path}){known}{stop} To record it from this test: {command}"


def _owner_hint(result: SweepResult, base: Baseline) -> str:
    """Under ``--scaling-update``, for a test that compares with a baseline another test recorded: which test
    re-records it (a failure here after an intended change needs that test run, not this one)."""
    ctx = _context(result)
    if not ctx.update or not base.recorded_by or base.recorded_by == ctx.nodeid:
        return ""
    return (f"\nbaseline {base.name!r} is re-recorded only by the test that recorded it: "
            f"pytest --scaling --scaling-update {shlex.quote(base.recorded_by)}")


def _owns(nodeid: str, path: Path) -> bool:
    """Whether the test ``nodeid`` may re-record the baseline at ``path`` under ``--scaling-update``: the
    test that recorded it may, and anyone may when either side is unknown (outside pytest, older files)."""
    owner = Baseline.owner(path)
    return not owner or not nodeid or owner == nodeid


def _against(result: SweepResult, baseline: str | Baseline, check: str) -> tuple[Baseline, Comparison] | None:
    """(baseline, comparison), or None when this call recorded the baseline."""
    __tracebackhide__ = True
    base = _load_or_record(result, baseline, check)
    if base is None:
        return None
    return base, compare(result, base.curve)


def assert_on_curve(result: SweepResult, baseline: str | Baseline = "reference", rtol: float | None = None) -> None:
    """Fail unless every size's loss is on or below the baseline curve (within noise, or ``rtol``)."""
    __tracebackhide__ = True
    against = _against(result, baseline, "on_curve")
    if against is None:
        return
    base, comp = against
    z_all = norm.ppf(1 - ALPHA)
    failed = judge_on_curve(comp, rtol)
    worst = max(comp.rows, key=lambda r: r.deviation)
    rule = f"rtol={rtol:g}" if rtol is not None else (
        f"noise-aware: size z > {bound_text(comp.size_bounds)} or combined z > {z_all:.2f}; "
        f"{seed_noise_text(noise_record(comp), comp.rows)}")  # fmt: skip
    headline = (f"{'off' if failed else 'on'} baseline {base.name!r}: worst deviation "
                f"{100 * worst.deviation:+.2f}% at {worst.label} (z {worst.z:+.2f}); combined z "
                f"{comp.stouffer:+.2f}")  # fmt: skip
    _report(result, base, "on_curve", "failed" if failed else "passed", headline, comp)
    if failed:
        _fail(f"sweep is {headline} [{rule}]\n{size_table(comp.rows)}{_owner_hint(result, base)}")


def assert_beats_curve(result: SweepResult, baseline: str | Baseline = "reference", margin: float = 0.0) -> None:
    """Fail unless the sweep is better than the curve by ``margin`` (relative), with evidence."""
    __tracebackhide__ = True
    against = _against(result, baseline, "beats_curve")
    if against is None:
        return
    base, comp = against
    for r, bound in zip(comp.rows, comp.size_bounds, strict=True):
        r.z_better = (math.log(1 - margin) - math.log(r.loss / r.predicted)) / r.sigma
        r.verdict = "DIVERGED" if r.diverged else "better" if r.z_better > bound else "not better"
    combined = comp.combined([r.z_better for r in comp.rows])
    probability = float(norm.cdf(combined))
    failed = any(r.verdict != "better" for r in comp.rows) or combined < norm.ppf(1 - ALPHA)
    headline = (f"{'does not beat' if failed else 'beats'} baseline {base.name!r} by margin {100 * margin:.1f}%: "
                f"P(better) = {probability:.4f} (combined z {combined:+.2f})")  # fmt: skip
    _report(result, base, "beats_curve", "failed" if failed else "passed", headline, comp,
            probability_better=probability)
    if failed:
        _fail(f"sweep {headline}\n{size_table(comp.rows)}{_owner_hint(result, base)}")


def assert_exponent(result: SweepResult, baseline: str | Baseline = "reference", atol: float = 0.0) -> None:
    """Fail when the sweep's fitted compute exponent alpha is worse (smaller) than the baseline's by
    more than ``atol`` plus the bootstrap noise of both fits."""
    __tracebackhide__ = True
    base = _load_or_record(result, baseline, "exponent")
    if base is None:
        return
    try:
        cand = fit_curve(result.compute, [p.losses for p in result.points])
    except ScalingError as exc:
        _fail(f"cannot fit the sweep's exponent: {exc}")
    a_c, a_b = cand.params["alpha"], base.curve.params["alpha"]
    alphas = [CURVE_LAW.params(curve.samples)["alpha"] for curve in (cand, base.curve)]
    sd = math.sqrt(sum(np.var(a) for a in alphas))
    bound = a_b - atol - norm.ppf(1 - ALPHA) * sd
    failed = a_c < bound
    headline = (f"exponent alpha {a_c:.4f} vs baseline {base.name!r} {a_b:.4f} (bootstrap sd {sd:.4f}); "
                f"worst allowed {bound:.4f}")  # fmt: skip
    _report(result, base, "exponent", "failed" if failed else "passed", headline, candidate=cand, alpha=a_c,
            baseline_alpha=a_b)
    if failed:
        _fail(f"scaling exponent is worse: {headline}")


@dataclass
class Multiplier:
    """How much compute the baseline needs to reach the candidate's loss, relative to the candidate's."""

    value: float  # geometric mean over the sizes it is read off inside the baseline's range (> 1: more efficient)
    lo: float
    hi: float
    per_size: list[float]
    extrapolated: bool = False  # no size lies inside the baseline's range: the mean is over extrapolated sizes

    def __float__(self) -> float:
        return self.value


def compute_multiplier(result: SweepResult, baseline: str | Baseline = "reference", level: float = 0.95):
    """The compute multiplier with a bootstrap interval (baseline replicas x candidate seed noise);
    None when this call recorded the baseline. The headline mean leaves out sizes whose multiplier is read
    off outside the baseline's measured sizes (``SizeRow.extrapolated``), unless every size is such."""
    __tracebackhide__ = True
    against = _against(result, baseline, "multiplier")
    if against is None:
        return None
    base, comp = against
    lost = [r.label for r in comp.rows if not math.isfinite(r.loss)]
    if lost:
        _fail(f"no compute multiplier against {base.name!r}: every run diverged at {', '.join(lost)}")
    inside = [r for r in comp.rows if not r.extrapolated]
    rows = inside or comp.rows
    rng = np.random.default_rng(0)
    logs = []
    for r in rows:
        noise = r.seed_noise / math.sqrt(max(1, r.n_seeds))
        losses = r.loss * np.exp(rng.normal(0, noise, len(base.curve.samples)))
        needed = base.curve.compute_for(losses, replicas=True)
        logs.append(np.log(needed / r.flops))
    q = (1 - level) / 2
    with np.errstate(invalid="ignore"):  # replicas beyond the curve's reach are inf
        geo = np.exp(np.mean(logs, axis=0))
        lo, hi = np.nanpercentile(geo, [100 * q, 100 * (1 - q)])
    value = math.exp(np.mean(np.log([r.multiplier for r in rows])))
    mult = Multiplier(value, float(lo), float(hi), [r.multiplier for r in comp.rows], extrapolated=not inside)
    left_out = len(comp.rows) - len(inside)
    scope = ("every size extrapolated" if not inside
             else f"{len(inside)} of {len(comp.rows)} sizes; {left_out} extrapolated left out" if left_out
             else "")  # fmt: skip
    headline = (f"compute multiplier vs {base.name!r}: {value:.3g}x ({100 * level:g}% CI {lo:.3g} to {hi:.3g})"
                + (f" ({scope})" if scope else ""))  # fmt: skip
    _report(result, base, "multiplier", "info", headline, comp, multiplier=[value, float(lo), float(hi)],
            multiplier_extrapolated=not inside)
    return mult
