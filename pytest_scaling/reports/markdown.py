"""The Markdown report for a pull request: failing tests first, each with its table and a mermaid chart,
under GitHub's comment size."""

from __future__ import annotations

import math
import os
import re
import textwrap
from pathlib import Path

from .. import __version__
from ..errors import ScalingError
from ..fitting.laws import CURVE_LAW
from ..gate.records import GateReport
from .summary import (
    MARKERS,
    by_test,
    caption,
    crossover_text,
    extrapolation_note,
    headline,
    laws_text,
    primary_reports,
    rank,
    size_table,
    verdict_of,
)

MAX_MARKDOWN_BYTES = 64_000  # a GitHub comment holds 65,536 characters


COMMENT_MARKER = "<!-- pytest-scaling report -->"  # the first line: finds the PR comment to update in place


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
    for report in primary_reports(reports):
        lines += ["", _md_escape(caption(report)), "", size_table(report, "github", mark=True), ""]
        note = extrapolation_note(report)
        if note:
            lines += [_md_escape(note), ""]
        lines.append(f"Fitted law: {_md_escape(laws_text(report))}")
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
    groups = sorted(by_test(reports).items(), key=lambda item: rank(verdict_of(item[1])))
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
