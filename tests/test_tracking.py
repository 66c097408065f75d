"""Experiment trackers: every run's curve logged once per experiment, read back with each tracker's own reader."""

from __future__ import annotations

import glob
import json
import struct

import pytest

from pytest_scaling.errors import ScalingDataError
from pytest_scaling.runners import tracking
from pytest_scaling.runners.cache import RunCache
from pytest_scaling.runners.sweep import run_sweep
from pytest_scaling.runners.tracking import Tracking, curve_rows, require_tracker
from tests.helpers import tensorboard_runs

SIZES = [dict(width=16, depth=1, seq_len=32), dict(width=24, depth=1, seq_len=32)]
SWEEP = dict(data="synthetic:docs=512,val_docs=64", tokens_per_param=8, seeds=[0, 1], workers=1, threads=1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The module's tiny sweep, trained once into a shared cache (every test logs it again from there)."""
    cache = RunCache(tmp_path_factory.mktemp("tracked") / "cache")
    return cache, run_sweep("gpt", SIZES, cache=cache, **SWEEP).runs


def test_unknown_or_missing_tracker_is_a_one_line_error(monkeypatch):
    with pytest.raises(ScalingDataError, match="unknown tracker 'neptune'; valid: tensorboard, mlflow, wandb"):
        require_tracker("neptune")
    monkeypatch.setitem(tracking.TRACKERS, "wandb", "a_package_that_is_not_installed")
    with pytest.raises(ScalingDataError, match=r"tracker 'wandb' needs .*pip install 'pytest-scaling\[wandb\]'"):
        Tracking("wandb")
    with pytest.raises(ScalingDataError, match="tracker must be a name or a Tracking, got int"):
        run_sweep("gpt", SIZES, tracker=3, **SWEEP)


def test_curve_rows_carry_loss_learning_rate_and_the_validation_loss(runs):
    _, records = runs
    record = records[0]
    rows = curve_rows(record)
    assert [tokens for tokens, _ in rows] == [int(t) for t, _ in record.curve]
    assert [v["train/loss"] for _, v in rows] == [loss for _, loss in record.curve]
    lrs = [v["train/lr"] for _, v in rows]
    assert max(lrs) == pytest.approx(record.config.lr, rel=0.02)  # the peak, after warmup
    assert lrs[-1] == pytest.approx(record.config.lr * record.config.final_lr_ratio)  # cosine's end
    assert rows[-1] == (record.tokens, rows[-1][1]) and rows[-1][1]["val/loss"] == record.loss
    assert all("val/loss" not in v for _, v in rows[:-1])


def _mlflow(store, experiment):
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(store.resolve().as_uri())
    client = MlflowClient()
    out = {}
    for run in mlflow.search_runs(experiment_names=[experiment], output_format="list"):
        out[run.info.run_name] = {tag: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, tag)]
                                  for tag in run.data.metrics}  # fmt: skip
        out[run.info.run_name]["params"] = run.data.params
    return out


def _wandb_records(path):
    """The protobuf records of an offline W&B run file (its LevelDB-style log: 32 KiB blocks, each record a
    7-byte header of CRC, length and kind; kinds 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data, pos, pending = open(path, "rb").read(), 7, b""
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0:
            break
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _wandb(store, experiment):
    out = {}
    for path in glob.glob(str(store / "wandb" / "offline-run-*" / "run-*.wandb")):
        name, project, rows, config = None, None, [], {}
        for record in _wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                name, project = record.run.display_name, record.run.project
            elif kind == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item})
            elif kind == "config":
                config.update({i.key: json.loads(i.value_json) for i in record.config.update})
        if project == experiment:
            tags = {k for row in rows for k in row if not k.startswith("_")}
            out[name] = {tag: [(row["_step"], row[tag]) for row in rows if tag in row] for tag in tags}
            out[name]["params"] = config
    return out


READERS = {"tensorboard": tensorboard_runs, "mlflow": _mlflow, "wandb": _wandb}


@pytest.mark.parametrize("kind", list(READERS))
def test_each_run_is_logged_once_and_reads_back(runs, tmp_path, kind):
    pytest.importorskip(tracking.TRACKERS[kind], reason=f"the {kind!r} package is not installed")
    cache, records = runs
    tracker = Tracking(kind, tmp_path / "runs", experiment="exp-1", test="tests/test_x.py::test_ref")
    again = run_sweep("gpt", SIZES, cache=cache, tracker=tracker, **SWEEP)
    assert all(r.cached for r in again.runs)  # served from the cache, logged from the curves stored with them
    assert tracker.log(again.runs) == 0  # each run once per experiment
    logged = READERS[kind](tracker.store, "exp-1")
    names = {f"tests_test_x.py_test_ref/w{r.spec.width}-d1-seed{r.seed}-lr1" for r in records}
    assert set(logged) == names
    for record in records:
        got = logged[f"tests_test_x.py_test_ref/w{record.spec.width}-d1-seed{record.seed}-lr1"]
        assert [step for step, _ in got["train/loss"]] == [int(t) for t, _ in record.curve]
        assert [v for _, v in got["train/loss"]] == pytest.approx([loss for _, loss in record.curve], rel=1e-6)
        assert got["val/loss"] == [(record.tokens, pytest.approx(record.loss, rel=1e-6))]
        assert len(got["train/lr"]) == len(record.curve)
        if kind != "tensorboard":  # TensorBoard keeps hyperparameters in a plugin of its own
            assert str(got["params"]["run_key"]) == record.key and record.key is not None
    later = Tracking(kind, tmp_path / "runs", experiment="exp-2")  # another session logs them again
    assert later.log(records) == len(records)


def test_only_rank_0_logs_under_torchrun(runs, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard", reason="the 'tensorboard' package is not installed")
    _, records = runs
    tracker = Tracking("tensorboard", tmp_path / "runs", experiment="ranks")
    monkeypatch.setenv("RANK", "1")
    assert tracker.log(records) == 0 and not tracker.store.exists()
    monkeypatch.setenv("RANK", "0")
    assert tracker.log(records) == len(records)


def test_tracking_off_writes_nothing(runs, tmp_path):
    cache, _ = runs
    run_sweep("gpt", SIZES, cache=cache, **SWEEP)
    assert not (cache.root.parent / tracking.DEFAULT_DIR).exists()


def test_a_tracker_name_logs_beside_the_cache(runs):
    pytest.importorskip("tensorboard", reason="the 'tensorboard' package is not installed")
    cache, records = runs
    run_sweep("gpt", SIZES[:1], cache=cache, tracker="tensorboard", **SWEEP)
    store = cache.root.parent / tracking.DEFAULT_DIR / "tensorboard"
    (experiment,) = [p.name for p in store.iterdir()]
    names = {"build_reference/w16-d1-seed0-lr1", "build_reference/w16-d1-seed1-lr1"}
    assert set(tensorboard_runs(store, experiment)) == names


SHARED_TESTS = '''
import pytest

SIZES = [dict(width=16, depth=1, seq_len=32), dict(width=24, depth=1, seq_len=32)]
OPTIONS = dict(tokens_per_param=4, eval_tokens=2048, batch_tokens=256, threads=1, seeds=1,
               data="synthetic:docs=512,val_docs=64")


@pytest.mark.scaling
def test_one(scaling_sweep):
    scaling_sweep("gpt", SIZES, **OPTIONS)


@pytest.mark.scaling
def test_two(scaling_sweep):
    scaling_sweep("gpt", SIZES, **OPTIONS)  # the same runs: logged once in the session
'''


def test_plugin_logs_every_run_once_across_xdist_workers(pytester, runs):
    """``runs``: this process has trained already, so an in-process pytest run may import torch's lazy parts."""
    pytest.importorskip("tensorboard", reason="the 'tensorboard' package is not installed")
    pytester.makepyfile(test_shared=SHARED_TESTS)
    options = ["-p", "no:cacheprovider", "--scaling", "--scaling-tracker=tensorboard", "--scaling-tracker-dir=tracked"]
    result = pytester.runpytest_subprocess("-n", "2", *options)
    result.assert_outcomes(passed=2)
    store = pytester.path / "tracked" / "tensorboard"
    (experiment,) = [p.name for p in store.iterdir()]  # one experiment for the whole session, workers included
    logged = tensorboard_runs(store, experiment)
    assert {name.split("/")[-1] for name in logged} == {"w16-d1-seed0-lr1", "w24-d1-seed0-lr1"}  # each run once
    assert len(logged) == 2 and all(name.startswith("test_shared.py_test_") for name in logged)
    result = pytester.runpytest(*options, "-k", "test_one")
    result.assert_outcomes(passed=1, deselected=1)
    assert len(list(store.iterdir())) == 2  # a new session: a new experiment, its cached runs logged again


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--scaling-tracker=neptune"], "", "argument --scaling-tracker: invalid choice: 'neptune'"),
        ([], "scaling_tracker = neptune", "--scaling-tracker: unknown tracker 'neptune'"),
    ],
)
def test_plugin_rejects_an_unknown_tracker(pytester, args, ini, message):
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--scaling", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
