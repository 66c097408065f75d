"""The terminal: the progress line of each trained run and the end-of-session summary."""

from __future__ import annotations

import textwrap

from ..gate.records import GateReport
from .summary import (
    by_test,
    caption,
    crossover_text,
    extrapolation_note,
    laws_text,
    primary_reports,
    si,
    size_table,
    verdict_of,
)

TERMINAL_WIDTH = 120  # notes under a terminal table wrap here


def progress_line(event) -> str:
    """One trained run of a sweep (a :class:`~pytest_scaling.runners.parallel.RunProgress`), e.g.
    ``[3/10] w32-d1 seed 1  loss 3.6585  41k tok/s  4.1 s  ETA 0:52``."""
    r, eta = event.record, int(round(event.eta_seconds))
    return (f"[{event.done}/{event.total}] {r.spec.label} seed {r.seed}  loss {r.loss:.4f}  "
            f"{si(round(r.tokens_per_second))} tok/s  {r.seconds:.1f} s  ETA {eta // 60}:{eta % 60:02d}")


def terminal_lines(reports: list[GateReport]) -> list[str]:
    """The terminal summary: per test its verdict, per-size table(s), fitted laws, crossover and messages."""
    lines: list[str] = []
    for nodeid, group in by_test(reports).items():
        lines += ["", f"{nodeid}: {verdict_of(group).upper()}"]
        for report in primary_reports(group):
            lines.append(f"  {caption(report)}")
            lines += ["  " + line for line in size_table(report, "simple").splitlines()]
            notes = [extrapolation_note(report), f"law: {laws_text(report)}"]
            notes.append(f"crossover: {crossover_text(report.crossover)}" if report.compared else None)
            notes += [f"warning: {warning}" for warning in report.warnings]
            for note in filter(None, notes):
                lines += textwrap.wrap(note, width=TERMINAL_WIDTH, initial_indent="  ", subsequent_indent="    ")
        lines += [f"  {r.verdict:<8} {r.check}: {r.message}" for r in group]
    return lines
