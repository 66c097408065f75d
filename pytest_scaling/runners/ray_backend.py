"""A sweep's runs as Ray tasks: one run per GPU on a GPU cluster, or ``cpus_per_run`` CPUs each.

:class:`RayBackend` connects to the cluster at ``address`` (else ``RAY_ADDRESS``; else it starts a local
instance, shut down by :func:`shutdown` or at exit) and trains each run that missed the cache as one task.
The driver stores every record in its own run cache the moment the task returns, so Ctrl-C, a lost node or
an error loses only the runs in flight, and a re-run trains only what is missing. Ray retries a task whose
worker or node died (its ``max_retries``); a run that raises reaches the caller as its own exception.

The factory and data source travel with Ray's cloudpickle (a lambda does; a factory holding a lock or an
open file does not: a one-line :class:`~pytest_scaling.errors.ScalingError`). Workers of a local instance
import with the driver's ``sys.path``; on a remote cluster give a ``runtime_env`` to ``ray.init`` yourself
(this backend uses a connection that is already open).

The run's device and precision are resolved on the cluster, by one probe task with the runs' resources, and
enter the run's cache key as resolved there: a CPU-only driver keys GPU runs correctly.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace

from ..data import DataSource
from ..errors import ScalingError, raise_warnings, run_catching_warnings
from ..training.hardware import available_cores
from ..training.train import RunRecord, TrainConfig, train
from .cache import RunCache, digest, run_key_inputs
from .ray_address import ADDRESS_FIX, CONNECT_TIMEOUT, wait_reachable

__all__ = ["RayBackend", "ray_or_error", "shutdown"]

INSTALL_HINT = "pip install 'pytest-scaling[ray]'"
_STARTED: list = []  # the ray module, when this process started the local instance


def ray_or_error():
    """The ``ray`` module, or a one-line error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ScalingError(f"the Ray backend needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


@dataclass(frozen=True)
class RayBackend:
    """Train runs as Ray tasks on the cluster at ``address`` (None: ``RAY_ADDRESS``, else a local instance of
    this machine's cores). On GPUs each task takes one GPU; on CPUs ``cpus_per_run`` CPUs (its threads)."""

    address: str | None = None
    cpus_per_run: int = 1
    connect_timeout: float = CONNECT_TIMEOUT  # seconds the cluster's address may take to accept a connection

    def __post_init__(self) -> None:
        if isinstance(self.cpus_per_run, bool) or not isinstance(self.cpus_per_run, int) or self.cpus_per_run < 1:
            raise ScalingError(f"cpus_per_run must be an int >= 1, got {self.cpus_per_run!r}")
        timeout = self.connect_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout < float("inf"):
            raise ScalingError(f"connect_timeout must be a number of seconds > 0, got {timeout!r}")

    @property
    def local(self) -> bool:
        """Whether the runs train on a local instance on this machine (no address, none connected)."""
        ray = ray_or_error()
        return not ray.is_initialized() and not (self.address or os.environ.get("RAY_ADDRESS"))

    def connect(self):
        """The ``ray`` module, initialised: an open connection is kept, else one is made."""
        ray = ray_or_error()
        if not ray.is_initialized():
            local = self.local
            address = self.address or os.environ.get("RAY_ADDRESS")
            if not local:
                wait_reachable(address, self.connect_timeout)
            paths = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, sys.path))}}
            try:
                ray.init(address=self.address, num_cpus=available_cores() if local else None, include_dashboard=False,
                         logging_level="ERROR", runtime_env=paths if local else None)  # fmt: skip
            except Exception as exc:  # Ray's own errors carry pages of context and no address
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                reason = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
                raise ScalingError(f"cannot connect to {where}: {type(exc).__name__}: {reason.strip()}"
                                   + (ADDRESS_FIX if address else "")) from None  # fmt: skip
            if local:
                _STARTED.append(ray)
        return ray

    def place(self, runs: list) -> list:
        """``runs`` with the device, precision and CPU threads they train with: resolved on this machine for a
        local instance (nothing is started for that), else by one probe task on the cluster."""
        if not runs:
            return runs
        config = runs[0].config
        if self.local:
            resolved = config.resolve_environment()
        else:
            ray = self.connect()
            gpus = _gpus_per_run(ray, config.device)
            probe = ray.remote(_resolve).options(num_cpus=self.cpus_per_run, num_gpus=gpus)
            resolved = ray.get(probe.remote(replace(config, device="cuda" if gpus else "cpu")))
        threads = None if resolved.device == "cuda" else self.cpus_per_run
        return [replace(run, config=replace(run.config, device=resolved.device, precision=resolved.precision,
                                            threads=run.config.threads or threads)) for run in runs]  # fmt: skip

    def train(self, jobs: list, source: DataSource, cache: RunCache | None, records: list, tracker) -> None:
        """Train ``jobs`` ([(index, Run)], placed by :meth:`place`) as tasks, filling ``records`` and the cache
        as each finishes."""
        _check_travels(ray_or_error(), jobs[0][1].factory, source)
        ray = self.connect()
        gpus = int(jobs[0][1].config.device == "cuda")
        remote = ray.remote(_train_task).options(num_cpus=self.cpus_per_run, num_gpus=gpus, max_retries=2)
        source_ref = ray.put(source)
        pending = {}
        for i, run in jobs:
            inputs = run_key_inputs(run.factory, run.spec, run.config, source, fingerprint=run.fingerprint,
                                    environment=run.config)  # fmt: skip
            pending[remote.remote(run.factory, run.spec, run.config, source_ref)] = (i, run, inputs)
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                i, run, inputs = pending.pop(ref)
                record, caught = _result(ray, ref)
                if cache is not None:
                    cache.put(digest(inputs), record, inputs)
                records[i] = record
                tracker.finished(run, record)
                raise_warnings(caught)
        finally:
            for ref in pending:  # Ctrl-C or an error: stop the runs in flight
                ray.cancel(ref, force=True)


def shutdown() -> None:
    """Shut down the local Ray instance this process started (nothing when it connected to a cluster)."""
    while _STARTED:
        _STARTED.pop().shutdown()


def _check_travels(ray, factory, source: DataSource) -> None:
    for what, value in (("factory", factory), ("data source", source)):
        try:
            ray.cloudpickle.dumps(value)
        except Exception as exc:  # cloudpickle raises whatever the object's reduction raises
            raise ScalingError(f"the {what} {value!r} cannot be sent to Ray tasks ({type(exc).__name__}: {exc}): "
                               "build it in a function that holds no lock, open file or process") from None  # fmt: skip


def _gpus_per_run(ray, device: str) -> int:
    """1 when the runs train on GPUs (``cuda``, or ``auto`` on a cluster with GPUs), else 0."""
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    if device == "cuda" and not has_gpus:
        raise ScalingError("device 'cuda' requested but the Ray cluster has no GPU")
    return int(device == "cuda" or (device == "auto" and has_gpus))


def _resolve(config: TrainConfig) -> TrainConfig:
    """On the cluster: ``config`` with device and precision resolved there."""
    return config.resolve_environment()


def _train_task(factory, spec, config: TrainConfig, source: DataSource) -> tuple[RunRecord, list]:
    """On the cluster: train one run; (its record, the warnings it raised)."""
    return run_catching_warnings(train, factory, spec, config, source)


def _result(ray, ref) -> tuple[RunRecord, list]:
    """A finished task's value; a run's own exception is raised as itself."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception):
            raise cause from None
        raise ScalingError(f"a Ray task failed: {exc}") from None
    except ray.exceptions.RayError as exc:  # a worker or node lost after Ray's retries
        raise ScalingError(f"a Ray task died ({type(exc).__name__}); the runs finished before are cached") from None
