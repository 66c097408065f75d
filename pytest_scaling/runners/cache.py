"""Content-addressed run cache: one JSON file per finished run, keyed by everything that changes it.

The key is the sha256 of the model spec, the run identity of :mod:`pytest_scaling.training.identity` (the
factory's normalised code across the user's modules, and the built model's behavioural fingerprint),
the data identity and the code identity of the source's class, the training config (device and
precision resolved; the thread count left out, it only changes rounding), the number of processes, the
library version and the trainer's own code identity (its default rules decide the learning rate and
batch of a config that leaves them unset).
Entries live in ``<root>/runs/<key>.json`` (default root ``.scaling/``, which gets a ``.gitignore`` of ``*``).

Writes are atomic (a temporary file in the same directory, then ``os.replace``), so an interrupted
process never leaves a half-written entry, and each run is stored as soon as it finishes. A file
lock per key (``<root>/locks/<key>.lock``) makes concurrent processes (pytest-xdist workers) train a
run once: the second waits, then finds the entry. A corrupt or truncated entry is ignored with a
warning naming the file (once), and retrained. Under ``torchrun`` only rank 0 locks, reads the decision and
writes; the other ranks follow its decision.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import warnings
from pathlib import Path

from filelock import FileLock

from .. import __version__
from ..data import DataSource, get_source
from ..files import atomic_write
from ..training.identity import code_identity, probe_model
from ..training.spec import ModelSpec
from ..training.topology import launch_world_size
from ..training.train import RunRecord, TrainConfig, train

__all__ = ["DEFAULT_ROOT", "RunCache", "digest", "run_key_inputs", "train_cached"]

DEFAULT_ROOT = ".scaling"


@functools.cache
def _trainer_identity() -> str:
    return code_identity(train)


def digest(inputs: dict) -> str:
    """The cache key (sha256 hex) of a run's :func:`run_key_inputs`."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def run_key_inputs(
    factory: object, spec: ModelSpec, config: TrainConfig, source: DataSource, world_size: int = 1,
    fingerprint: str | None = None, environment: TrainConfig | None = None,
) -> dict:  # fmt: skip
    """Everything that determines a run's result, as a JSON-able dict (the cache key hashes it).
    ``fingerprint``: the model's behavioural fingerprint when already known (else it is probed);
    ``environment``: ``config`` with device and precision as resolved where the run trains (default: here)."""
    resolved = (environment or config.resolve_environment()).to_dict()
    resolved.pop("threads")
    return {
        "spec": spec.to_dict(),
        "factory": code_identity(factory),
        "fingerprint": fingerprint or probe_model(factory, spec).fingerprint,
        "data": dict(source.identity),
        "data_code": code_identity(type(source)),  # how the source batches, beside what it holds
        "config": resolved,
        "world_size": world_size,
        "version": __version__,
        "trainer": _trainer_identity(),
    }


class RunCache:
    """A directory of finished runs (see the module docstring). Entries stored before ``retrain_before``
    (seconds since the epoch; ``--scaling-retrain`` passes the session's start) count as missing."""

    def __init__(self, root: str | os.PathLike = DEFAULT_ROOT, retrain_before: float | None = None) -> None:
        self.root = Path(root)
        self.retrain_before = retrain_before

    def key(
        self, factory: object, spec: ModelSpec, config: TrainConfig, source: str | DataSource | None = None,
        world_size: int = 1, fingerprint: str | None = None, environment: TrainConfig | None = None,
    ) -> str:  # fmt: skip
        """The sha256 hex key of a run (``environment``: see :func:`run_key_inputs`)."""
        return digest(run_key_inputs(factory, spec, config, get_source(source), world_size, fingerprint, environment))

    def path(self, key: str) -> Path:
        return self.root / "runs" / f"{key}.json"

    def lock(self, key: str) -> FileLock:
        """An inter-process lock for ``key`` (reentrant within a process)."""
        self._ensure_root()
        return FileLock(str(self.root / "locks" / f"{key}.lock"))

    def get(self, key: str, *, warn: bool = True) -> RunRecord | None:
        """The stored record (``cached=True``), or ``None`` when absent or unreadable (with a warning
        unless ``warn`` is false: a look-up that the caller repeats under the lock)."""
        path = self.path(key)
        try:
            if self.retrain_before is not None and path.stat().st_mtime < self.retrain_before:
                return None
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            entry = json.loads(text)
            if entry.get("key") != key:
                raise ValueError(f"entry key {entry.get('key')!r} does not match")
            record = RunRecord.from_dict(entry["record"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if warn:
                warnings.warn(f"ignoring corrupt run cache entry {path} ({exc}); retraining it", stacklevel=2)
            return None
        record.cached, record.key = True, key
        return record

    def put(self, key: str, record: RunRecord, inputs: dict | None = None) -> Path:
        """Store ``record`` atomically under ``key`` (``inputs``, if given, is kept for inspection)."""
        self._ensure_root()
        record.key = key
        entry = {"key": key, "inputs": inputs, "record": {**record.to_dict(), "cached": False}}
        return atomic_write(self.path(key), json.dumps(entry, sort_keys=True, indent=1))

    def _ensure_root(self) -> None:
        for sub in ("runs", "locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")


def _distributed(device: str) -> tuple[int, int]:
    """(rank, world size) of a ``torchrun`` launch, initialising the process group through Accelerate.

    A process group this starts is destroyed at exit: left alive, a rank sometimes aborted while the
    interpreter shut down ("terminate called without an active exception", 1 in 4 two-rank runs here).
    """
    if launch_world_size() == 1:
        return 0, 1
    import torch.distributed as dist
    from accelerate.state import PartialState

    started = not dist.is_initialized()
    state = PartialState(cpu=device == "cpu")
    if started and dist.is_initialized():
        atexit.register(_destroy_process_group)
    return state.process_index, state.num_processes


def _destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def train_cached(
    factory: object, spec: ModelSpec, config: TrainConfig, source: str | DataSource | None = None,
    cache: RunCache | None = None, *, fingerprint: str | None = None, progress=None,
) -> RunRecord:  # fmt: skip
    """:func:`~pytest_scaling.training.train.train` through ``cache``: a stored run is returned with
    ``cached=True`` and nothing is trained; a new run is stored as soon as it finishes.
    ``fingerprint``: the model's behavioural fingerprint, when the caller has probed the model;
    ``progress``: passed to :func:`~pytest_scaling.training.train.train`."""
    if cache is None:
        return train(factory, spec, config, source, progress)
    source = get_source(source)
    rank, world = _distributed(config.resolve_environment().device)
    inputs = run_key_inputs(factory, spec, config, source, world, fingerprint)
    key = digest(inputs)
    if world > 1:
        return _train_cached_distributed(factory, spec, config, source, cache, key, inputs, rank, progress)
    record = cache.get(key, warn=False)
    if record is not None:
        return record
    with cache.lock(key):
        record = cache.get(key)  # another process may have finished it while we waited
        if record is not None:
            return record
        record = train(factory, spec, config, source, progress)
        cache.put(key, record, inputs)
    return record


def _train_cached_distributed(factory, spec, config, source, cache, key, inputs, rank, progress) -> RunRecord:
    """Rank 0 holds the lock and decides; every rank trains on a miss; only rank 0 writes."""
    import torch.distributed as dist

    lock = cache.lock(key) if rank == 0 else None
    if lock is not None:
        lock.acquire()
    try:
        hit = cache.get(key) if rank == 0 else None
        found = [hit.to_dict() if hit is not None else None]
        dist.broadcast_object_list(found, src=0)
        if found[0] is not None:
            return RunRecord.from_dict({**found[0], "cached": True, "key": key})
        record = train(factory, spec, config, source, progress if rank == 0 else None)
        record.key = key
        if rank == 0:
            cache.put(key, record, inputs)
        return record
    finally:
        if lock is not None:
            lock.release()
