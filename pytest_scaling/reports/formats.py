"""The report files a session can write, one entry each: ``FORMATS`` gives the pytest option
(``--scaling-<name>``), its help and the writer the plugin calls at the end of the session. A new format is
a renderer and one entry here; the plugin adds the option, resolves the path and calls the writer. Writers
import their renderer when called, so registering the options loads nothing heavy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..gate.records import GateReport

Writer = Callable[[list[GateReport], str, dict], list[Path]]


@dataclass(frozen=True)
class ReportFormat:
    """One report file: ``name`` makes the option ``--scaling-<name>``; ``write(reports, path, metadata)``
    writes it and returns the files written."""

    name: str
    metavar: str
    help: str
    write: Writer

    @property
    def option(self) -> str:
        return f"--scaling-{self.name}"

    @property
    def dest(self) -> str:
        return f"scaling_{self.name}"


def _markdown(reports: list[GateReport], path: str, metadata: dict) -> list[Path]:
    from .markdown import write_markdown

    return [write_markdown(reports, path, metadata)]


def _json(reports: list[GateReport], path: str, metadata: dict) -> list[Path]:
    from .json_report import write_json

    return [write_json(reports, path, metadata)]


def _plots(reports: list[GateReport], path: str, metadata: dict) -> list[Path]:
    from .plots import write_plots

    return write_plots(reports, path)


FORMATS = (
    ReportFormat("markdown", "PATH", "write the report as Markdown ('github': append to $GITHUB_STEP_SUMMARY)",
                 _markdown),
    ReportFormat("json", "PATH", "write the report as JSON", _json),
    ReportFormat("plot", "DIR", "write a PNG per scaling test (needs matplotlib)", _plots),
)  # fmt: skip
