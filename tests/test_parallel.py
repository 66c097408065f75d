"""A sweep's runs on worker processes: the auto rule, equal results, errors, warnings and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import types

import pytest
from torch import nn

from pytest_scaling.errors import ScalingDataError, ScalingError
from pytest_scaling.runners import parallel
from pytest_scaling.runners.cache import RunCache
from pytest_scaling.runners.parallel import PARALLEL_MIN_FLOPS, Run, plan_workers
from pytest_scaling.runners.sweep import run_sweep
from pytest_scaling.training.model import ModelSpec, build_reference
from pytest_scaling.training.train import TrainConfig
from tests.helpers import start_sweep_until_a_run_is_stored

SRC = "synthetic:docs=512,val_docs=64"
SIZES = [dict(width=16, depth=1, seq_len=32), dict(width=24, depth=1, seq_len=32)]
TINY = dict(tokens_per_param=2, data=SRC, threads=1, eval_tokens=1024)


def runs(n: int, compute: float, factory: object = "gpt") -> list[Run]:
    spec = ModelSpec(width=16, depth=1, vocab_size=64, seq_len=32)
    return [Run(factory, spec, TrainConfig(tokens=4096, seed=s), compute) for s in range(n)]


def notebook_factory(spec):
    return build_reference(spec)


def test_the_auto_rule(monkeypatch):
    from pytest_scaling.data import get_source

    source = get_source(SRC)
    monkeypatch.setattr(parallel, "available_cores", lambda: 4)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    big = PARALLEL_MIN_FLOPS
    assert plan_workers("auto", runs(6, big), "cpu", source) == 4  # one per core
    assert plan_workers("auto", runs(3, big), "cpu", source) == 3  # no more than the runs
    assert plan_workers("auto", runs(1, 10 * big), "cpu", source) == 1  # one run: nothing to share
    assert plan_workers("auto", runs(6, big / 10), "cpu", source) == 1  # too little work for the start-up
    assert plan_workers("auto", runs(6, big), "cuda", source) == 1  # one GPU, one process
    assert plan_workers(3, runs(6, 0), "cpu", source) == 3 and plan_workers(8, runs(2, 0), "cpu", source) == 2
    with pytest.raises(ScalingError, match="CPU only"):
        plan_workers(2, runs(6, big), "cuda", source)
    with pytest.warns(UserWarning, match="cannot be sent to worker processes"):
        assert plan_workers("auto", runs(6, big, factory=lambda spec: build_reference(spec)), "cpu", source) == 1
    with pytest.raises(ScalingError, match="pickle"):
        plan_workers(2, runs(6, big, factory=lambda spec: build_reference(spec)), "cpu", source)
    for bad in (0, "two", 1.5, True):
        with pytest.raises(ScalingDataError, match="workers must be"):
            plan_workers(bad, runs(2, big), "cpu", source)
    monkeypatch.setenv("WORLD_SIZE", "2")  # under torchrun the ranks train each run together
    assert plan_workers("auto", runs(6, big), "cpu", source) == 1
    with pytest.raises(ScalingError, match="torchrun"):
        plan_workers(2, runs(6, big), "cpu", source)
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delattr(sys.modules["__main__"], "__file__", raising=False)  # as in a notebook or REPL
    monkeypatch.setattr(notebook_factory, "__module__", "__main__")
    with pytest.warns(UserWarning, match="cannot be sent to worker processes"):
        assert plan_workers("auto", runs(6, big, factory=notebook_factory), "cpu", source) == 1


def test_workers_train_exactly_what_one_process_trains_and_their_warnings_are_raised_here(tmp_path):
    """One pool of workers for both (each pool's workers take seconds to start): the workers' cache holds one
    run's entry truncated, which the worker that retrains it warns about."""
    here = run_sweep("gpt", SIZES, seeds=2, cache=RunCache(tmp_path / "one"), workers=1, **TINY)
    entry = min((tmp_path / "one" / "runs").iterdir())
    truncated = tmp_path / "two" / "runs" / entry.name  # the same run's key in the workers' cache
    truncated.parent.mkdir(parents=True)
    truncated.write_text(entry.read_text()[:100])
    with pytest.warns(UserWarning, match="ignoring corrupt run cache entry"):
        there = run_sweep("gpt", SIZES, seeds=2, cache=RunCache(tmp_path / "two"), workers=2, **TINY)
    assert [p.losses for p in there.points] == [p.losses for p in here.points]  # same threads: same digits
    assert [(r.spec, r.seed) for r in there.runs] == [(r.spec, r.seed) for r in here.runs]
    assert there.trained == 4 and len(list((tmp_path / "two" / "runs").iterdir())) == 4  # the truncated one too
    again = run_sweep("gpt", SIZES, seeds=2, cache=RunCache(tmp_path / "two"), workers=2, **TINY)
    assert again.trained == 0 and [p.losses for p in again.points] == [p.losses for p in here.points]


class LateFailure(nn.Module):
    """Fails in its first training step, once the other worker has stored its run ($WAIT_FOR_RUN_IN); the
    fingerprint probe's batch of two sequences passes."""

    def __init__(self, spec):
        super().__init__()
        self.inner = build_reference(spec)

    def forward(self, idx):
        if len(idx) <= 2:
            return self.inner(idx)
        runs_dir, deadline = os.environ["WAIT_FOR_RUN_IN"], time.monotonic() + 120
        while not (os.path.isdir(runs_dir) and os.listdir(runs_dir)) and time.monotonic() < deadline:
            time.sleep(0.05)
        raise RuntimeError("width 24 is broken")


def fails_at_width_24(spec):
    return LateFailure(spec) if spec.width == 24 else build_reference(spec)


def test_a_worker_error_reaches_the_caller_and_finished_runs_stay(tmp_path, monkeypatch):
    monkeypatch.setenv("WAIT_FOR_RUN_IN", str(tmp_path / "runs"))  # the spawned workers inherit it
    cache = RunCache(tmp_path)
    with pytest.raises(RuntimeError, match="width 24 is broken"):
        run_sweep(fails_at_width_24, SIZES, cache=cache, workers=2, **TINY)
    kept = list((tmp_path / "runs").iterdir())
    assert len(kept) == 1 and json.loads(kept[0].read_text())["record"]["spec"]["width"] == 16


class Dies(nn.Module):
    """Kills its own process in its first training step, as the kernel's out-of-memory killer would."""

    def __init__(self, spec):
        super().__init__()
        self.inner = build_reference(spec)

    def forward(self, idx):
        if len(idx) <= 2:  # the fingerprint probe's batch
            return self.inner(idx)
        os.kill(os.getpid(), signal.SIGKILL)


def dies_at_width_24(spec):
    return Dies(spec) if spec.width == 24 else build_reference(spec)


def test_a_dead_worker_is_a_clear_error(tmp_path):
    with pytest.raises(ScalingError, match="worker process died"):
        run_sweep(dies_at_width_24, SIZES, cache=RunCache(tmp_path), workers=2, **TINY)


def test_a_factory_a_worker_cannot_import_trains_here_under_auto(tmp_path, monkeypatch):
    module = types.ModuleType("only_in_this_process")  # pickles by name here; a fresh interpreter lacks it
    module.build = lambda spec: build_reference(spec)
    module.build.__module__, module.build.__qualname__ = module.__name__, "build"
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(parallel, "available_cores", lambda: 2)
    from pytest_scaling.data import get_source

    spec = ModelSpec(width=16, depth=1, vocab_size=64, seq_len=32)
    todo = [Run(module.build, spec, TrainConfig(tokens=2048, eval_tokens=512, seed=s, threads=1), PARALLEL_MIN_FLOPS)
            for s in range(2)]  # fmt: skip
    with pytest.raises(ScalingError, match="could not load the factory"):
        parallel.train_runs(todo, get_source(SRC), RunCache(tmp_path / "explicit"), workers=2)
    with pytest.warns(UserWarning, match="could not load the factory.*training in this process"):
        records = parallel.train_runs(todo, get_source(SRC), RunCache(tmp_path / "auto"), workers="auto")
    assert [r.seed for r in records] == [0, 1] and not any(r.cached for r in records)


SWEEP_SCRIPT = """
import signal
import sys

# a shell runs a background job with Ctrl-C ignored, and children inherit that (CI under `... &` did):
# restore what an interactive terminal gives the foreground job
signal.signal(signal.SIGINT, signal.default_int_handler)
from pytest_scaling.runners.cache import RunCache
from pytest_scaling.runners.sweep import run_sweep

if __name__ == "__main__":
    # the small run trains 31k tokens (under a second), the large one 1M tokens, a minute on one thread:
    # it never finishes first
    sizes = [dict(width=16, depth=1, seq_len=32), dict(width=64, depth=2, seq_len=32)]
    run_sweep("gpt", sizes, tokens_per_param=10, data="synthetic:docs=512,val_docs=64", threads=1,
              eval_tokens=1024, cache=RunCache(sys.argv[1]), workers=2)
"""


@pytest.mark.parametrize("how", ["ctrl-c", "parent killed"])
def test_stopping_the_sweep_stops_the_workers_and_keeps_finished_runs(tmp_path, how):
    proc, runs_dir = start_sweep_until_a_run_is_stored(tmp_path, SWEEP_SCRIPT, 120)
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends: the whole process group
        _, err = proc.communicate(timeout=30)
        assert proc.returncode != 0 and "KeyboardInterrupt" in err
    else:
        proc.kill()  # the parent alone, as a CI time-out might: its workers must not train on
        proc.communicate(timeout=30)
    (kept,) = runs_dir.iterdir()  # the small run, finished before Ctrl-C; the large one never finished
    assert json.loads(kept.read_text())["record"]["spec"]["width"] == 16
    deadline = time.monotonic() + 10  # the workers are terminated; multiprocessing's tracker exits after
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group_alive(proc.pid), "a worker outlived the interrupted sweep"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
