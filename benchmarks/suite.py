"""The shipped suite's shared settings (one ladder, one budget rule, one data source for every test), and the
law figure its tests and the verdict panel compute alike."""

import numpy as np

from pytest_scaling import backtest
from pytest_scaling.fit import bootstrap
from pytest_scaling.laws import CURVE_LAW

SIZES = [  # non-embedding parameters 3.1k .. 98.6k (32x), context 128
    dict(width=16, depth=1),
    dict(width=32, depth=1),
    dict(width=32, depth=2),
    dict(width=48, depth=2),
    dict(width=64, depth=2),
]
SWEEP = dict(tokens_per_param=20, data="topics")  # Chinchilla's 20 tokens per parameter; the default language
REFERENCE_SEEDS = [0, 1]


def largest_size_backtest(result) -> tuple[float, float, float, float]:
    """The sweep's curve fitted without its largest size and read there: (observed mean loss, predicted,
    95% band lo, hi; the band from 1000 bootstrap refits)."""
    C = np.concatenate([[p.compute] * len(p.losses) for p in result.points])
    L = np.concatenate([p.losses for p in result.points])
    check = backtest(CURVE_LAW, L, C=C)
    lo, hi = bootstrap(check.fit, 1000).predict_interval(C=np.array([C.max()]))
    return float(check.observed.mean()), float(check.predicted.mean()), float(lo[0]), float(hi[0])
