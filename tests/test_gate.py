"""The gate's statistics on constructed sweeps (no training): known curves, known shifts, known noise."""

import json
import math
import os
import stat

import numpy as np
import pytest

from pytest_scaling.gate.baseline import Baseline, BaselineError
from pytest_scaling.gate.gate import (
    GateContext,
    ScalingGateError,
    assert_beats_curve,
    assert_exponent,
    assert_on_curve,
    compute_multiplier,
)
from pytest_scaling.runners.records import SizePoint, SweepResult
from pytest_scaling.training.spec import ModelSpec

COMPUTE = np.logspace(9, 13, 5)


def sweep(rng, *, shift=1.0, alpha=0.1, compute_factor=1.0, seeds=3, noise=0.004, tmp_path=None, **context):
    """A sweep whose true loss is shift * (1.5 + 30 C^-alpha) at C = COMPUTE * compute_factor (shift and noise:
    one figure, or one per size)."""
    points = []
    for i, C in enumerate(COMPUTE * compute_factor):
        true = np.broadcast_to(shift, 5)[i] * (1.5 + 30 * C**-alpha)
        losses = (true * np.exp(rng.normal(0, np.broadcast_to(noise, 5)[i], seeds))).tolist()
        points.append(SizePoint(spec=ModelSpec(16 * (i + 1), 1, vocab_size=64), params=1000 * 4**i,
                                total_params=2000 * 4**i, tokens=int(C / 6e4), compute=float(C), losses=losses))
    result = SweepResult("gpt@x", {"name": "synthetic", "hash": "h"}, {"lr": None}, points)
    result.context = GateContext(baselines_dir=tmp_path, **context) if tmp_path else None
    return result


@pytest.fixture
def base(tmp_path):
    reference = sweep(np.random.default_rng(0), tmp_path=tmp_path)
    return Baseline.from_sweep("reference", reference)


def test_update_records_then_a_reseeded_reference_passes(tmp_path):
    rng = np.random.default_rng(1)
    first = sweep(rng, tmp_path=tmp_path, update=True)
    assert_on_curve(first, "reference")
    assert first.context.reports[-1].verdict == "recorded"
    assert (tmp_path / "reference.json").exists()
    again = sweep(rng, tmp_path=tmp_path)
    assert_on_curve(again, "reference")
    assert again.context.reports[-1].verdict == "passed"


def _fail_rate(shift: float, n_baselines: int, n_candidates: int, seeds: int = 2, noise=0.004) -> float:
    fails = 0
    for b in range(n_baselines):
        reference = Baseline.from_sweep("reference", sweep(np.random.default_rng(1000 + b), seeds=seeds, noise=noise))
        for c in range(n_candidates):
            candidate = sweep(np.random.default_rng(5000 + 100 * b + c), shift=shift, seeds=seeds, noise=noise)
            try:
                assert_on_curve(candidate, reference)
            except ScalingGateError:
                fails += 1
    return fails / (n_baselines * n_candidates)


def test_false_positive_rate_of_reseeded_references():
    """Re-seeded references (2 seeds, 0.4% seed noise) against freshly recorded baselines: <= 5% fail."""
    assert _fail_rate(1.0, n_baselines=6, n_candidates=10) <= 0.05


def test_power_against_a_three_percent_regression():
    assert _fail_rate(1.03, n_baselines=4, n_candidates=5) >= 0.95


SMALL_END_NOISE = np.array([0.0113, 0.0019, 0.0016, 0.0010, 0.0005])  # measured on the shipped ladder, 12 seeds


def test_false_positive_rate_when_small_models_are_noisier():
    """Seed noise 20x larger at the smallest size than at the largest (as measured on the shipped ladder):
    one pooled noise figure failed 12% of 60 re-seeded references here; the noise model by compute fails
    1.7% of 300 (3% of these 100)."""
    assert _fail_rate(1.0, n_baselines=10, n_candidates=10, noise=SMALL_END_NOISE) <= 0.05


def test_power_when_small_models_are_noisier():
    assert _fail_rate(1.02, n_baselines=4, n_candidates=5, noise=SMALL_END_NOISE) >= 0.95


def test_three_percent_worse_fails_with_a_table(base):
    with pytest.raises(ScalingGateError, match="off baseline 'reference'") as info:
        assert_on_curve(sweep(np.random.default_rng(5), shift=1.03), base)
    assert "WORSE" in str(info.value) and "w80-d1" in str(info.value)


def test_better_is_on_or_below_the_curve(base):
    assert_on_curve(sweep(np.random.default_rng(6), shift=0.95), base)


def test_rtol_overrides_the_noise_rule(base):
    candidate = sweep(np.random.default_rng(7), shift=1.03)
    assert_on_curve(candidate, base, rtol=0.05)
    with pytest.raises(ScalingGateError, match="rtol=0.01"):
        assert_on_curve(candidate, base, rtol=0.01)


def test_beats_curve_needs_evidence(base):
    assert_beats_curve(sweep(np.random.default_rng(8), shift=0.95), base, margin=0.02)
    with pytest.raises(ScalingGateError, match=r"does not beat.*P\(better\)"):
        assert_beats_curve(sweep(np.random.default_rng(9)), base)
    with pytest.raises(ScalingGateError, match="does not beat"):
        assert_beats_curve(sweep(np.random.default_rng(10), shift=0.95), base, margin=0.1)


def test_exponent_check(base):
    assert_exponent(sweep(np.random.default_rng(11), alpha=0.12), base)
    with pytest.raises(ScalingGateError, match="scaling exponent is worse"):
        assert_exponent(sweep(np.random.default_rng(12), alpha=0.06), base)


def test_compute_multiplier_recovers_a_known_factor(base):
    # the same losses reached with 3x less compute: the baseline needs 3x the candidate's compute
    candidate = sweep(np.random.default_rng(13), compute_factor=1 / 3)
    for point, C in zip(candidate.points, COMPUTE, strict=True):
        point.losses = [1.5 + 30 * C**-0.1] * 3
    candidate.context = GateContext()
    mult = compute_multiplier(candidate, base)
    assert mult.value == pytest.approx(3.0, rel=0.05)
    assert mult.lo < 3.0 < mult.hi
    assert "x (95% CI " in candidate.context.reports[-1].message
    narrow = compute_multiplier(candidate, base, level=0.8)
    assert mult.lo < narrow.lo < narrow.hi < mult.hi and "x (80% CI " in candidate.context.reports[-1].message


def test_baseline_round_trip_and_corruption(base, tmp_path):
    path = base.save(tmp_path / "b" / "ref.json")
    loaded = Baseline.load(path)
    assert loaded.curve.params == pytest.approx(base.curve.params)
    assert json.loads(path.read_text())["law"]["ci95"]["alpha"][0] < base.curve.params["alpha"]
    path.write_text(path.read_text()[:100])
    with pytest.raises(BaselineError, match=f"baseline file {path} is corrupt"):
        Baseline.load(path)


def test_mismatch_lists_what_differs(base, tmp_path):
    base.save(tmp_path / "reference.json")
    candidate = sweep(np.random.default_rng(14), tmp_path=tmp_path)
    candidate.data = {"name": "stdlib", "hash": "other"}
    with pytest.raises(ScalingGateError, match="data hash: baseline 'h', run 'other'.*--scaling-update"):
        assert_on_curve(candidate, "reference")


def test_diverged_size_fails_the_gate(base):
    candidate = sweep(np.random.default_rng(15))
    candidate.points[2].losses = [math.inf] * 3
    candidate.points[2].diverged = 3
    with pytest.raises(ScalingGateError, match="DIVERGED"):
        assert_on_curve(candidate, base)
    with pytest.raises(ScalingGateError, match="every run diverged at w48-d1"):
        compute_multiplier(candidate, base)
    candidate.points[2].losses = [1.0, math.inf, 1.0]  # one seed of three: still a failed size
    candidate.points[2].diverged = 1
    with pytest.raises(ScalingGateError, match="DIVERGED"):
        assert_on_curve(candidate, base)


def test_a_missing_baseline_fails_with_the_command_that_records_it(tmp_path):
    nodeid = "tests/test_arch.py::test_new[a b]"
    with pytest.raises(ScalingGateError, match=r"baseline 'reference' does not exist .*reference.json\). To record "
                       r"it from this test: pytest --scaling --scaling-update 'tests/test_arch.py::test_new\[a b\]'"):
        assert_on_curve(sweep(np.random.default_rng(1), tmp_path=tmp_path, nodeid=nodeid), "reference")
    assert not (tmp_path / "reference.json").exists()
    assert_on_curve(sweep(np.random.default_rng(1), tmp_path=tmp_path, update=True), "reference")
    misspelled = r"baseline 'refernce' does not exist.*did you mean 'reference'\? To record it"
    with pytest.raises(ScalingGateError, match=misspelled):
        compute_multiplier(sweep(np.random.default_rng(2), tmp_path=tmp_path), "refernce")
    with pytest.raises(ScalingGateError, match="'other' does not exist.*existing baselines in .*: reference"):
        assert_exponent(sweep(np.random.default_rng(2), tmp_path=tmp_path), "other")


def test_a_sweep_with_diverged_runs_is_recorded_only_on_request(tmp_path):
    def diverged(**context):
        result = sweep(np.random.default_rng(3), tmp_path=tmp_path, update=True, **context)
        result.points[1].losses[0], result.points[1].diverged = math.inf, 1
        return result

    with pytest.raises(ScalingGateError, match=r"cannot record baseline 'reference': runs diverged at w32-d1 "
                       r"\(1 of 3 runs\).*--scaling-allow-diverged"):
        assert_on_curve(diverged(), "reference")
    assert not (tmp_path / "reference.json").exists()
    assert_on_curve(diverged(allow_diverged=True), "reference")
    assert (tmp_path / "reference.json").exists()


def test_an_unwritable_baseline_directory_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):
        pytest.skip("running as a user who can write anywhere (root): a read-only directory is writable")
    with pytest.raises(ScalingGateError, match=r"cannot write baseline 'reference' to .*: Permission denied"):
        assert_on_curve(sweep(np.random.default_rng(1), tmp_path=locked, update=True), "reference")


def test_baselines_are_written_with_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = Baseline.from_sweep("reference", sweep(np.random.default_rng(1))).save(tmp_path / "reference.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_crossing_of_two_laws():
    from pytest_scaling.gate.baseline import fit_curve
    from pytest_scaling.gate.crossover import law_crossing

    rng = np.random.default_rng(3)
    compute = np.logspace(9, 13, 5)

    def curve(A, alpha):
        return fit_curve(compute, [(1.5 + A * C**-alpha) * np.exp(rng.normal(0, 0.002, 3)) for C in compute])

    baseline = curve(30, 0.1)
    where, lo, hi, searched_to = law_crossing(curve(20, 0.085), baseline)  # better at small compute, shallower
    assert where == pytest.approx(5.6e11, rel=0.5) and lo < where < hi  # crosses near 5.6e11
    where, _, _, searched_to = law_crossing(curve(40, 0.115), baseline)  # better everywhere
    assert where is None and searched_to == pytest.approx(1e16)


def test_gap_trend_recovers_a_known_slope_and_its_interval():
    from pytest_scaling.gate.crossover import gap_trend

    rng = np.random.default_rng(0)
    compute, sigma = np.logspace(9, 13, 5), np.array([0.01, 0.004, 0.003, 0.002, 0.002])
    slopes, covered = [], 0
    for _ in range(400):
        log_gap = 0.01 - 0.005 * (np.log10(compute) - 11) + rng.normal(0, sigma)
        slope, lo, hi, _ = gap_trend(compute, log_gap, np.diag(sigma**2), math.inf)
        slopes.append(slope)
        covered += lo <= -0.005 <= hi
    assert np.mean(slopes) == pytest.approx(-0.005, abs=5e-4)
    assert 0.92 <= covered / 400 <= 0.98  # a 95% interval


def _crossover_of(candidate, reference):
    try:
        assert_on_curve(candidate, reference)
    except ScalingGateError:
        pass
    return candidate.context.reports[-1].crossover


def test_a_trend_is_claimed_only_beyond_seed_noise(tmp_path):
    """Re-seeded references show no trend in >= 90% of 40 trials; a candidate whose gap grows by 1% per 10x
    compute (0.4% seed noise, 3 seeds a side) is 'growing' and one that closes a 4% gap 'shrinking'."""
    none = 0
    for k in range(8):
        reference = Baseline.from_sweep("reference", sweep(np.random.default_rng(100 + k)))
        for c in range(5):
            crossover = _crossover_of(sweep(np.random.default_rng(200 + 10 * k + c), tmp_path=tmp_path), reference)
            none += crossover.trend == "none"
    assert none >= 36
    reference = Baseline.from_sweep("reference", sweep(np.random.default_rng(7)))
    growing = sweep(np.random.default_rng(8), shift=np.exp(0.01 * np.log10(COMPUTE / COMPUTE[0])), tmp_path=tmp_path)
    crossover = _crossover_of(growing, reference)
    assert crossover.trend == "growing" and crossover.favours == "baseline" and not crossover.better_at_largest
    assert crossover.slope == pytest.approx(0.01, abs=0.004)
    closing = sweep(np.random.default_rng(9), shift=1.04 - 0.01 * np.log10(COMPUTE / COMPUTE[0]), tmp_path=tmp_path)
    crossover = _crossover_of(closing, reference)
    assert crossover.trend == "shrinking" and crossover.favours == "candidate" and not crossover.better_at_largest
    better = sweep(np.random.default_rng(10), shift=0.99 - 0.01 * np.log10(COMPUTE / COMPUTE[0]), tmp_path=tmp_path)
    crossover = _crossover_of(better, reference)
    assert crossover.trend == "growing" and crossover.better_at_largest


# ------------------------------------------------------------------- losses below what is possible

FLOOR = 1.4  # the data's entropy floor in the sweeps below (the curve's E is 1.5)


def _with_floor(result, floor=FLOOR, se=0.002):
    result.data["entropy_nats_per_token"] = floor
    for point in result.points:
        point.loss_se, point.floor = [se] * len(point.losses), floor
    return result


def _leaking(tmp_path=None, **context):
    """A sweep far below the curve (0.4x the true loss) and, at its two largest sizes, below the floor."""
    return _with_floor(sweep(np.random.default_rng(3), shift=0.4, tmp_path=tmp_path, **context))


@pytest.mark.parametrize("helper", [assert_on_curve, assert_beats_curve, compute_multiplier, assert_exponent])
def test_a_loss_below_the_floor_fails_every_helper_as_impossible(tmp_path, helper):
    reference = _with_floor(sweep(np.random.default_rng(0), tmp_path=tmp_path, update=True))
    assert_on_curve(reference, "reference")  # records it: the reference lies above the floor
    candidate = _leaking(tmp_path)
    with pytest.raises(ScalingGateError) as error:
        helper(candidate, "reference")
    headline = str(error.value).splitlines()[0]
    assert headline.startswith("IMPOSSIBLE: validation loss below the data's entropy floor, which no model can beat")
    assert "< 1.4000)" in headline and "w64-d1 (" in headline and "w48-d1 (" not in headline  # loss ± se < floor
    assert "causal mask off by one" in headline and "labels are not shifted" in headline
    report = candidate.context.reports[-1]
    assert report.verdict == "failed"
    assert [r.verdict for r in report.sizes] == [None, None, None, "IMPOSSIBLE", "IMPOSSIBLE"]


@pytest.mark.parametrize("existing", [False, True], ids=["new", "re-recorded"])
def test_a_sweep_below_the_floor_cannot_be_recorded(tmp_path, existing):
    path = tmp_path / "reference.json"
    if existing:
        assert_on_curve(_with_floor(sweep(np.random.default_rng(0), tmp_path=tmp_path, update=True)), "reference")
        before = path.read_text()
    with pytest.raises(ScalingGateError, match=r"^cannot record baseline 'reference': IMPOSSIBLE: "):
        assert_on_curve(_leaking(tmp_path, update=True), "reference")
    assert path.read_text() == before if existing else not path.exists()


def test_a_loss_below_the_floor_by_less_than_its_standard_error_is_possible(tmp_path):
    reference = _with_floor(sweep(np.random.default_rng(0), tmp_path=tmp_path, update=True), floor=2.9)
    assert_on_curve(reference, "reference")  # its largest size lies near 3.0
    near = _with_floor(sweep(np.random.default_rng(4), tmp_path=tmp_path), floor=2.9, se=0.05)
    near.points[-1].losses = [2.86, 2.87, 2.88]  # within 0.05 of the floor: chance
    compute_multiplier(near, "reference")
    near.points[-1].losses = [2.84, 2.87, 2.88]  # one seed 0.06 below: impossible
    with pytest.raises(ScalingGateError, match=r"IMPOSSIBLE: .* at w80-d1 \(2\.8400 ± 0\.0500 < 2\.9000\) nats/token"):
        compute_multiplier(near, "reference")


def test_without_a_known_floor_an_implausible_gain_is_a_warning_in_every_report(tmp_path):
    from pytest_scaling.reports.json_report import json_report
    from pytest_scaling.reports.markdown import markdown
    from pytest_scaling.reports.terminal import terminal_lines

    reference = sweep(np.random.default_rng(0), tmp_path=tmp_path, update=True)
    assert_on_curve(reference, "reference")
    candidate = sweep(np.random.default_rng(3), shift=0.25, tmp_path=tmp_path)  # no floor: the data is a user's
    with pytest.warns(UserWarning, match="implausible gain"):
        assert_on_curve(candidate, "reference")  # better than the curve passes ...
        compute_multiplier(candidate, "reference")
    notes = candidate.context.reports[-1].warnings  # ... but never silently
    assert len(notes) == 2
    assert notes[0].startswith("implausible gain: compute multiplier above 100x vs baseline 'reference' at w16-d1")
    assert notes[1].startswith("implausible gain: loss below baseline 'reference''s fitted irreducible loss E = ")
    reports = candidate.context.reports
    assert " ".join(notes[0].split()) in " ".join(" ".join(terminal_lines(reports)).split())  # wrapped lines
    assert notes[1].split(";")[0] in markdown(reports)
    assert json_report(reports)["tests"][-1]["warnings"] == notes


def test_a_real_gain_raises_no_implausibility_warning(tmp_path):
    import warnings

    reference = sweep(np.random.default_rng(0), tmp_path=tmp_path, update=True)
    assert_on_curve(reference, "reference")
    better = sweep(np.random.default_rng(3), shift=0.97, tmp_path=tmp_path)  # 3% better: a few x in compute
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        multiplier = compute_multiplier(better, "reference")
    assert 1.5 < multiplier.value < 100 and not better.context.reports[-1].warnings
