"""Render the gate's reports: terminal summary, one-line headline, Markdown, JSON and plots.

A report is the :class:`~pytest_scaling.gate.records.GateReport` the gate builds per assertion-helper call;
several may share a test's nodeid. Tests keep the order of their first report; Markdown lists failing
ones first. A multiplier read off outside the baseline's measured sizes is marked "(extrap.)", and every
comparison states where the two fitted laws cross (:class:`~pytest_scaling.gate.records.Crossover`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import textwrap
from pathlib import Path

from tabulate import tabulate

from .. import __version__
from ..errors import ScalingError
from ..fitting.laws import CURVE_LAW
from ..gate.records import Crossover, GateReport, SizeRow, seed_noise_text
from ..naming import size_label

MAX_MARKDOWN_BYTES = 64_000  # a GitHub comment holds 65,536 characters
COMMENT_MARKER = "<!-- pytest-scaling report -->"  # the first line: finds the PR comment to update in place
TERMINAL_WIDTH = 120  # notes under a terminal table wrap here
# most telling first; "caught": a check that failed inside a test that expected it to (pytest.raises)
VERDICT_ORDER = ("failed", "passed", "caught", "updated", "recorded", "info")
FAILING_ROWS = {"WORSE", "not better", "DIVERGED", "IMPOSSIBLE"}
MARKERS = {"failed": "❌", "passed": "✅", "caught": "🎯", "updated": "🔄", "recorded": "📌", "info": "ℹ️"}


def by_test(reports: list[GateReport]) -> dict[str, list[GateReport]]:
    """The reports grouped by nodeid, tests in order of their first report."""
    groups: dict[str, list[GateReport]] = {}
    for report in reports:
        groups.setdefault(report.nodeid, []).append(report)
    return groups


def _rank(verdict: str) -> int:
    return VERDICT_ORDER.index(verdict) if verdict in VERDICT_ORDER else len(VERDICT_ORDER)


def verdict_of(reports: list[GateReport]) -> str:
    """One verdict for a test's (or a run's) reports: failed > passed > updated > recorded > info."""
    return min((r.verdict for r in reports), key=_rank, default="info")


def _primary(reports: list[GateReport]) -> GateReport:
    """The report whose per-size table tells the most: a gating verdict first, then per-size verdicts."""
    return min(reports, key=lambda r: (_rank(r.verdict), not any(s.verdict for s in r.sizes)))


def _tables(reports: list[GateReport]) -> list[GateReport]:
    """One primary report per baseline of a test."""
    per_baseline: dict[str, list[GateReport]] = {}
    for report in reports:
        per_baseline.setdefault(report.baseline, []).append(report)
    return [_primary(group) for group in per_baseline.values()]


def _si(x: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= 0.9995 * scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:g}"


def progress_line(event) -> str:
    """One trained run of a sweep (a :class:`~pytest_scaling.runners.parallel.RunProgress`), e.g.
    ``[3/10] w32-d1 seed 1  loss 3.6585  41k tok/s  4.1 s  ETA 0:52``."""
    r, eta = event.record, int(round(event.eta_seconds))
    return (f"[{event.done}/{event.total}] {size_label(r.spec)} seed {r.seed}  loss {r.loss:.4f}  "
            f"{_si(round(r.tokens_per_second))} tok/s  {r.seconds:.1f} s  ETA {eta // 60}:{eta % 60:02d}")


def _pct(x: float) -> str:
    return f"{100 * x:+.2f}%" if math.isfinite(x) else "diverged" if x > 0 else "n/a"


def _signed(x: float) -> str:
    return f"{x:+.2f}" if math.isfinite(x) else "inf"


def _loss(row: SizeRow) -> str:
    if not math.isfinite(row.loss):
        return "diverged"
    text = f"{row.loss:.4f}" + (f" ± {row.loss_std:.4f}" if row.n_seeds > 1 else "")
    return text + (f" ({row.diverged} diverged)" if row.diverged else "")


def _row_verdict(report: GateReport, row: SizeRow) -> str | None:
    return row.verdict or (None if report.compared else report.verdict)


def _multiplier(row: SizeRow) -> str:
    if not row.multiplier > 0:
        return "n/a"
    if math.isinf(row.multiplier):
        return "beyond the curve"  # the curve never reaches this loss
    return f"{row.multiplier:.3g}x" + (" (extrap.)" if row.extrapolated else "")


def _table(report: GateReport, tablefmt: str, mark: bool = False) -> str:
    """The per-size table; a recorded baseline shows its measurements only (nothing to compare with)."""
    compared = report.compared
    searched = any(row.lr_multiplier is not None for row in report.sizes)
    headers = ["size", "params", "tokens", "FLOPs", "loss", *(["LR"] if searched else [])]
    headers += ["curve", "dev", "z", "mult", "verdict"] if compared else ["verdict"]
    body = []
    for row in report.sizes:
        verdict = _row_verdict(report, row) or ""
        if mark and verdict:
            verdict = f"{'❌' if verdict in FAILING_ROWS else MARKERS.get(verdict, '✅')} {verdict}"
        cells = [row.label, _si(row.params), _si(row.tokens), f"{row.flops:.3g}", _loss(row)]
        if searched:
            cells.append(_lr(row))
        if compared:
            cells += [f"{row.predicted:.4f}", _pct(row.deviation), _signed(row.z), _multiplier(row)]
        body.append([*cells, verdict])
    align = ["left"] + ["right"] * (len(headers) - 2) + ["left"]
    return tabulate(body, headers=headers, tablefmt=tablefmt, disable_numparse=True, colalign=align)


def _lr(row: SizeRow) -> str:
    """'0.0051 x0.5 (base x1)': the chosen peak learning rate and multiplier, and the baseline's choice."""
    if row.lr_multiplier is None:
        return ""
    lr = f"{row.lr:.3g} " if row.lr is not None else ""
    base = f" (base x{row.baseline_lr_multiplier:g})" if row.baseline_lr_multiplier is not None else ""
    return f"{lr}x{row.lr_multiplier:g}{base}"


def _law(law: dict | None) -> str:
    if not law:
        return "not fitted (needs 3 sizes, none diverged)"
    return CURVE_LAW.text(law)


def _caption(report: GateReport) -> str:
    """Where the table comes from: the baseline, the seed noise and the run counts."""
    noise = report.noise
    parts = [f"baseline '{report.baseline}' ({report.check})"]
    if report.compared:
        parts.append(seed_noise_text(noise, report.sizes))
        parts.append(f"combined z {_signed(report.combined_z)}")
    parts.append(f"{report.runs} runs, {report.trained} trained now")
    if report.skipped:
        parts.append(f"{len(report.skipped)} sizes skipped by --scaling-max-params")
    return "; ".join(parts)


def _laws(report: GateReport) -> str:
    base = f"baseline '{report.baseline}' {_law(report.baseline_law)}"
    return base if not report.compared else f"this run {_law(report.candidate_law)}  |  {base}"


def crossover_text(crossover: Crossover | None) -> str:
    """How the gap between the candidate and the baseline moves with compute and, when it moves beyond seed
    noise, where the two fitted laws cross."""
    if crossover is None:
        return "not computed (this run's law needs 3 sizes, none diverged)"
    slope = (f"{100 * crossover.slope:+.2f}% per 10x compute, 95% CI {100 * crossover.slope_lo:+.2f}% to "
             f"{100 * crossover.slope_hi:+.2f}%")  # fmt: skip
    if crossover.trend == "none":
        return f"none claimed: the gap shows no trend with compute beyond seed noise ({slope})"
    gap = "advantage" if crossover.better_at_largest else "disadvantage"
    trend = f"this run's {gap} {crossover.trend} with compute ({slope})"
    if crossover.compute is None:
        return f"{trend}; the laws do not cross up to C = {crossover.searched_to:.3g} (1000x the largest size)"
    lo = f"{crossover.lo:.3g}" if crossover.lo is not None else "none"
    hi = f"{crossover.hi:.3g}" if crossover.hi is not None else f"beyond {crossover.searched_to:.3g}"
    return f"{trend}; the laws cross at C = {crossover.compute:.3g} (95% CI {lo} to {hi})"


def _extrapolation_note(report: GateReport) -> str | None:
    marked = [r.label for r in report.sizes if r.extrapolated and r.multiplier > 0]
    if not report.compared or not marked:
        return None
    return f"(extrap.): read off the baseline's law beyond its sizes ({_baseline_range(report)}): {', '.join(marked)}"


def _baseline_range(report: GateReport) -> str:
    points = report.plot.baseline_points["compute"] if report.plot else []
    return f"{min(points):.3g} to {max(points):.3g} FLOPs" if points else "range unknown"


def terminal_lines(reports: list[GateReport]) -> list[str]:
    """The terminal summary: per test its verdict, per-size table(s), fitted laws, crossover and messages."""
    lines: list[str] = []
    for nodeid, group in by_test(reports).items():
        lines += ["", f"{nodeid}: {verdict_of(group).upper()}"]
        for report in _tables(group):
            lines.append(f"  {_caption(report)}")
            lines += ["  " + line for line in _table(report, "simple").splitlines()]
            notes = [_extrapolation_note(report), f"law: {_laws(report)}"]
            notes.append(f"crossover: {crossover_text(report.crossover)}" if report.compared else None)
            notes += [f"warning: {warning}" for warning in report.warnings]
            for note in filter(None, notes):
                lines += textwrap.wrap(note, width=TERMINAL_WIDTH, initial_indent="  ", subsequent_indent="    ")
        lines += [f"  {r.verdict:<8} {r.check}: {r.message}" for r in group]
    return lines


def _worst(reports: list[GateReport]) -> str:
    """'; worst deviation +4.65% (w32-d2 in node)' over the compared sizes of ``reports``, or ''."""
    rows = [(row, r.nodeid) for r in reports if r.compared for row in r.sizes]
    if not rows:
        return ""
    row, nodeid = max(rows, key=lambda item: -math.inf if math.isnan(item[0].deviation) else item[0].deviation)
    if math.isinf(row.deviation):
        return f"; {row.label} diverged (in {nodeid})"
    return f"; worst deviation {_pct(row.deviation)} ({row.label} in {nodeid})"


def _recorded(reports: list[GateReport]) -> str:
    parts = []
    for verdict in ("recorded", "updated"):
        names = list(dict.fromkeys(f"'{r.baseline}'" for r in reports if r.verdict == verdict))
        if names:
            parts.append(f"{len(names)} baseline{'s' * (len(names) > 1)} {verdict}: {', '.join(names)}")
    return "; ".join(parts)


def headline(reports: list[GateReport]) -> str:
    """One line for a bot: the run's verdict, how many checks failed, the worst deviation, recorded baselines."""
    checks = [r for r in reports if r.verdict in ("passed", "failed")]
    failed = [r for r in checks if r.verdict == "failed"]
    caught = [r for r in reports if r.verdict == "caught"]
    recorded = _recorded(reports)
    if caught:
        recorded = f"{len(caught)} expected regression{'s' * (len(caught) != 1)} caught" + (
            f"; {recorded}" if recorded else "")  # fmt: skip
    plural = "s" * (len(checks) != 1)
    if failed:
        text = f"FAILED — {len(failed)} of {len(checks)} scaling check{plural} failed{_worst(failed)}"
    elif checks:
        text = f"passed — {len(checks)} scaling check{plural} passed{_worst(checks)}"
    elif recorded:
        return f"pytest-scaling: {verdict_of(reports)} — no comparison; {recorded}"
    elif reports:
        text = f"info — no gating checks; {len(reports)} informational report{'s' * (len(reports) != 1)}"
    else:
        return "pytest-scaling: no scaling checks ran"
    return f"pytest-scaling: {text}" + (f"; {recorded}" if recorded else "")


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>|#])", r"\\\1", text)


def _code(text: str) -> str:
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def _quoted(text: str) -> str:
    return '"' + text.replace('"', "'").replace("\n", " ") + '"'


def mermaid_chart(report: GateReport) -> str | None:
    """A mermaid ``xychart-beta`` block of a comparison (None for a recorded baseline or no finite size):
    on a log10-compute axis at this run's sizes, three lines in this order: the baseline's curve through
    its measured sizes (what the gate compares with), the baseline's fitted law, and this run's losses.
    GitHub renders it in PR comments and job summaries."""
    rows = [r for r in report.sizes if math.isfinite(r.loss)]
    if not report.compared or not rows:
        return None
    law = report.baseline_law
    series = [
        [r.predicted for r in rows],
        list(CURVE_LAW.predict(law, C=[r.flops for r in rows])),
        [r.loss for r in rows],
    ]
    low, high = min(map(min, series)), max(map(max, series))
    pad = 0.05 * (high - low) or 0.05 * high
    labels = ", ".join(_quoted(f"{math.log10(r.flops):.2f}") for r in rows)
    title = f"{report.check} vs baseline '{report.baseline}': {report.verdict}"
    lines = ["```mermaid", "xychart-beta", f"    title {_quoted(title)}",
             f"    x-axis {_quoted('log10 training compute (FLOPs)')} [{labels}]",
             f"    y-axis {_quoted('loss (nats/token)')} {low - pad:.4f} --> {high + pad:.4f}"]  # fmt: skip
    lines += [f"    line [{', '.join(f'{v:.4f}' for v in values)}]" for values in series]
    return "\n".join([*lines, "```"])


CHART_LEGEND = "Lines: 1st the baseline's curve through its measured sizes, 2nd its fitted law, 3rd this run."


def _md_section(nodeid: str, reports: list[GateReport]) -> str:
    verdict = verdict_of(reports)
    lines = [f"### {MARKERS.get(verdict, '')} {_code(nodeid)} — {verdict}", ""]
    lines += [f"- {MARKERS.get(r.verdict, '')} **{r.verdict}** {_code(r.check)}: {_md_escape(r.message)}"
              for r in reports]  # fmt: skip
    for report in _tables(reports):
        lines += ["", _md_escape(_caption(report)), "", _table(report, "github", mark=True), ""]
        note = _extrapolation_note(report)
        if note:
            lines += [_md_escape(note), ""]
        lines.append(f"Fitted law: {_md_escape(_laws(report))}")
        if report.compared:
            lines += ["", f"Crossover: {_md_escape(crossover_text(report.crossover))}"]
        lines += ["", *(f"⚠️ {_md_escape(warning)}" for warning in report.warnings)] if report.warnings else []
        chart = mermaid_chart(report)
        if chart:
            lines += ["", chart, "", CHART_LEGEND]
    return "\n".join(lines) + "\n\n"


def _md_oneline(nodeid: str, reports: list[GateReport]) -> str:
    verdict = verdict_of(reports)
    message = textwrap.shorten(reports[0].message, 200, placeholder=" …")
    return f"- {MARKERS.get(verdict, '')} {_code(nodeid)} — {verdict}: {_md_escape(message)}\n"


def _footer(metadata: dict | None) -> str:
    """'pytest-scaling 0.1.0 · device: cpu · data: synthetic (1a2b3c4d5e6f) · run time 12.3 s · ...'."""
    meta = dict(metadata or {})
    parts = [f"pytest-scaling {meta.pop('version', __version__)}"]
    for key, value in meta.items():
        if key == "seconds":
            parts.append(f"run time {value:.1f} s")
        elif isinstance(value, dict) and "name" in value:
            parts.append(f"{key}: {value['name']}" + (f" ({str(value['hash'])[:12]})" if "hash" in value else ""))
        else:
            parts.append(f"{key}: {value}")
    return "---\n<sub>" + " · ".join(_md_escape(p) for p in parts) + "</sub>\n"


def markdown(reports: list[GateReport], metadata: dict | None = None) -> str:
    """GitHub-flavoured Markdown for a PR comment or step summary, under ``MAX_MARKDOWN_BYTES``.

    A hidden marker (:data:`COMMENT_MARKER`) and the headline come first, then a section per test, failing
    tests first. When the sections do not
    fit, the remaining tests get one line each, then only a count, and a note says so.
    """
    head = f"{COMMENT_MARKER}\n## {MARKERS.get(verdict_of(reports), '')} {_md_escape(headline(reports))}\n\n"
    footer = _footer(metadata)
    groups = sorted(by_test(reports).items(), key=lambda item: _rank(verdict_of(item[1])))
    budget = MAX_MARKDOWN_BYTES - len(head.encode()) - len(footer.encode()) - 400  # 400: the truncation note
    body, shown, full = [], 0, 0
    for render in (_md_section, _md_oneline):
        for nodeid, group in groups[shown:]:
            text = render(nodeid, group)
            if len(text.encode()) > budget:
                break
            body.append(text)
            budget -= len(text.encode())
            shown += 1
        if render is _md_section:
            full = shown
    if full < len(groups):
        body.append(f"\n**Truncated to stay under {MAX_MARKDOWN_BYTES // 1000} KB:** details for {full} of "
                    f"{len(groups)} tests (failing first), {shown - full} more in one line each, "
                    f"{len(groups) - shown} omitted; "
                    "the JSON report (--scaling-json) has everything.\n\n")  # fmt: skip
    return head + "".join(body) + footer


def write_markdown(reports: list[GateReport], path: str | Path, metadata: dict | None = None) -> Path:
    """Write :func:`markdown` to ``path``; ``"github"`` appends it to the file named by $GITHUB_STEP_SUMMARY."""
    text = markdown(reports, metadata)
    if str(path) == "github":
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if not summary:
            raise ScalingError("--scaling-markdown github needs $GITHUB_STEP_SUMMARY (set by GitHub Actions); "
                               "outside Actions give a file path")  # fmt: skip
        target = Path(summary)
        with target.open("a", encoding="utf-8") as handle:
            handle.write(text + "\n")
        return target
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def _finite(value):
    """``value`` with every non-finite float replaced by None (strict JSON has no inf or nan)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_report(reports: list[GateReport], metadata: dict | None = None) -> dict:
    """``{"headline", "verdict", "tests": [one entry per report], "metadata"}``, strict-JSON-safe (inf -> None).

    An entry is the report less its plot data; every size has a ``verdict`` (None for a bare comparison)
    and ``extrapolated``; a comparison has ``crossover``.
    """
    tests = []
    for report in reports:
        entry = {k: v for k, v in report.to_dict().items() if k != "plot"}
        for size, row in zip(entry["sizes"], report.sizes, strict=True):
            size["verdict"] = _row_verdict(report, row)
        tests.append(entry)
    return _finite({"headline": headline(reports), "verdict": verdict_of(reports), "tests": tests,
                    "metadata": dict(metadata or {})})  # fmt: skip


def write_json(reports: list[GateReport], path: str | Path, metadata: dict | None = None) -> Path:
    """Write :func:`json_report` to ``path`` (parents created) as strict JSON."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(json_report(reports, metadata), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return target


def _file_name(nodeid: str, used: set[str]) -> str:
    """A filesystem-safe, unique PNG name for a nodeid."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("._") or "test"
    name = safe[:120]
    if name != safe or name in used:
        name += "-" + hashlib.sha1(nodeid.encode()).hexdigest()[:8]
    used.add(name)
    return name + ".png"


def write_plots(reports: list[GateReport], directory: str | Path) -> list[Path]:
    """A PNG per test with plot data: loss against compute (log-log), the baseline curve with its 95% band
    and measured points, this run's sizes with seed-spread error bars and its fitted law."""
    try:
        import numpy as np
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter
    except ImportError:
        raise ScalingError("--scaling-plot needs matplotlib: pip install 'pytest-scaling[plot]'") from None
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written, used = [], set()
    for nodeid, group in by_test(reports).items():
        plotted = [r for r in group if r.plot]
        if not plotted:
            continue
        report = _primary(plotted)
        plot = report.plot
        fig = Figure(figsize=(8, 5.5), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        base = f"baseline '{report.baseline}'"
        ax.fill_between(plot.compute, plot.baseline_lo, plot.baseline_hi, color="C0", alpha=0.25,
                        label=f"{base} 95% band")  # fmt: skip
        ax.plot(plot.compute, plot.baseline, color="C0", label=f"{base}: {_law(report.baseline_law)}")
        points = plot.baseline_points
        ax.plot(points["compute"], points["loss"], "o", mfc="none", color="C0", label=f"{base} sizes")
        rows = [r for r in report.sizes if math.isfinite(r.loss)]
        ax.errorbar([r.flops for r in rows], [r.loss for r in rows], yerr=[r.loss_std for r in rows],
                    fmt="s", color="C3", capsize=3, label="this run (mean ± seed std)")  # fmt: skip
        for r in rows:
            ax.annotate(r.label, (r.flops, r.loss), textcoords="offset points", xytext=(5, 5), fontsize=8)
        if report.candidate_law:
            law = report.candidate_law
            grid = np.asarray(plot.compute)
            ax.plot(grid, CURVE_LAW.predict(law, C=grid), "--", color="C3",
                    label=f"this run: {_law(law)}")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(MaxNLocator(8))  # losses span well under a decade: plain ticks read best
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training compute C (FLOPs)")
        ax.set_ylabel("validation loss (nats/token)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        title = nodeid if len(nodeid) <= 90 else nodeid[:89] + "…"
        ax.set_title(f"{title}\n{report.check} vs {base}: {report.verdict.upper()}", fontsize=10,
                     color="C3" if report.verdict == "failed" else "black")  # fmt: skip
        path = directory / _file_name(nodeid, used)
        fig.savefig(path, dpi=100)
        written.append(path)
    return written
