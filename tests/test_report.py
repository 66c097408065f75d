"""The report renderers: terminal lines, headline, Markdown, JSON and plots, on reports built by the gate."""

import contextlib
import copy
import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from pytest_scaling import __version__
from pytest_scaling.errors import ScalingError
from pytest_scaling.gate.gate import GateContext, ScalingGateError, assert_on_curve, compute_multiplier
from pytest_scaling.reports.json_report import json_report, write_json
from pytest_scaling.reports.markdown import MAX_MARKDOWN_BYTES, markdown, mermaid_chart, write_markdown
from pytest_scaling.reports.plots import write_plots
from pytest_scaling.reports.summary import by_test, headline, verdict_of
from pytest_scaling.reports.terminal import terminal_lines
from pytest_scaling.runners.records import SizePoint, SweepResult
from pytest_scaling.training.spec import ModelSpec

LAW = {"E": 2.381, "A": 72.14, "alpha": 0.1793}
GOOD = "benchmarks/test_gpt.py::test_reseeded"
BAD = "benchmarks/test_gpt.py::test_crippled"
SEED_NOISE = (-0.001, 0.001)  # two seeds around each size's loss (their mean is exact)


def law(compute, params=LAW):
    return params["E"] + params["A"] * np.asarray(compute, dtype=float) ** -params["alpha"]


def sweep(nodeid, deviations, directory, **context):
    """A two-seed sweep whose sizes w16-d1, w32-d2, ... lie ``deviations`` off LAW (inf: every seed diverged)."""
    points = []
    for i, dev in enumerate(deviations):
        flops = 2e9 * 10**i
        losses = [math.inf] * 2 if math.isinf(dev) else [float(law(flops)) * (1 + dev) * (1 + e) for e in SEED_NOISE]
        points.append(SizePoint(spec=ModelSpec(16 * (i + 1), i + 1, vocab_size=64), params=3120 * 4**i,
                                total_params=6000 * 4**i, tokens=62400 * 4**i, compute=flops, losses=losses,
                                diverged=2 * math.isinf(dev)))  # fmt: skip
    result = SweepResult("gpt@x", {"name": "synthetic", "hash": "h"}, {"lr": None}, points)
    result.context = GateContext(baselines_dir=directory, nodeid=nodeid, **context)
    return result


def make_report(nodeid, verdict="passed", deviations=(-0.0057, 0.0023, 0.0026), baseline="reference", tmp=None):
    """A report built by the gate: ``recorded`` or ``updated`` records ``baseline`` from a sweep on LAW; otherwise
    a baseline on LAW with as many sizes is recorded first, then ``assert_on_curve`` judges the sweep."""
    directory = Path(tmp or tempfile.mkdtemp())
    if verdict in ("recorded", "updated"):
        result = sweep(nodeid, [0.0] * len(deviations), directory, update=True)
        for _ in range(1 + (verdict == "updated")):
            assert_on_curve(result, baseline)
        return result.context.reports[-1]
    if not (directory / f"{baseline}.json").exists():
        assert_on_curve(sweep("recorder", [0.0] * len(deviations), directory, update=True), baseline)
    result = sweep(nodeid, deviations, directory)
    with contextlib.suppress(ScalingGateError):
        assert_on_curve(result, baseline)
    report = result.context.reports[-1]
    assert report.verdict == verdict, report.message
    return report


def multiplier_report(nodeid, deviations=(-0.0057, 0.0023, 0.0026)):
    directory = Path(tempfile.mkdtemp())
    assert_on_curve(sweep("recorder", [0.0] * len(deviations), directory, update=True), "reference")
    result = sweep(nodeid, deviations, directory)
    compute_multiplier(result, "reference")
    return result.context.reports[-1]


@pytest.fixture(scope="module")
def built():
    """Like a real run: a recorded baseline, a passing on_curve + multiplier test, a failing test."""
    return [
        make_report(GOOD, "recorded"),
        make_report(GOOD, "passed"),
        multiplier_report(GOOD),
        make_report(BAD, "failed", deviations=(-0.0687, 0.0252, 0.0465)),
    ]


@pytest.fixture
def reports(built):
    return [copy.deepcopy(report) for report in built]


def test_grouping_keeps_first_appearance_and_verdict_precedence(reports):
    assert list(by_test(reports)) == [GOOD, BAD]
    assert [len(g) for g in by_test(reports).values()] == [3, 1]
    assert verdict_of(reports) == "failed"
    assert verdict_of(reports[:3]) == "passed"
    assert verdict_of(reports[:1]) == "recorded"
    assert verdict_of([make_report(GOOD, "updated"), reports[2]]) == "updated"


def test_terminal_lines_show_every_size_laws_and_messages(reports):
    lines = terminal_lines(reports)
    text = "\n".join(lines)
    assert f"{GOOD}: PASSED" in lines and f"{BAD}: FAILED" in lines
    bad = lines[lines.index(f"{BAD}: FAILED") :]
    for label, verdict, dev in [("w16-d1", "better", "-6.87%"), ("w32-d2", "WORSE", "+2.52%"),
                                ("w48-d3", "WORSE", "+4.65%")]:  # fmt: skip
        row = next(line for line in bad if line.split()[:1] == [label])
        assert verdict in row and dev in row
    good = lines[: lines.index(f"{BAD}: FAILED")]
    assert sum(line.split()[:1] == ["w16-d1"] for line in good) == 1  # one table per baseline, not per report
    assert "on curve" in text and "law: this run L(C) = " in text and "|  baseline 'reference' L(C) = " in text
    assert re.search(r"recorded +on_curve: baseline 'reference' recorded at \S+reference.json", text)
    assert re.search(r"info +multiplier: compute multiplier vs 'reference': [\d.]+x \(95% CI", text)
    assert text.count("  crossover: ") == 2  # one per compared table
    assert max(map(len, lines)) <= 120


def test_recorded_baseline_shows_no_comparison():
    lines = terminal_lines([make_report(GOOD, "recorded")])
    header = next(line for line in lines if line.split()[:1] == ["size"])
    assert "loss" in header and "curve" not in header and "dev" not in header
    assert all(line.rstrip().endswith("recorded") for line in lines if line.split()[:1] in (["w16-d1"], ["w32-d2"]))
    law_line = next(line for line in lines if line.startswith("  law:"))
    assert "this run" not in law_line and "baseline 'reference'" in law_line


def test_headline(reports):
    assert headline(reports) == (
        f"pytest-scaling: FAILED — 1 of 2 scaling checks failed; worst deviation +4.65% (w48-d3 in {BAD}); "
        "1 baseline recorded: 'reference'"
    )
    assert headline(reports[1:3]) == (
        f"pytest-scaling: passed — 1 scaling check passed; worst deviation +0.26% (w48-d3 in {GOOD})"
    )
    assert headline([make_report(GOOD, "recorded"), make_report(BAD, "recorded", baseline="wide")]) == (
        "pytest-scaling: recorded — no comparison; 2 baselines recorded: 'reference', 'wide'"
    )
    diverged = make_report(BAD, "failed", deviations=(0.0, math.inf, 0.0))
    assert headline([diverged]).endswith(f"1 of 1 scaling check failed; w32-d2 diverged (in {BAD})")
    assert headline([]) == "pytest-scaling: no scaling checks ran"


def test_markdown_headline_tables_and_footer(reports):
    meta = {"version": __version__, "seconds": 12.34, "device": "cpu", "data": {"name": "synthetic", "hash": "0" * 40}}
    md = markdown(reports, meta)
    marker, first = md.splitlines()[:2]
    assert marker == "<!-- pytest-scaling report -->"  # the workflow finds its sticky PR comment by it
    assert first.startswith("## ❌ pytest-scaling: FAILED — 1 of 2 scaling checks failed")
    assert len(re.findall(r"^\| size +\| +params +\| +tokens .*\| verdict +\|$", md, re.M)) == 2
    assert len(re.findall(r"^\|-+(\|-+)+\|$", md, re.M)) == 2
    assert md.index(f"### ❌ `{BAD}` — failed") < md.index(f"### ✅ `{GOOD}` — passed")  # failing first
    assert "❌ WORSE" in md and "✅ on curve" in md and "📌 **recorded**" in md
    footer = md.splitlines()[-1]
    assert f"pytest-scaling {__version__}" in footer and "run time 12.3 s" in footer
    assert "device: cpu" in footer and "synthetic (000000000000)" in footer
    assert "Truncated" not in md


def test_markdown_truncates_500_tests_keeping_failures_first():
    passing = make_report("template", "passed", deviations=(0.001,) * 8)  # built once, then named 499 times
    many = [dataclasses.replace(passing, nodeid=f"tests/test_big.py::test_case[{i}-{'x' * 60}]") for i in range(499)]
    failing = "tests/test_big.py::test_the_failing_one"
    md = markdown([*many, make_report(failing, "failed", deviations=(0.05,) * 8)], {"seconds": 1.0})
    assert len(md.encode()) < MAX_MARKDOWN_BYTES
    assert md.splitlines()[1].startswith("## ❌ pytest-scaling: FAILED — 1 of 500 scaling checks failed")
    sections = re.findall(r"^### .*$", md, re.M)
    assert sections[0] == f"### ❌ `{failing}` — failed" and 1 < len(sections) < 500
    match = re.search(r"details for (\d+) of 500 tests \(failing first\), (\d+) more in one line each, (\d+) omitted",
                      md)  # fmt: skip
    assert match and int(match[1]) == len(sections) and sum(map(int, match.groups())) == 500
    assert md.count("\n- ✅ `tests/test_big.py::test_case[") == int(match[2])
    assert md.rstrip().endswith("run time 1.0 s</sub>")


def test_json_report_keys_and_non_finite_values(reports, tmp_path):
    reports[3] = make_report(BAD, "failed", deviations=(-0.0687, 0.0252, math.inf))  # w48-d3 diverged
    report = json_report(reports, {"version": __version__, "seconds": 3.5})
    assert report["metadata"] == {"version": __version__, "seconds": 3.5}
    assert report["verdict"] == "failed" and report["headline"] == headline(reports)
    assert len(report["tests"]) == 4
    for entry in report["tests"]:
        assert {"nodeid", "baseline", "check", "verdict", "message", "sizes"} <= entry.keys()
        assert "plot" not in entry
        for size in entry["sizes"]:
            assert {"params", "tokens", "flops", "loss", "loss_std", "predicted", "deviation", "verdict",
                    "extrapolated"} <= size.keys()  # fmt: skip
    assert [s["verdict"] for s in report["tests"][0]["sizes"]] == ["recorded"] * 3
    assert report["tests"][2]["sizes"][0]["verdict"] is None  # the multiplier makes no per-size call
    assert report["tests"][3]["sizes"][2]["loss"] is None
    path = write_json(reports, tmp_path / "out" / "scaling.json", {"seconds": 3.5})
    loaded = json.loads(path.read_text())
    assert loaded["tests"][3]["sizes"][2]["deviation"] is None
    assert loaded["tests"][3]["sizes"][1]["verdict"] == "WORSE" and loaded["metadata"] == {"seconds": 3.5}


def test_write_markdown_to_file_and_github_summary(reports, tmp_path, monkeypatch):
    path = write_markdown(reports, tmp_path / "deep" / "dir" / "report.md")
    assert path.read_text(encoding="utf-8") == markdown(reports)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert write_markdown(reports, "github") == summary
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n<!-- pytest-scaling report -->\n## ❌ pytest-scaling: FAILED")
    assert text.endswith("</sub>\n\n")
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    with pytest.raises(ScalingError, match=r"needs \$GITHUB_STEP_SUMMARY"):
        write_markdown(reports, "github")


def test_write_plots_one_png_per_test(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib")
    clashing = ["tests/test_x.py::test_a[w=1]", "tests/test_x.py::test_a[w:1]"]  # same safe name
    reports = [make_report(clashing[0], "failed", deviations=(0.03, 0.05, 0.04)), make_report(clashing[1]),
               dataclasses.replace(make_report("tests/test_x.py::test_no_plot"), plot=None)]  # fmt: skip
    paths = write_plots(reports, tmp_path / "plots")
    assert len(paths) == 2 and len(set(paths)) == 2
    for path in paths:
        assert path.parent == tmp_path / "plots" and re.fullmatch(r"[A-Za-z0-9_.-]+\.png", path.name)
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_write_plots_without_matplotlib(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ScalingError, match=r"--scaling-plot needs matplotlib: pip install 'pytest-scaling\[plot\]'"):
        write_plots([make_report(GOOD)], tmp_path)


def test_extrapolated_sizes_are_marked_and_left_out_of_the_multiplier(tmp_path):
    assert_on_curve(sweep("recorder", [0.0] * 3, tmp_path, update=True), "reference")
    result = sweep(GOOD, [0.0] * 4, tmp_path)  # one size beyond the baseline's largest
    multiplier = compute_multiplier(result, "reference")
    report = result.context.reports[-1]
    assert [r.extrapolated for r in report.sizes] == [False, False, False, True]
    assert not multiplier.extrapolated and "(3 of 4 sizes; 1 extrapolated left out)" in report.message
    assert multiplier.value == pytest.approx(math.exp(np.mean(np.log(multiplier.per_size[:3]))))
    lines = terminal_lines([report])
    assert "x (extrap.)" in next(line for line in lines if line.split()[:1] == ["w64-d4"])
    assert any(line.startswith("  (extrap.): read off the baseline's law beyond its sizes") for line in lines)
    md = markdown([report])
    assert "(extrap.)" in md and "Crossover: " in md
    entry = json_report([report])["tests"][0]
    assert [size["extrapolated"] for size in entry["sizes"]] == [False, False, False, True]
    assert {"compute", "lo", "hi", "searched_to", "favours", "better_at_largest", "trend", "slope", "slope_lo",
            "slope_hi"} == set(entry["crossover"])  # fmt: skip


MERMAID_DIR = Path(os.environ.get("SCALING_MERMAID_DIR", Path(__file__).resolve().parents[1] / ".ci" / "mermaid"))
PARSE_MJS = """
import { createRequire } from "module";
import fs from "fs";
const dir = process.argv[2];
const { JSDOM } = createRequire(dir + "/")("jsdom");
const dom = new JSDOM("<!DOCTYPE html><body></body>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import(dir + "/node_modules/mermaid/dist/mermaid.core.mjs");
mermaid.initialize({ startOnLoad: false });
for (const file of process.argv.slice(3)) {
  await mermaid.parse(fs.readFileSync(file, "utf8"));  // throws on a syntax error: exit status 1
}
"""


def test_markdown_embeds_a_mermaid_chart():
    report = make_report(BAD, "failed", deviations=(-0.0687, 0.0252, 0.0465))
    md = markdown([report])
    blocks = re.findall(r"```mermaid\n(.*?)```", md, re.S)
    assert len(blocks) == 1 and blocks[0].startswith("xychart-beta\n")
    lines = [line.split("[", 1)[1].rstrip("]").split(", ") for line in blocks[0].splitlines() if " line [" in line]
    assert len(lines) == 3 and all(len(values) == 3 for values in lines)  # three series over three sizes
    assert [float(v) for v in lines[2]] == [round(r.loss, 4) for r in report.sizes]
    assert [float(v) for v in lines[0]] == [round(r.predicted, 4) for r in report.sizes]
    assert mermaid_chart(make_report(GOOD, "recorded")) is None  # a recording compares nothing


def test_the_mermaid_chart_parses_with_mermaid(tmp_path):
    blocks = re.findall(r"```mermaid\n(.*?)```", markdown([make_report(BAD, "failed", deviations=(-0.07, 0.03, 0.05))]),
                        re.S)  # fmt: skip
    if shutil.which("node") is None or not (MERMAID_DIR / "node_modules" / "mermaid").is_dir():
        pytest.skip(f"mermaid is not installed in {MERMAID_DIR} (.ci/run installs it with npm): parse not checked")
    (tmp_path / "parse.mjs").write_text(PARSE_MJS)
    (tmp_path / "chart.mmd").write_text(blocks[0])
    (tmp_path / "broken.mmd").write_text(blocks[0].replace("line [", "line [oops, ", 1))
    node = ["node", str(tmp_path / "parse.mjs"), str(MERMAID_DIR)]
    assert subprocess.run([*node, str(tmp_path / "chart.mmd")], capture_output=True, timeout=120).returncode == 0
    assert subprocess.run([*node, str(tmp_path / "broken.mmd")], capture_output=True, timeout=120).returncode != 0
