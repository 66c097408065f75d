"""Every run's learning curve in an experiment tracker, through Accelerate's trackers (TensorBoard event
files, MLflow's local file store, W&B offline), logged by the process that holds the sweep's records.

A sweep's records come back to its driver from wherever the runs trained (this process, worker processes,
torchrun ranks, Ray tasks, the run cache), so one place logs them all: each run once per experiment (a
marker file per run key under the tracker directory, created atomically, so xdist workers and tests that
share a run do not log it twice), under ``<test>/<size>-seed<seed>-lr<multiplier>``, with the run key, the
spec and the training settings as its configuration. Its training loss and learning rate are logged at
every curve point (the step axis is training tokens) and its validation loss at the last one. Runs served
from the cache are logged from the curve stored with them, so a candidate sits beside a reference trained
last week. Under torchrun only rank 0 logs.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ScalingDataError
from ..training.topology import launch_rank

if TYPE_CHECKING:
    from ..training.train import RunRecord

TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}  # name -> the module it needs
DEFAULT_DIR = ".scaling-runs"


def require_tracker(name: str) -> None:
    """A one-line usage error unless tracker ``name`` is known and its package is importable."""
    if name not in TRACKERS:
        raise ScalingDataError(f"unknown tracker {name!r}; valid: {', '.join(TRACKERS)}")
    if importlib.util.find_spec(TRACKERS[name]) is None:
        raise ScalingDataError(f"tracker {name!r} needs the {TRACKERS[name]!r} package: "
                               f"pip install 'pytest-scaling[{name}]'")  # fmt: skip


def default_directory(cache_root: Path | None) -> Path:
    """``.scaling-runs/`` beside the run cache's folder (in the working directory without a cache)."""
    return (Path(cache_root).resolve().parent if cache_root is not None else Path.cwd()) / DEFAULT_DIR


def experiment_name(started_at: float) -> str:
    """``pytest-scaling-<UTC time to the microsecond>``: one experiment per session (xdist workers share it)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started_at))
    return f"pytest-scaling-{stamp}-{round(started_at * 1e6) % 10**6:06d}"


def run_name(test: str, record: RunRecord) -> str:
    """``<test>/w<width>-d<depth>-seed<seed>-lr<multiplier>``, safe as a path component per part."""
    size = f"{record.spec.label}-seed{record.seed}-lr{record.config.lr_multiplier:g}"
    return f"{re.sub(r'[^A-Za-z0-9_.=-]+', '_', test).strip('_') or 'sweep'}/{size}"


def curve_rows(record: RunRecord) -> list[tuple[int, dict[str, float]]]:
    """(training tokens, values) at every curve point: training loss and learning rate; the last point also
    carries the validation loss (and bits per byte, where the source knows bytes per token)."""
    from ..training.train import lr_schedule

    config = record.config
    batch = config.batch_tokens or record.tokens
    steps = max(1, math.ceil(record.tokens / batch))
    lrs = lr_schedule(steps, config.lr, config.warmup, config.schedule, config.final_lr_ratio)
    rows = []
    for seen, loss in record.curve:
        step = min(steps - 1, max(0, math.ceil(seen / batch) - 1))
        rows.append((int(seen), {"train/loss": float(loss), "train/lr": lrs[step]}))
    final = {"val/loss": float(record.loss)}
    if record.loss_bits_per_byte is not None:
        final["val/bits_per_byte"] = float(record.loss_bits_per_byte)
    if rows and rows[-1][0] == record.tokens:
        rows[-1][1].update(final)
    else:
        rows.append((int(record.tokens), final))
    return rows


def run_config(record: RunRecord) -> dict:
    """The run's configuration as flat scalars (what every tracker accepts as hyperparameters)."""
    values = {"run_key": record.key or "", "factory": record.factory, "seed": record.seed,
              "params": record.params, "non_embedding_params": record.non_embedding_params,
              "tokens": record.tokens, "compute": record.compute, "data": json.dumps(record.data, sort_keys=True),
              "world_size": record.world_size, "diverged": record.diverged, "cached": record.cached}  # fmt: skip
    values.update({f"spec/{k}": v for k, v in record.spec.to_dict().items()})
    values.update({f"train/{k}": v if isinstance(v, bool | int | float | str) or v is None else json.dumps(v)
                   for k, v in record.config.to_dict().items()})  # fmt: skip
    return {k: ("" if v is None else v) for k, v in values.items()}


@dataclass(frozen=True)
class Tracking:
    """Where runs are logged: tracker ``kind`` under ``directory``, in experiment ``experiment``, named
    after ``test`` (the plugin: the test's node id; else the caller's label)."""

    kind: str
    directory: Path = Path(DEFAULT_DIR)
    experiment: str = ""
    test: str = ""

    def __post_init__(self) -> None:
        require_tracker(self.kind)
        object.__setattr__(self, "directory", Path(self.directory))
        if not self.experiment:
            object.__setattr__(self, "experiment", experiment_name(time.time()))

    def log(self, records: list[RunRecord], label: str = "sweep") -> int:
        """Log each record not yet logged in this experiment (named after ``test``, else ``label``); returns
        how many were logged. Under torchrun only rank 0 logs."""
        if launch_rank() != 0:
            return 0
        from accelerate.state import PartialState

        created = not PartialState._shared_state  # Accelerate's trackers log through its state-bound logger
        if created:
            PartialState(cpu=True)
        logged = 0
        try:
            for record in records:
                if self._claim(record):
                    self._log_one(run_name(self.test or label, record), record)
                    logged += 1
        finally:
            if created:
                PartialState._reset_state()
        return logged

    @property
    def store(self) -> Path:
        """The tracker's own folder: ``tensorboard --logdir``, MLflow's file store, W&B's ``dir``."""
        return self.directory / self.kind

    def _claim(self, record: RunRecord) -> bool:
        """True for the first caller in this experiment to log ``record`` (a marker file, created atomically)."""
        if record.key is None:  # no run cache: a run trained for this call alone
            return True
        markers = self.directory / ".logged" / self.kind / self.experiment
        markers.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(markers / record.key, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def _log_one(self, name: str, record: RunRecord) -> None:
        tracker = self._tracker(name)
        tracker.start()
        try:
            tracker.store_init_configuration(run_config(record))
            for tokens, values in curve_rows(record):
                tracker.log(values, step=tokens)
        finally:
            tracker.finish()

    def _tracker(self, name: str):
        from accelerate import tracking

        store = self.store
        store.mkdir(parents=True, exist_ok=True)
        if self.kind == "tensorboard":
            return tracking.TensorBoardTracker(f"{self.experiment}/{name}", store)
        if self.kind == "mlflow":
            import mlflow

            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the local file store: no server, no database
            mlflow.set_tracking_uri(store.resolve().as_uri())
            return tracking.MLflowTracker(self.experiment, run_name=name)
        os.environ.setdefault("WANDB_MODE", "offline")
        return tracking.WandBTracker(self.experiment, name=name, dir=str(store),
                                     settings=_wandb_settings())  # fmt: skip


def _wandb_settings():
    import wandb

    return wandb.Settings(silent=True, console="off", x_disable_stats=True, x_disable_meta=True)
