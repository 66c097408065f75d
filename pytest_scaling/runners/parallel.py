"""Where a sweep's runs train: one :class:`Backend` interface, chosen in one place (:func:`train_runs`):
:class:`InProcess`, :class:`WorkerPool` (CPU worker processes, each with its share of the cores; below) or
:class:`~pytest_scaling.runners.ray_backend.RayBackend` (Ray tasks). Every backend stores each run in the run cache
as it finishes.

On a CPU the runs of a ladder (sizes x seeds) are independent, and a tiny model keeps two cores busy
badly, so two single-thread processes side by side train more tokens than one two-thread process
(measured in ``docs/methodology.md``; whole sweeps with ``benchmarks/scripts/bench_workers.py``).
So by default (``workers="auto"``) a sweep trains its cache misses on one worker process per core (at most
:data:`MAX_AUTO_WORKERS`), each with ``cores // workers`` threads, largest run first, when

* the device is a CPU (one GPU is used by one process), outside ``torchrun`` (ranks train together),
* at least two runs miss the cache, and their training compute is at least :data:`PARALLEL_MIN_FLOPS`
  (a worker takes about 2 s to start: import torch, build the data source, calibrate the peak),
* and the factory and data source can be pickled (a module-level function or a registered name; a
  lambda, a function defined inside another, or one defined in a notebook cannot be sent to a worker:
  then the runs train in this process, with a warning; so do they when a worker cannot import what the
  pickle names, e.g. a test module under ``--import-mode=importlib``).

Workers are started with ``spawn`` (forking a process whose OpenMP threads are running can hang), so a
script that starts a sweep needs the usual ``if __name__ == "__main__":`` guard. Each worker trains through
the run cache (its lock and atomic write), so every finished run is stored the moment it finishes; on
Ctrl-C or an error the workers are terminated and only the runs in flight are lost, and on Linux a worker
also ends when its parent is killed. A worker that dies (killed for memory) is a
:class:`~pytest_scaling.errors.ScalingError`; an error inside a run reaches the caller as itself. Warnings
raised in a worker are raised again in this process, with their file and line. The thread count changes
floating-point rounding, not the run's cache key: see :mod:`pytest_scaling.runners.cache`.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Protocol

from ..data import DataSource
from ..errors import ScalingDataError, ScalingError, raise_warnings, run_catching_warnings
from ..training.hardware import available_cores
from ..training.spec import ModelSpec
from ..training.topology import launch_world_size
from ..training.train import RunRecord, TrainConfig
from .cache import RunCache, train_cached
from .ray_backend import RayBackend

__all__ = ["MAX_AUTO_WORKERS", "PARALLEL_MIN_FLOPS", "Backend", "InProcess", "Run", "RunProgress", "WorkerPool",
           "plan_workers", "train_runs"]

PARALLEL_MIN_FLOPS = 1e12  # about 10 s of training on 2 CPU cores
MAX_AUTO_WORKERS = 16  # each worker holds its own torch and data source


@dataclass(frozen=True)
class Run:
    """One run of a sweep; ``compute`` (training FLOPs) orders the runs, largest first; ``fingerprint`` is
    the model's behavioural fingerprint (:func:`pytest_scaling.training.identity.probe_model`), probed once per size."""

    factory: object
    spec: ModelSpec
    config: TrainConfig
    compute: float
    fingerprint: str | None = None


@dataclass(frozen=True)
class RunProgress:
    """One run of a sweep finished training: ``done`` of ``total`` runs to train, and the estimated time left
    (the elapsed time per FLOP so far times the FLOPs still to train); rendered by
    :func:`pytest_scaling.reports.terminal.progress_line`."""

    done: int
    total: int
    record: RunRecord
    eta_seconds: float


class _Tracker:
    """Calls ``callback`` with a :class:`RunProgress` as each of ``runs`` finishes training."""

    def __init__(self, callback: Callable[[RunProgress], None] | None, runs: list[Run]) -> None:
        self.callback, self.total, self.left = callback, len(runs), sum(r.compute for r in runs)
        self.done, self.spent, self.start = 0, 0.0, time.perf_counter()

    def finished(self, run: Run, record: RunRecord) -> None:
        self.done += 1
        self.spent += run.compute
        self.left -= run.compute
        if self.callback is not None and not record.cached:  # a run another process trained meanwhile: silent
            elapsed = time.perf_counter() - self.start
            self.callback(RunProgress(self.done, self.total, record, elapsed / self.spent * max(0.0, self.left)))


def plan_workers(workers: int | str, runs: list[Run], device: str, source: DataSource) -> int:
    """How many worker processes train ``runs`` (1: in this process), see the module docstring."""
    if workers == "auto":
        little = len(runs) < 2 or sum(r.compute for r in runs) < PARALLEL_MIN_FLOPS
        if device != "cpu" or launch_world_size() > 1 or little:
            return 1
        n = min(len(runs), available_cores(), MAX_AUTO_WORKERS)
        if n > 1 and not _picklable(runs, source):
            warnings.warn(
                "the factory or data source cannot be sent to worker processes (a lambda, a nested function or "
                "one defined in a notebook?), so the sweep trains in this process: define it in a module",
                stacklevel=3,
            )
            return 1
        return n
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ScalingDataError(f"workers must be 'auto' or an int >= 1, got {workers!r}")
    if workers > 1 and launch_world_size() > 1:
        raise ScalingError("workers > 1 cannot be combined with torchrun: its ranks train each run together")
    if workers > 1 and device != "cpu":
        raise ScalingError(f"workers > 1 trains on a CPU only; device {device!r} is used by one process")
    if workers > 1 and not _picklable(runs, source):
        raise ScalingError("workers > 1 needs a factory and data source that pickle (define it in a module)")
    return min(workers, max(1, len(runs)))


class Backend(Protocol):
    """Trains runs that missed the cache: fills ``records[i]`` for each ``(i, Run)`` of ``jobs``, stores each
    record in ``cache`` as it finishes, and tells ``tracker``; on Ctrl-C or an error it stops the runs in
    flight. :class:`InProcess`, :class:`WorkerPool` and :class:`~pytest_scaling.runners.ray_backend.RayBackend`."""

    def train(self, jobs: list[tuple[int, Run]], source: DataSource, cache: RunCache | None, records: list,
              tracker: _Tracker) -> None: ...  # fmt: skip


class InProcess:
    """Trains one run after another in this process."""

    def train(self, jobs, source, cache, records, tracker) -> None:
        for i, run in jobs:
            records[i] = train_cached(run.factory, run.spec, run.config, source, cache, fingerprint=run.fingerprint)
            tracker.finished(run, records[i])


def train_runs(
    runs: list[Run], source: DataSource, cache: RunCache | None, workers: int | str = "auto",
    progress: Callable[[RunProgress], None] | None = None, backend: str | RayBackend = "local",
) -> list[RunRecord]:  # fmt: skip
    """The record of every run, in order: from the cache, or trained by the backend chosen here: ``"local"``
    (in this process, or on ``workers`` CPU worker processes) or ``"ray"`` / a :class:`RayBackend`;
    ``progress`` is called as each run that was not in the cache finishes."""
    remote = _ray(backend)
    if remote is not None:
        runs = remote.place(runs)  # device and precision as resolved on the cluster: they enter the keys
    records: list[RunRecord | None] = [None] * len(runs)
    if cache is not None and not launch_world_size() > 1:  # under torchrun rank 0 decides, in train_cached
        for i, run in enumerate(runs):  # a corrupt entry warns where it is retrained (below or in a worker)
            key = cache.key(run.factory, run.spec, run.config, source, fingerprint=run.fingerprint,
                            environment=run.config if remote is not None else None)  # fmt: skip
            records[i] = cache.get(key, warn=False)
    todo = sorted((i for i, r in enumerate(records) if r is None), key=lambda i: -runs[i].compute)
    jobs = [(i, runs[i]) for i in todo]
    tracker = _Tracker(progress, [run for _, run in jobs])
    if remote is not None:
        if jobs:
            remote.train(jobs, source, cache, records, tracker)
        return records
    device = runs[0].config.resolve_environment().device if runs else "cpu"
    n = plan_workers(workers, [run for _, run in jobs], device, source)
    if n > 1:
        try:
            WorkerPool(n).train(jobs, source, cache, records, tracker)
        except _Unloadable as exc:
            if workers != "auto":
                raise
            warnings.warn(f"{exc}; training in this process instead", stacklevel=2)
    InProcess().train([(i, run) for i, run in jobs if records[i] is None], source, cache, records, tracker)
    return records


def _ray(backend: str | RayBackend) -> RayBackend | None:
    """The Ray backend ``backend`` names, None for the local one; a one-line error for anything else."""
    if isinstance(backend, RayBackend):
        chosen = backend
    elif backend == "ray":
        chosen = RayBackend()
    elif backend == "local":
        return None
    else:
        raise ScalingDataError(f"backend must be 'local', 'ray' or a RayBackend, got {backend!r}")
    if launch_world_size() > 1:
        raise ScalingError("the Ray backend cannot be combined with torchrun: its ranks train each run together")
    return chosen


@dataclass(frozen=True)
class WorkerPool:
    """Trains runs on ``n`` spawned CPU worker processes (see the module docstring)."""

    n: int

    def train(self, jobs, source, cache, records, tracker) -> None:
        """Train ``jobs`` on the workers, filling ``records``; stop every worker on any error."""
        n = self.n
        threads = max(1, available_cores() // n)
        pool = ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                                   initargs=(os.getpid(), pickle.dumps(source), cache))  # fmt: skip
        finished = False
        runs_by_index = dict(jobs)
        try:
            futures = [pool.submit(_train_job, i, pickle.dumps(replace(run, config=_with_threads(run.config, threads))))
                       for i, run in jobs]  # fmt: skip
            for future in as_completed(futures):
                i, record, caught = future.result()
                records[i] = record
                tracker.finished(runs_by_index[i], record)
                raise_warnings(caught)
            finished = True
        except BrokenProcessPool:
            codes = [p.exitcode for p in (getattr(pool, "_processes", None) or {}).values() if p.exitcode]
            raise ScalingError(f"a training worker process died (exit codes {codes or 'unknown'}; out of memory?); "
                               "the runs finished before are cached") from None  # fmt: skip
        finally:
            if not finished:  # Ctrl-C or an error: stop the runs in flight now rather than wait for them
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)


def _with_threads(config: TrainConfig, threads: int) -> TrainConfig:
    return config if config.threads is not None else replace(config, threads=threads)


def _picklable(runs: list[Run], source: DataSource) -> bool:
    """Whether a spawned worker can receive the factory and the source: they pickle, and nothing they name
    lives in an interactive ``__main__`` (a notebook or REPL), which a fresh interpreter cannot import."""
    if not runs:
        return True
    factory = runs[0].factory
    interactive = not hasattr(sys.modules["__main__"], "__file__")
    if interactive and "__main__" in (getattr(factory, "__module__", None), type(source).__module__):
        return False
    try:
        pickle.dumps((factory, source))
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


class _Unloadable(ScalingError):
    """A worker could not unpickle a run or the data source (e.g. a module it cannot import)."""


_WORKER: dict = {}  # in a worker process: the data source (pickled until first used) and the cache


def _start_worker(parent: int, source: bytes, cache: RunCache | None) -> None:
    """Leave Ctrl-C to the parent, which terminates the workers (no traceback from each), and on Linux
    end with the parent even when it is killed (a CI time-out) rather than train on for nobody."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the call above
            os._exit(1)
    _WORKER.update(source=source, cache=cache)


def _train_job(i: int, blob: bytes) -> tuple[int, RunRecord, list]:
    """In a worker: train the pickled run through the cache; (index, record, its warnings)."""
    try:
        run = pickle.loads(blob)
        if isinstance(_WORKER["source"], bytes):
            _WORKER["source"] = pickle.loads(_WORKER["source"])
    except Exception as exc:  # any failure to import what the pickle names
        raise _Unloadable(f"a worker process could not load the factory or the data source "
                          f"({type(exc).__name__}: {exc})") from None  # fmt: skip
    record, caught = run_catching_warnings(train_cached, run.factory, run.spec, run.config, _WORKER["source"],
                                           _WORKER["cache"], fingerprint=run.fingerprint)  # fmt: skip
    return i, record, caught
