"""The typed result of one gate check: a :class:`GateReport` with a :class:`SizeRow` per size.

The gate (:mod:`pytest_scaling.gate.gate`, through :mod:`pytest_scaling.gate.reporting`) builds one per
assertion-helper call; the reporters (:mod:`pytest_scaling.reports`) render terminal, Markdown, JSON and
plots from it. Reports travel from pytest-xdist workers to the controller as plain dicts
(:meth:`GateReport.to_dict` / :meth:`GateReport.from_dict`).
Nothing here needs numpy or torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..training.spec import ModelSpec


@dataclass
class SizeRow:
    """One candidate size against the baseline curve (losses in nats/token, compute in FLOPs)."""

    label: str
    spec: ModelSpec
    params: int  # non-embedding parameters
    tokens: int
    flops: float  # training compute C
    loss: float  # mean over the seeds that did not diverge (inf when all diverged)
    loss_std: float
    n_seeds: int  # seeds with a finite loss
    diverged: int  # seeds that diverged
    predicted: float  # the baseline's anchored curve at C
    predicted_lo: float
    predicted_hi: float
    deviation: float  # loss / predicted - 1
    z: float  # deviation in noise units
    sigma: float
    seed_noise: float  # relative seed standard deviation at this size's compute (the gate's noise model)
    noise_dof: float  # degrees of freedom of that noise (z is referred to Student's t with these; inf: assumed)
    multiplier: float  # compute the baseline needs for this loss / C (0 when the loss is not finite)
    extrapolated: bool = False  # C, or the compute the baseline needs for this loss, lies outside its sizes
    verdict: str | None = None  # the check's call for this size (None: the check makes no per-size call)
    z_better: float | None = None  # assert_beats_curve: evidence of being better by the margin
    lr: float | None = None  # the peak learning rate of the size's runs
    lr_multiplier: float | None = None  # with lr_grid: the multiplier chosen for this size
    baseline_lr_multiplier: float | None = None  # the baseline's choice at the same shape (both searched)


@dataclass
class Noise:
    relative_seed_std: float  # at the seeds' mean log compute (the pooled figure when not by_compute)
    dof: int
    assumed: bool  # no size had two seeds: the gate's assumed noise
    by_compute: bool = False  # the noise model varies with compute: each SizeRow has its own seed_noise


def seed_noise_text(noise: Noise, rows: list[SizeRow]) -> str:
    """'seed noise 0.41%, 10 dof', or from the smallest to the largest size when it varies with compute."""
    if noise.assumed:
        return f"seed noise {100 * noise.relative_seed_std:.2f}% (assumed)"
    if noise.by_compute and rows:
        first, last = min(rows, key=lambda r: r.flops), max(rows, key=lambda r: r.flops)
        return (f"seed noise {100 * first.seed_noise:.2f}% at {first.label} to {100 * last.seed_noise:.2f}% at "
                f"{last.label}, {noise.dof} dof")  # fmt: skip
    return f"seed noise {100 * noise.relative_seed_std:.2f}%, {noise.dof} dof"


@dataclass
class PlotData:
    """What a plot or chart needs: the baseline curve on a compute grid with its 95% band, and its sizes."""

    compute: list[float]
    baseline: list[float]
    baseline_lo: list[float]
    baseline_hi: list[float]
    baseline_sizes_compute: list[float]  # the baseline's measured sizes: their compute and mean loss
    baseline_sizes_loss: list[float]


@dataclass
class Crossover:
    """Where the candidate's fitted law meets the baseline's (``compute`` None: no crossing in the searched
    range), and how the gap between them moves with compute (:mod:`pytest_scaling.gate.crossover`). A crossing
    is claimed only when ``trend`` is not ``"none"``."""

    compute: float | None
    lo: float | None  # bootstrap 95% interval of the crossing compute
    hi: float | None
    searched_to: float  # the largest compute searched (1000x the largest size)
    favours: str  # whom the gap moves towards as compute grows (the slope's sign): "candidate" or "baseline"
    better_at_largest: bool  # whether the candidate is below the baseline's curve at its largest size (fitted gap)
    trend: str = "none"  # "growing" / "shrinking": the gap's magnitude with compute, beyond seed noise; or "none"
    slope: float = 0.0  # the log gap's change per 10x compute (negative: towards the candidate)
    slope_lo: float = 0.0  # its 95% interval
    slope_hi: float = 0.0


@dataclass
class GateReport:
    """One assertion helper's verdict on one sweep against one baseline."""

    nodeid: str
    baseline: str
    check: str  # on_curve, beats_curve, exponent, multiplier
    verdict: str  # passed, failed, caught, recorded, updated, info
    message: str
    sizes: list[SizeRow]
    combined_z: float
    noise: Noise
    baseline_law: dict[str, float]
    candidate_law: dict[str, float] | None
    trained: int  # runs trained now (not served from the cache)
    runs: int
    skipped: list[dict] = field(default_factory=list)
    plot: PlotData | None = None
    probability_better: float | None = None  # assert_beats_curve
    alpha: float | None = None  # assert_exponent: the candidate's and the baseline's compute exponents
    baseline_alpha: float | None = None
    multiplier: list[float] | None = None  # compute_multiplier: [value, 95% low, 95% high]
    multiplier_extrapolated: bool = False  # some size's multiplier is read off outside the baseline's sizes
    crossover: Crossover | None = None
    warnings: list[str] = field(default_factory=list)  # one line each: what may make the verdict misleading

    @property
    def compared(self) -> bool:
        """Whether the sizes hold a real comparison (not a just-recorded baseline against itself)."""
        return self.verdict not in ("recorded", "updated")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GateReport:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["sizes"] = [SizeRow(**{**row, "spec": ModelSpec.from_dict(row["spec"])}) for row in d["sizes"]]
        values["noise"] = Noise(**d["noise"])
        values["plot"] = PlotData(**d["plot"]) if d.get("plot") else None
        values["crossover"] = Crossover(**d["crossover"]) if d.get("crossover") else None
        return cls(**values)
