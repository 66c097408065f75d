"""Predicting an untrained model from a recorded baseline: the laws on synthetic truths, and the CLI."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from pytest_scaling.cli import main
from pytest_scaling.errors import ScalingDataError
from pytest_scaling.fitting.allocation import optimal_allocation
from pytest_scaling.gate.baseline import Baseline
from pytest_scaling.gate.predict import flops_per_param_token, predict_compute, predict_size
from pytest_scaling.runners.records import SizePoint, SweepResult
from pytest_scaling.training.spec import ModelSpec

CHINCHILLA = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al.'s fit


def chinchilla_loss(N, D):
    return CHINCHILLA["E"] + CHINCHILLA["A"] / N ** CHINCHILLA["alpha"] + CHINCHILLA["B"] / D ** CHINCHILLA["beta"]


def baseline(rng, sizes, noise=0.002, seeds=2, per_token=lambda N: 6.0 * N + 3e4, loss=None) -> Baseline:
    """A baseline of ``sizes`` [(N, D)], each seed's loss the truth ``loss(N, D, C)`` times a normal deviation."""
    points = []
    for i, (N, D) in enumerate(sizes):
        C = per_token(N) * D
        true = loss(N, D, C)
        points.append(SizePoint(spec=ModelSpec(16 * (i + 1), 1, vocab_size=64), params=int(N),
                                total_params=int(N) + 4096, tokens=int(D), compute=float(C),
                                losses=list(true * np.exp(rng.normal(0, noise, seeds)))))  # fmt: skip
    return Baseline.from_sweep("reference", SweepResult("gpt@x", {"name": "synthetic"}, {"lr": None}, points))


LADDER = [3e3, 1.2e4, 2.5e4, 5.5e4, 1e5]


def power_truth(N, D, C):
    return 2.5 + 300 * C**-0.2


def test_a_one_ratio_baseline_predicts_10x_along_its_line():
    base = baseline(np.random.default_rng(0), [(N, 20 * N) for N in LADDER], loss=power_truth)
    N = 1e6
    answer = predict_size(base, N)
    per_token = flops_per_param_token(base, N) * N
    assert per_token == pytest.approx(6 * N + 3e4, rel=0.05)  # the attention share extrapolated
    truth = power_truth(N, 20 * N, 6 * N * 20 * N + 3e4 * 20 * N)
    assert answer.law == "L(C)" and answer.tokens == pytest.approx(20 * N) and answer.reach > 50
    assert answer.lo < truth < answer.hi and answer.loss == pytest.approx(truth, rel=0.01)
    by_compute = predict_compute(base, answer.compute)
    assert by_compute.loss == pytest.approx(answer.loss) and by_compute.params is None
    assert "one tokens-per-parameter ratio" in by_compute.notes[0]


def test_a_one_ratio_baseline_refuses_another_ratio():
    base = baseline(np.random.default_rng(0), [(N, 20 * N) for N in LADDER], loss=power_truth)
    with pytest.raises(ScalingDataError, match=r"trains every size at 20 tokens per parameter.* is 5;"):
        predict_size(base, 1e5, 5e5)


def chinchilla_baseline(rng):
    sizes = [(N, r * N) for N in LADDER[:3] for r in (5, 20, 80)] + [(N, 20 * N) for N in LADDER[3:]]
    return baseline(rng, sizes, loss=lambda N, D, C: chinchilla_loss(N, D))


def test_several_ratios_make_an_l_n_d_baseline_that_predicts_other_ratios_and_the_optimum():
    base = chinchilla_baseline(np.random.default_rng(1))
    for N, D in [(1e5, 5e5), (1e5, 8e6), (1e6, 2e7)]:
        answer = predict_size(base, N, D)
        truth = chinchilla_loss(N, D)
        assert answer.law == "L(N, D)" and answer.lo < truth < answer.hi
        assert answer.loss == pytest.approx(truth, rel=0.02)
    C = 1e14
    optimum = predict_compute(base, C)
    true_n = float(optimal_allocation(CHINCHILLA, C)["N_opt"])
    assert optimum.params == pytest.approx(true_n, rel=0.5) and optimum.params * optimum.tokens * 6 == pytest.approx(C)
    assert optimum.loss == pytest.approx(chinchilla_loss(true_n, C / (6 * true_n)), rel=0.02)
    with pytest.raises(ScalingDataError, match="several tokens per parameter: give --tokens"):
        predict_size(base, 1e6)


def test_an_l_n_d_baseline_needs_five_sizes_or_budgets():
    base = baseline(np.random.default_rng(2), [(3e3, 1.5e4), (1.2e4, 2.4e5), (2.5e4, 2e6)],
                    loss=lambda N, D, C: chinchilla_loss(N, D))  # fmt: skip
    with pytest.raises(ScalingDataError, match="L\\(N, D\\) needs at least 5 sizes or budgets, got 3"):
        predict_size(base, 1e6, 2e7)


@pytest.fixture
def saved(tmp_path):
    base = baseline(np.random.default_rng(0), [(N, 20 * N) for N in LADDER], loss=power_truth)
    base.save(tmp_path / "reference.json")
    return tmp_path


def test_cli_predicts_from_a_named_baseline(saved, capsys):
    assert main(["predict", "reference", "--baselines-dir", str(saved), "--params", "1e6"]) == 0
    out = capsys.readouterr().out
    assert "reference, L(C)" in out and "95% interval" in out and "beyond the largest trained size" in out
    assert main(["predict", str(saved / "reference.json"), "--compute", "1e9", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["law"] == "L(C)" and answer["lo"] < answer["loss"] < answer["hi"] and answer["reach"] < 1


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_cli_help_prints_percent_signs_once(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "95%" in out and "%%" not in out


@pytest.mark.parametrize("argv, message", [
    (["refrence", "--params", "1e6"], "no baseline 'refrence': neither a file nor .*; did you mean 'reference'\\?"),
    (["reference", "--params", "1e6", "--tokens", "1e6"], "trains every size at 20 tokens per parameter"),
    (["reference", "--compute", "1e14", "--tokens", "1e6"], "--tokens and --flops-per-token go with --params"),
])  # fmt: skip
def test_cli_errors_are_one_line_and_exit_2(saved, capsys, argv, message):
    assert main(["predict", *argv, "--baselines-dir", str(saved)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pytest-scaling: error: ")
    assert re.search(message, err)


def test_cli_reads_the_committed_baseline(capsys):
    committed = Path(__file__).resolve().parents[1] / "scaling_baselines" / "reference.json"
    assert main(["predict", str(committed), "--params", "1e6", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    largest = max(p["params"] for p in json.loads(committed.read_text())["points"])
    assert answer["reach"] > 10 and math.isfinite(answer["loss"]) and 1e6 / largest > 10


def test_a_one_seed_baseline_gets_the_assumed_noise_not_a_zero_width_interval():
    base = baseline(np.random.default_rng(3), [(N, 20 * N) for N in LADDER], seeds=1, loss=power_truth)
    answer = predict_size(base, 1e6)
    assert answer.hi / answer.lo > 1.03 and any("seed noise assumed 1%" in note for note in answer.notes)
