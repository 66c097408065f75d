"""The shipped suites' shared settings (one ladder, one budget rule, one data source per suite), and the law
figures their tests and the verdict panel compute alike."""

from dataclasses import dataclass

import numpy as np

from pytest_scaling import backtest
from pytest_scaling.fitting.fit import bootstrap
from pytest_scaling.fitting.laws import CURVE_LAW
from pytest_scaling.fitting.noise import pooled_noise

SIZES = [  # non-embedding parameters 3.1k .. 98.6k (32x), context 128
    dict(width=16, depth=1),
    dict(width=32, depth=1),
    dict(width=32, depth=2),
    dict(width=48, depth=2),
    dict(width=64, depth=2),
]
SWEEP = dict(tokens_per_param=20, data="topics")  # Chinchilla's 20 tokens per parameter; the default language
# the second suite (marker real_text): frozen Python source, at a quarter of the rule's learning rate (docs/panel.md)
REAL_TEXT_SWEEP = dict(tokens_per_param=20, data="pycode", lr_multiplier=0.25)
REFERENCE_SEEDS = [0, 1]  # what a gated sweep trains (a PR's candidate)
BASELINE_SEEDS = list(range(8))  # what the committed baseline is recorded from: a curve 4x less noisy than a
# candidate's two seeds, paid once per re-recording instead of in every PR (docs/methodology.md)
MAX_SEED_NOISE = 0.01  # pooled relative seed standard deviation
MAX_BACKTEST_ERROR = 0.02


def largest_size_backtest(result) -> tuple[float, float, float, float]:
    """The sweep's curve fitted without its largest size and read there: (observed mean loss, predicted,
    95% band lo, hi; the band from 1000 bootstrap refits)."""
    C = np.concatenate([[p.compute] * len(p.losses) for p in result.points])
    L = np.concatenate([p.losses for p in result.points])
    check = backtest(CURVE_LAW, L, C=C)
    lo, hi = bootstrap(check.fit, 1000).predict_interval(C=np.array([C.max()]))
    return float(check.observed.mean()), float(check.predicted.mean()), float(lo[0]), float(hi[0])


@dataclass(frozen=True)
class LawFigures:
    """What makes a reference sweep a scaling law: pooled relative seed noise, whether the mean loss falls with
    every size, and the largest size's backtest (observed, predicted, 95% band)."""

    noise: float
    falls: bool
    observed: float
    predicted: float
    lo: float
    hi: float

    @property
    def error(self) -> float:
        return self.predicted / self.observed - 1

    def text(self, loss) -> str:
        return (f"mean loss {' / '.join(f'{x:.4f}' for x in loss)}; pooled seed noise {100 * self.noise:.2f}% "
                f"(goal <= {100 * MAX_SEED_NOISE:.0f}%); loss falls with every size: {'yes' if self.falls else 'NO'}; "
                f"backtest {self.predicted:.4f} vs {self.observed:.4f} ({100 * self.error:+.2f}%, goal <= "
                f"{100 * MAX_BACKTEST_ERROR:.0f}%; 95% band {self.lo:.4f}-{self.hi:.4f}, "
                f"{'inside' if self.lo <= self.observed <= self.hi else 'OUTSIDE'})")  # fmt: skip


def law_figures(result) -> LawFigures:
    noise, _ = pooled_noise([p.losses for p in result.points])
    falls = bool(np.all(np.diff(result.loss) < 0))
    return LawFigures(noise, falls, *largest_size_backtest(result))
