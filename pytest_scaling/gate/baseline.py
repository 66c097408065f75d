"""Named baselines: a reference sweep's points and fitted loss-vs-compute curve, committed as JSON.

The curve is a saturating power law in compute, ``L(C) = E + A C^-alpha`` (``laws.CURVE_LAW``), fitted
with the log-Huber multi-start fit to every run, then *anchored* at the measured sizes: its log residual at
each size is interpolated in log C and added back, so a size that the law fits imperfectly does not
look like a regression when the same architecture is re-run. Its uncertainty comes from a
bootstrap that resamples seeds within each size and refits (``Curve.samples``), and the seed noise
is the pooled relative standard deviation of the runs at one size.

Files are written atomically with sorted keys (reviewable diffs in a pull request); the bootstrap
is recomputed on load from the stored runs with the stored seed, so the file holds only facts.

A baseline remembers the test that recorded it (``recorded_by``, a pytest node id): under
``--scaling-update`` only that test re-records it, and every other test that names it is compared
with it as usual (see :mod:`pytest_scaling.gate.gate`).
"""

from __future__ import annotations

import copy
import datetime as _dt
import difflib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import ScalingDataError, ScalingError
from ..files import atomic_write
from ..fitting.fit import fit
from ..fitting.laws import CURVE_LAW
from ..fitting.noise import pooled_noise
from ..fitting.solver import solve
from ..runners.records import SizePoint, SweepResult

FORMAT = 1
N_BOOTSTRAP = 400


class BaselineError(ScalingError):
    """A baseline file that is corrupt, or incompatible with the current run."""


@dataclass
class Curve:
    """The anchored loss-vs-compute curve of a set of sizes, with bootstrap replicas."""

    compute: np.ndarray  # [K] per size
    losses: list[list[float]]  # per size, the finite seed losses
    theta: np.ndarray  # [3] the law fitted to every run
    samples: np.ndarray  # [R, 3] the law refitted per replica
    anchors: np.ndarray  # [R + 1, K] per size the replica's mean loss (row 0: the data)
    noise: float
    noise_dof: int
    converged_fraction: float = 1.0

    @property
    def params(self) -> dict[str, float]:
        return {k: float(v) for k, v in CURVE_LAW.params(self.theta).items()}

    def log_predict(self, theta: np.ndarray, anchors: np.ndarray, C) -> np.ndarray:
        """log L at compute C [M] for parameter rows theta [R, 3] anchored at anchors [R, K] -> [R, M]."""
        logc = np.log(self.compute)[:, None]
        base_at_sizes, _ = CURVE_LAW.log_predict(theta, logc)
        resid = np.log(anchors) - base_at_sizes
        order = np.argsort(self.compute)
        logq = np.log(np.asarray(C, float))
        base, _ = CURVE_LAW.log_predict(theta, logq[:, None])
        shift = np.stack([np.interp(logq, logc[order, 0], r[order]) for r in resid])
        return base + shift

    def predict(self, C) -> np.ndarray:
        """The anchored curve at compute ``C`` (array)."""
        return np.exp(self.log_predict(self.theta[None], self.anchors[:1], np.atleast_1d(C))[0])

    def predict_samples(self, C) -> np.ndarray:
        """Bootstrap replicas of :meth:`predict`, [R, len(C)]."""
        return np.exp(self.log_predict(self.samples, self.anchors[1:], np.atleast_1d(C)))

    def compute_for(self, loss, replicas: bool = False) -> np.ndarray:
        """Compute at which the curve reaches ``loss`` (inf when it never does within 12 e-folds).

        With ``replicas`` the answer is per bootstrap replica, and ``loss`` may give one loss per replica.
        """
        grid = np.exp(np.linspace(np.log(self.compute.min()) - 12, np.log(self.compute.max()) + 12, 4001))
        curves = self.predict_samples(grid) if replicas else self.predict(grid)[None]
        target = np.log(np.broadcast_to(np.asarray(loss, float), len(curves)))
        logc, logl = np.log(grid), np.log(curves)
        out = np.full(len(curves), math.inf)
        for i in range(len(curves)):
            below = np.flatnonzero(logl[i] <= target[i])
            if not below.size:
                continue
            j = below[0]
            if j == 0:
                out[i] = grid[0]
                continue
            t = (target[i] - logl[i, j - 1]) / (logl[i, j] - logl[i, j - 1])  # log-log interpolation
            out[i] = math.exp(logc[j - 1] + t * (logc[j] - logc[j - 1]))
        return out


def fit_curve(compute, losses: list[list[float]], *, n_bootstrap: int = N_BOOTSTRAP, seed: int = 0) -> Curve:
    """Fit and bootstrap the anchored curve: ``compute`` per size, ``losses`` per size (one per seed)."""
    compute = np.asarray(compute, float)
    finite = [[x for x in runs if math.isfinite(x)] for runs in losses]
    if any(not runs for runs in finite):
        bad = [i for i, runs in enumerate(finite) if not runs]
        raise ScalingDataError(f"size(s) {bad} have no finite loss (every seed diverged); cannot fit a curve")
    if len(compute) < 3:
        raise ScalingDataError(f"a scaling curve needs at least 3 sizes, got {len(compute)}")
    C = np.concatenate([[c] * len(runs) for c, runs in zip(compute, finite, strict=True)])
    L = np.concatenate(finite)
    fitted = fit(CURVE_LAW, L, C=C)
    rng = np.random.default_rng(seed)
    owner = np.concatenate([[k] * len(runs) for k, runs in enumerate(finite)])
    counts = np.zeros((n_bootstrap, len(L)))
    for k in range(len(finite)):  # stratified: resample seeds within each size
        idx = np.flatnonzero(owner == k)
        picks = idx[rng.integers(0, len(idx), (n_bootstrap, len(idx)))]
        np.add.at(counts, (np.arange(n_bootstrap)[:, None], picks), 1.0)
    starts = np.repeat(fitted.theta[None], n_bootstrap, axis=0)
    result = solve(CURVE_LAW, starts, fitted.X, fitted.logy, weights=counts, rtol=1e-7)
    means = np.stack([(counts[:, owner == k] * L[owner == k]).sum(1) / counts[:, owner == k].sum(1)
                      for k in range(len(finite))], axis=1)  # fmt: skip
    anchors = np.vstack([[np.mean(runs) for runs in finite], means])
    noise, dof = pooled_noise(finite)
    return Curve(compute, finite, fitted.theta, result.theta, anchors, noise, dof, fitted.converged_fraction)


@dataclass
class Baseline:
    """A named reference: its sweep's points, settings, and curve."""

    name: str
    factory: str
    data: dict
    trainer: dict
    points: list[SizePoint]
    seed: int = 0
    library_version: str = __version__
    created: str = ""
    recorded_by: str = ""  # the pytest node id of the test that recorded it ("" outside pytest)
    curve: Curve | None = field(default=None, repr=False)

    @classmethod
    def from_sweep(cls, name: str, sweep: SweepResult, *, seed: int = 0, recorded_by: str = "") -> Baseline:
        points = copy.deepcopy(sweep.points)  # the baseline's own: later edits to the sweep leave it alone
        created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
        base = cls(name, sweep.factory, sweep.data, sweep.trainer, points, seed, __version__, created, recorded_by)
        base.curve = _fit_points(points, seed)
        return base

    def to_dict(self) -> dict:
        curve = self.curve
        ci = {}
        if curve is not None and len(curve.samples):
            params = CURVE_LAW.params(curve.samples)
            ci = {k: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))] for k, v in params.items()}
        return {
            "format": FORMAT,
            "name": self.name,
            "library_version": self.library_version,
            "created": self.created,
            "recorded_by": self.recorded_by,
            "factory": self.factory,
            "data": self.data,
            "trainer": self.trainer,
            "points": [_point_json(p) for p in self.points],
            "law": {"form": CURVE_LAW.formula, "params": curve.params if curve else {}, "ci95": ci},
            "noise": {"relative_seed_std": None if curve is None or math.isnan(curve.noise) else curve.noise,
                      "dof": curve.noise_dof if curve else 0},
            "bootstrap": {"n": N_BOOTSTRAP, "seed": self.seed},
        }  # fmt: skip

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temporary file + rename), keys sorted for reviewable diffs."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(path, json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Baseline:
        """Read a baseline file; a corrupt one is a :class:`BaselineError` naming the file."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            if d.get("format") != FORMAT:
                raise ValueError(f"unknown format {d.get('format')!r} (this version reads {FORMAT})")
            points = [SizePoint.from_dict({**p, "losses": [math.inf if x is None else x for x in p["losses"]]})
                      for p in d["points"]]  # fmt: skip
            base = cls(d["name"], d["factory"], d["data"], d["trainer"], points,
                       d["bootstrap"]["seed"], d["library_version"], d.get("created", ""),
                       d.get("recorded_by", ""))  # fmt: skip
            base.curve = _fit_points(points, base.seed)
        except (OSError, ValueError, KeyError, TypeError, ScalingDataError) as exc:
            raise BaselineError(
                f"baseline file {path} is corrupt or unreadable ({type(exc).__name__}: {exc}); "
                "fix it or re-record it with --scaling-update"
            ) from None
        return base

    @staticmethod
    def owner(path: str | os.PathLike) -> str:
        """The node id of the test that recorded the file at ``path`` ("" when unknown or unreadable)."""
        try:
            owner = json.loads(Path(path).read_text()).get("recorded_by", "")
        except (OSError, ValueError, AttributeError):
            return ""
        return owner if isinstance(owner, str) else ""

    def differences(self, sweep: SweepResult) -> list[str]:
        """What makes ``sweep`` incomparable with this baseline (empty when compatible)."""
        out = []
        if self.data != sweep.data:
            keys = sorted(k for k in set(self.data) | set(sweep.data) if self.data.get(k) != sweep.data.get(k))
            out += [f"data {k}: baseline {self.data.get(k)!r}, run {sweep.data.get(k)!r}" for k in keys]
        vocab = {p.spec.vocab_size for p in self.points}, {p.spec.vocab_size for p in sweep.points}
        if vocab[0] != vocab[1]:
            out.append(f"tokenizer vocab_size: baseline {sorted(vocab[0])}, run {sorted(vocab[1])}")
        keys = sorted(k for k in set(self.trainer) | set(sweep.trainer) if self.trainer.get(k) != sweep.trainer.get(k))
        out += [f"trainer {k}: baseline {self.trainer.get(k)!r}, run {sweep.trainer.get(k)!r}"
                + (_LR_GRID_HINT if k == "lr_grid" else "") for k in keys]  # fmt: skip
        return out


def _fit_points(points: list[SizePoint], seed: int) -> Curve:
    return fit_curve([p.compute for p in points], [p.losses for p in points], seed=seed)


def _point_json(point: SizePoint) -> dict:
    """A point as the file stores it: non-finite losses as ``null`` (strict JSON)."""
    d = point.to_dict()
    finite = {k: d[k] if math.isfinite(d[k]) else None for k in ("loss", "loss_std")}
    return {**d, **finite, "losses": [x if math.isfinite(x) else None for x in d["losses"]]}


def names_hint(name: str, directory: Path) -> str:
    """``"; did you mean 'a' or 'b'?"`` for the baselines in ``directory`` whose names are close to ``name``,
    else ``"; existing baselines in DIR: ..."``; ``""`` when there are none."""
    existing = sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []
    close = difflib.get_close_matches(name, existing, n=3, cutoff=0.6)
    if close:
        return f"; did you mean {' or '.join(repr(c) for c in close)}?"
    return f"; existing baselines in {directory}: {', '.join(existing)}" if existing else ""


_LR_GRID_HINT = (" (a learning-rate search against a baseline trained at one rate, or the reverse, compares "
                 "tuned with untuned: give both the same lr_grid, e.g. --scaling-lr-grid, and re-record)")  # fmt: skip
