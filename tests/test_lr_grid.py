"""Per-size learning-rate search: selection on one half of the validation windows, report on the other."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from pytest_scaling.data import get_source
from pytest_scaling.errors import ScalingDataError
from pytest_scaling.gate.baseline import Baseline
from pytest_scaling.gate.gate import GateContext, assert_on_curve
from pytest_scaling.runners.cache import RunCache
from pytest_scaling.runners.records import SizePoint, SweepResult
from pytest_scaling.runners.sweep import run_sweep
from pytest_scaling.training.spec import ModelSpec

SRC = "synthetic:docs=512,val_docs=64"
SIZES = [dict(width=w, depth=d, seq_len=32) for w, d in ((16, 1), (16, 2), (32, 1))]
GRID = [0.25, 1.0, 4.0]
FAST = dict(tokens_per_param=2, batch_tokens=16 * 32, eval_tokens=2048, workers=1)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    cache = RunCache(tmp_path_factory.mktemp("cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an edge of the grid: its own test below
        return run_sweep("gpt", SIZES, data=SRC, cache=cache, seeds=1, lr_grid=GRID, **FAST)


def test_each_size_takes_the_multiplier_best_on_the_selection_half(searched):
    assert len(searched.runs) == len(SIZES) * len(GRID)
    assert searched.trainer["lr_grid"] == GRID and "lr_multiplier" not in searched.trainer
    for point in searched.points:
        chosen = [r for r in searched.runs if r.spec == point.spec and r.config.lr_multiplier == point.lr_multiplier]
        scores = {m: np.mean([r.loss_halves[0] for r in searched.runs
                              if r.spec == point.spec and r.config.lr_multiplier == m]) for m in GRID}  # fmt: skip
        assert point.lr_multiplier == min(scores, key=scores.get)
        assert point.lr_scores == [[m, pytest.approx(scores[m])] for m in GRID]
        assert point.losses == [r.loss_halves[1] for r in chosen]  # reported on the other half
        assert point.lr == chosen[0].config.lr


def test_halves_split_the_validation_loss(searched):
    for run in searched.runs:
        assert len(run.loss_halves) == 2 and all(math.isfinite(h) for h in run.loss_halves)
        assert np.mean(run.loss_halves) == pytest.approx(run.loss, rel=1e-6)  # equal halves of the windows
        # the standard error over windows: the halves' gap has a standard deviation of twice it ...
        assert 0 < run.loss_se < 0.05 and abs(run.loss_halves[0] - run.loss_halves[1]) < 8 * run.loss_se
    for point in searched.points:  # ... and a half's error, the one its reported losses carry, sqrt(2) x
        chosen = [r for r in searched.runs if r.spec == point.spec and r.config.lr_multiplier == point.lr_multiplier]
        assert point.loss_se == [pytest.approx(math.sqrt(2) * r.loss_se) for r in chosen]
        assert point.floor == get_source(SRC).floor_nats_per_token(point.spec.seq_len) < min(point.losses)
    by_m = {r.config.lr_multiplier: r.config.lr for r in searched.runs if r.spec == searched.points[0].spec}
    assert by_m[4.0] == pytest.approx(16 * by_m[0.25])


def test_best_at_the_edge_of_the_grid_warns(tmp_path):
    with pytest.warns(UserWarning, match=r"edge of lr_grid \[0\.001, 0\.002\]"):
        run_sweep("gpt", SIZES[:1], data=SRC, cache=RunCache(tmp_path), lr_grid=[0.002, 0.001], **FAST)


@pytest.mark.parametrize("grid", [[], [0, 1], [1, 1], ["x"], [math.inf], 3])
def test_bad_grids_are_one_line_errors(tmp_path, grid):
    with pytest.raises(ScalingDataError, match="lr_grid must be distinct finite numbers > 0"):
        run_sweep("gpt", SIZES, data=SRC, cache=RunCache(tmp_path), lr_grid=grid)
    assert not (tmp_path / "runs").exists()


def test_grid_and_multiplier_together_is_an_error(tmp_path):
    with pytest.raises(ScalingDataError, match="lr_grid or lr_multiplier"):
        run_sweep("gpt", SIZES, data=SRC, cache=RunCache(tmp_path), lr_grid=[1, 2], lr_multiplier=2.0)


def test_searched_against_unsearched_baseline_is_a_mismatch_that_says_how_to_fix_it(searched, tmp_path):
    plain = run_sweep("gpt", SIZES, data=SRC, cache=RunCache(tmp_path), **FAST)
    assert plain.trainer["lr_grid"] is None and all(p.lr_multiplier is None for p in plain.points)
    differences = Baseline.from_sweep("reference", plain).differences(searched)
    assert any(d.startswith("trainer lr_grid: baseline None") and "same lr_grid" in d for d in differences)


def _sweep(multipliers, shift=1.0):
    points = [SizePoint(spec=ModelSpec(16 * (i + 1), 1, vocab_size=64), params=1000 * 4**i,
                        total_params=2000 * 4**i, tokens=10**5 * 4**i, compute=1e9 * 8**i,
                        losses=[shift * (3 + 8 ** -i) * f for f in (0.998, 1.002)], lr=1e-3 * m, lr_multiplier=m)
              for i, m in enumerate(multipliers)]  # fmt: skip
    return SweepResult("gpt@x", {"name": "t", "hash": "h"}, {"lr_grid": GRID}, points)


def test_a_4x_difference_in_chosen_learning_rate_is_a_tuning_warning(tmp_path):
    base = Baseline.from_sweep("reference", _sweep([1.0, 1.0, 1.0]))
    result = _sweep([1.0, 0.25, 2.0])
    result.context = GateContext(baselines_dir=tmp_path)
    with pytest.warns(UserWarning, match=r"differ from baseline 'reference' by 4x or more at w32-d1 x0.25 vs x1:"):
        assert_on_curve(result, base)
    report = result.context.reports[-1]
    assert [r.baseline_lr_multiplier for r in report.sizes] == [1.0, 1.0, 1.0]
    assert len(report.warnings) == 1 and "w48-d1" not in report.warnings[0]  # 2x apart (w48-d1) is no warning


def test_searching_the_smallest_sizes_carries_the_choice_up(searched, tmp_path):
    cache = RunCache(tmp_path)
    cheap = run_sweep("gpt", SIZES, data=SRC, cache=cache, lr_grid=GRID, lr_search_sizes=2, **FAST)
    assert len(cheap.runs) == 2 * len(GRID) + 1
    assert [p.lr_multiplier for p in cheap.points[:2]] == [p.lr_multiplier for p in searched.points[:2]]
    assert cheap.points[2].lr_multiplier == cheap.points[1].lr_multiplier
    assert cheap.trainer["lr_search_sizes"] == 2
    with pytest.raises(ScalingDataError, match="lr_search_sizes must be an int >= 1 with an lr_grid"):
        run_sweep("gpt", SIZES, data=SRC, cache=cache, lr_search_sizes=2, **FAST)
