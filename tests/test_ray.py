"""The Ray backend on a local Ray instance with 2 CPUs: the same losses and cache keys as the local backend,
runs stored by the driver, a re-run that trains nothing, errors, and Ctrl-C mid-sweep."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import signal
import sys
import threading
import time

import pytest
import torch

import pytest_scaling.gate.gate  # noqa: F401  (see test_scaling_backend_ray_trains_on_its_own_local_instance...)
from pytest_scaling.errors import ScalingError
from pytest_scaling.runners.cache import RunCache
from pytest_scaling.runners.ray_backend import RayBackend
from pytest_scaling.runners.sweep import run_sweep
from pytest_scaling.training.model import build_reference
from tests.helpers import start_sweep_until_a_run_is_stored, tensorboard_runs

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'pytest-scaling[ray]'")

SIZES = [dict(width=16, depth=1, seq_len=32), dict(width=24, depth=1, seq_len=32)]
TINY = dict(tokens_per_param=4, data="synthetic:docs=512,val_docs=64", threads=1, eval_tokens=1024, seeds=2,
            batch_tokens=512)  # fmt: skip


@pytest.fixture(scope="module")
def _ray_module():
    """Shuts down at the module's end the connection its tests left open."""
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def local_ray(_ray_module):
    """One local instance, opened here by the first test that uses it and kept for the next (the backend uses an
    open connection as it is). The tests that use it come first in this module: later tests start their own."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
                 runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, sys.path))}})  # fmt: skip


@pytest.fixture
def no_ray_connection(_ray_module, monkeypatch):
    """This process as a fresh one would be for Ray: no open connection (the shared instance, if up, is shut
    down), no ``RAY_ADDRESS``, and not what an earlier ``ray.init`` here left behind: ``RAY_AUTH_MODE`` in the
    environment and the auth token it cached from ``~/.ray`` (pytester gives each test another HOME, where the
    instance a plugin run starts here looks for it). A plugin run in this process then starts its own local
    instance, or dials the address it is given, as a pytest process of its own would."""
    if ray.is_initialized():
        ray.shutdown()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    loader = getattr(ray._raylet, "AuthenticationTokenLoader", None)  # Ray >= 2.52: token authentication
    if loader is not None:
        loader.instance().reset_cache()
    yield
    if loader is not None:
        loader.instance().reset_cache()  # the token this test's HOME held


def test_ray_trains_the_same_runs_as_the_local_backend_and_the_driver_caches_them(tmp_path, local_ray):
    local = run_sweep("gpt", SIZES, cache=RunCache(tmp_path / "local"), workers=1, **TINY)
    remote = run_sweep("gpt", SIZES, cache=RunCache(tmp_path / "ray"), backend="ray", **TINY)
    assert [p.losses for p in remote.points] == [p.losses for p in local.points]  # to the last digit
    assert remote.trained == len(SIZES) * 2 and remote.trainer == local.trainer
    assert sorted(os.listdir(tmp_path / "ray" / "runs")) == sorted(os.listdir(tmp_path / "local" / "runs"))
    again = run_sweep("gpt", SIZES, cache=RunCache(tmp_path / "ray"), backend="ray", **TINY)
    assert again.trained == 0 and [p.losses for p in again.points] == [p.losses for p in local.points]


class LateFailure(torch.nn.Module):
    """Fails in its first training step once another run is stored in ``runs_dir``; the driver's fingerprint
    probe (a batch of two sequences) passes."""

    def __init__(self, spec, runs_dir: str):
        super().__init__()
        self.inner, self.runs_dir = build_reference(spec), runs_dir

    def forward(self, idx):
        if len(idx) <= 2:
            return self.inner(idx)
        deadline = time.monotonic() + 120
        while not (os.path.isdir(self.runs_dir) and os.listdir(self.runs_dir)) and time.monotonic() < deadline:
            time.sleep(0.05)
        raise LookupError("width 24 is broken")


def fails_at_width_24(spec, runs_dir):
    return LateFailure(spec, runs_dir) if spec.width == 24 else build_reference(spec)


def test_a_run_that_raises_reaches_the_caller_as_itself_and_finished_runs_stay(tmp_path, local_ray):
    factory = functools.partial(fails_at_width_24, runs_dir=str(tmp_path / "runs"))
    with pytest.raises(LookupError, match="width 24 is broken"):
        run_sweep(factory, SIZES, cache=RunCache(tmp_path), backend="ray", **{**TINY, "seeds": 1})
    (kept,) = (tmp_path / "runs").iterdir()
    assert json.loads(kept.read_text())["record"]["spec"]["width"] == 16


def holds_a_lock(spec, lock):
    return build_reference(spec)


def test_a_factory_that_cannot_travel_is_a_one_line_error(tmp_path, local_ray):
    factory = functools.partial(holds_a_lock, lock=threading.Lock())
    with pytest.raises(ScalingError, match=r"factory .* cannot be sent to Ray tasks \(TypeError: .*lock"):
        run_sweep(factory, SIZES, cache=RunCache(tmp_path), backend="ray", **TINY)
    assert not (tmp_path / "runs").exists()


def test_bad_backends_are_one_line_errors(tmp_path):
    with pytest.raises(ScalingError, match="backend must be 'local', 'ray' or a RayBackend, got 'dask'"):
        run_sweep("gpt", SIZES, cache=RunCache(tmp_path), backend="dask", **TINY)
    with pytest.raises(ScalingError, match="cpus_per_run must be an int >= 1"):
        RayBackend(cpus_per_run=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: each run's task asks for one")
def test_on_a_gpu_each_run_is_one_task_on_one_gpu(tmp_path, local_ray):
    placed = RayBackend().place([_run()])
    assert placed[0].config.device == "cuda"


def _run():
    from pytest_scaling.runners.parallel import Run
    from pytest_scaling.training.model import ModelSpec
    from pytest_scaling.training.train import TrainConfig

    return Run("gpt", ModelSpec(width=16, depth=1, vocab_size=64, seq_len=32), TrainConfig(tokens=512), 1.0)


SWEEP_SCRIPT = """
import signal
import sys

signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell's background job starts with it ignored
from pytest_scaling.runners.cache import RunCache
from pytest_scaling.runners.sweep import run_sweep

if __name__ == "__main__":
    # the small run trains 31k tokens (under a second), the large one 3.3M tokens, minutes on one thread:
    # it never finishes first
    sizes = [dict(width=16, depth=1, seq_len=32), dict(width=96, depth=3, seq_len=32)]
    run_sweep("gpt", sizes, tokens_per_param=10, data="synthetic:docs=512,val_docs=64", threads=1,
              eval_tokens=1024, cache=RunCache(sys.argv[1]), backend="ray")
"""


def test_ctrl_c_mid_sweep_stops_the_tasks_and_keeps_finished_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc, runs_dir = start_sweep_until_a_run_is_stored(tmp_path, SWEEP_SCRIPT, 180, env)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    (kept,) = runs_dir.iterdir()  # the small run; the large one never finished
    assert json.loads(kept.read_text())["record"]["spec"]["width"] == 16


PLUGIN_TEST = """
import pytest
from pytest_scaling import assert_on_curve

SIZES = [dict(width=16, depth=1, seq_len=32), dict(width=24, depth=1, seq_len=32), dict(width=32, depth=1, seq_len=32)]


@pytest.mark.scaling
def test_reference(scaling_sweep):
    result = scaling_sweep("gpt", SIZES, seeds=1, tokens_per_param=4, eval_tokens=1024, batch_tokens=512,
                           data="synthetic:docs=512,val_docs=64")
    assert result.runs and all(r.config.threads == 1 for r in result.runs if not r.cached)
    assert_on_curve(result, baseline="reference")
"""


_TRACKED = (["--scaling-tracker=tensorboard", "--scaling-tracker-dir=tracked"]
            if importlib.util.find_spec("tensorboard") else [])  # fmt: skip


def test_scaling_backend_ray_trains_on_its_own_local_instance_and_the_local_backend_reads_it(pytester,
                                                                                             no_ray_connection):
    """Both pytest runs in this process (a separate pytest is not the subject): the first starts its own local
    instance, as it would in a process of its own, and shuts it down at its end. (pytester's in-process runs
    drop the modules they import, and the gate's scipy.stats, numpy's FFT under it, cannot be imported twice
    into one process: this module imports the gate itself.)"""
    pytester.makepyfile(test_sweep=PLUGIN_TEST)
    pytester.runpytest_inprocess("--scaling-update", "--scaling-backend=ray", "-p", "no:cacheprovider",
                                 *_TRACKED).assert_outcomes(passed=1)  # fmt: skip
    assert not ray.is_initialized(), "the plugin left its local Ray instance running"
    if _TRACKED:  # the driver logs each run its Ray tasks trained, once
        (experiment,) = [p.name for p in (pytester.path / "tracked" / "tensorboard").iterdir()]
        logged = tensorboard_runs(pytester.path / "tracked" / "tensorboard", experiment)
        assert sorted(logged) == [f"test_sweep.py_test_reference/w{w}-d1-seed0-lr1" for w in (16, 24, 32)]
    local = pytester.runpytest_inprocess("--scaling", "--scaling-workers=1", "-p", "no:cacheprovider")
    local.assert_outcomes(passed=1)
    local.stdout.fnmatch_lines(["*3 runs, 0 trained now*"])


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_an_address_without_a_cluster_fails_in_one_line_within_the_timeout(pytester, no_ray_connection, address):
    pytester.makepyfile(test_sweep=PLUGIN_TEST)
    pytester.makeini("[pytest]\nscaling_ray_timeout = 2\n")
    start = time.monotonic()
    result = pytester.runpytest_inprocess("--scaling", "--scaling-backend=ray", f"--scaling-ray-address={address}",
                                          "-p", "no:cacheprovider")  # fmt: skip
    elapsed = time.monotonic() - start
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*scaling_sweep: cannot reach the Ray cluster at {address} within 2 s "
                                 "(Connection refused); start the cluster (`ray start --head`) or fix "
                                 "--scaling-ray-address*--scaling-ray-timeout sets the wait"])  # fmt: skip
    assert "Traceback" not in result.stdout.str() and "ray[client]" not in result.stdout.str()
    print(f"failed after {elapsed:.1f} s (a pytest run in this process)")


@pytest.mark.parametrize("args, message", [
    (["--scaling-backend=ray", "--scaling-ray-timeout=0"], "expected a number of seconds > 0, got '0'"),
    (["--scaling-backend=ray", "--scaling-ray-timeout=soon"], "expected a number of seconds > 0, got 'soon'"),
    (["--scaling-backend=ray", "--scaling-ray-cpus=0"], "expected an integer >= 1"),
    (["--scaling-backend=dask"], "invalid choice: 'dask'"),
])  # fmt: skip
def test_bad_backend_options_are_usage_errors(pytester, args, message):
    result = pytester.runpytest_inprocess("--scaling", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_without_ray_the_ray_backend_is_a_usage_error_that_says_how_to_install_it(pytester, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where it is not installed
    result = pytester.runpytest_inprocess("--scaling", "--scaling-backend=ray")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    hint = "--scaling-backend ray: the Ray backend needs Ray, which is not installed: pip install 'pytest-scaling[ray]'"
    assert hint in result.stderr.str()
