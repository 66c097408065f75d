"""One PNG per scaling test (matplotlib, loaded only here)."""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

from ..errors import ScalingError
from ..fitting.laws import CURVE_LAW
from ..gate.records import GateReport
from .summary import (
    by_test,
    law_text,
    primary,
)


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
        report = primary(plotted)
        plot = report.plot
        fig = Figure(figsize=(8, 5.5), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        base = f"baseline '{report.baseline}'"
        ax.fill_between(plot.compute, plot.baseline_lo, plot.baseline_hi, color="C0", alpha=0.25,
                        label=f"{base} 95% band")  # fmt: skip
        ax.plot(plot.compute, plot.baseline, color="C0", label=f"{base}: {law_text(report.baseline_law)}")
        ax.plot(plot.baseline_sizes_compute, plot.baseline_sizes_loss, "o", mfc="none", color="C0",
                label=f"{base} sizes")  # fmt: skip
        rows = [r for r in report.sizes if math.isfinite(r.loss)]
        ax.errorbar([r.flops for r in rows], [r.loss for r in rows], yerr=[r.loss_std for r in rows],
                    fmt="s", color="C3", capsize=3, label="this run (mean ± seed std)")  # fmt: skip
        for r in rows:
            ax.annotate(r.label, (r.flops, r.loss), textcoords="offset points", xytext=(5, 5), fontsize=8)
        if report.candidate_law:
            law = report.candidate_law
            grid = np.asarray(plot.compute)
            ax.plot(grid, CURVE_LAW.predict(law, C=grid), "--", color="C3",
                    label=f"this run: {law_text(law)}")  # fmt: skip
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
