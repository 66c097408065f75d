"""What a sweep measured: per size its shape, budget and seed losses (``SizePoint``), and the sweep as a
whole (``SweepResult``). No torch: the gate and the reports read these without loading it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from ..training.spec import ModelSpec

if TYPE_CHECKING:
    from ..training.train import RunRecord


@dataclass
class SizePoint:
    """One model size: its shape and budget, and the final losses of its seeds (nats/token)."""

    spec: ModelSpec
    params: int  # non-embedding parameters N
    total_params: int
    tokens: int
    compute: float  # training FLOPs C ("6N+attn" per token x tokens)
    losses: list[float]
    diverged: int = 0
    lr: float | None = None  # the peak learning rate of the size's runs (None: it differs between seeds)
    lr_multiplier: float | None = None  # with lr_grid: the multiplier of the rule chosen for this size
    lr_scores: list[list[float]] | None = None  # with lr_grid: [multiplier, mean selection-half loss] per value
    loss_se: list[float | None] | None = None  # per seed, the standard error of its loss over validation windows
    floor: float | None = None  # the best loss any model can reach on the size's windows, where the data knows it

    @property
    def loss(self) -> float:
        """Mean loss over the seeds that did not diverge (inf when all diverged)."""
        finite = [x for x in self.losses if math.isfinite(x)]
        return float(np.mean(finite)) if finite else math.inf

    @property
    def loss_std(self) -> float:
        """Sample standard deviation over seeds (0 with one seed)."""
        finite = [x for x in self.losses if math.isfinite(x)]
        return float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0

    @property
    def label(self) -> str:
        return self.spec.label

    def to_dict(self) -> dict:
        """The point as plain values (the spec as a dict), with its mean loss and spread."""
        return {**asdict(self), "loss": self.loss, "loss_std": self.loss_std}

    @classmethod
    def from_dict(cls, d: dict) -> SizePoint:
        """The point :meth:`to_dict` wrote (its derived ``loss`` and ``loss_std`` are recomputed)."""
        names = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in d.items() if k in names}, "spec": ModelSpec.from_dict(d["spec"])})


@dataclass
class SweepResult:
    """What a sweep measured: per size the mean and spread over seeds, plus every run record."""

    factory: str
    data: dict
    trainer: dict
    points: list[SizePoint]
    skipped: list[dict] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list, repr=False)
    context: object = field(default=None, repr=False, compare=False)  # set by the pytest plugin

    @property
    def params(self) -> np.ndarray:
        return np.array([p.params for p in self.points], float)

    @property
    def compute(self) -> np.ndarray:
        return np.array([p.compute for p in self.points], float)

    @property
    def loss(self) -> np.ndarray:
        return np.array([p.loss for p in self.points], float)

    @property
    def trained(self) -> int:
        """Runs trained now (not served from the cache)."""
        return sum(not r.cached for r in self.runs)

    def to_dict(self) -> dict:
        return {
            "factory": self.factory,
            "data": self.data,
            "trainer": self.trainer,
            "points": [p.to_dict() for p in self.points],
            "skipped": self.skipped,
        }
