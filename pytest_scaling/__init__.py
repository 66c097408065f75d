"""pytest-scaling: train a model ladder, fit scaling laws, gate architecture changes in pytest.

The fitting API (numpy/scipy only) is importable without torch; the training API loads torch
lazily on first use, so the pytest plugin adds nothing to a test session that does not use it.
The modules sit in layers that import only downward (``tests/test_layers.py``): the leaf utilities
(``errors``, ``files``, ``values``), then the subpackages ``fitting``, ``data``, ``training``,
``runners``, ``gate`` and ``reports``, then the product (``plugin``, ``cli`` and this module).
No export shares its name with a submodule (``gate``, ``data``...): importing the submodule would shadow
it. ``fit`` and ``train`` are not exported: use ``pytest_scaling.fitting.fit.fit`` or
``pytest_scaling.training.train.train``.
"""

from importlib import import_module

__version__ = "0.2.0"

_EXPORTS = {
    "ScalingError": "errors",
    "ScalingDataError": "errors",
    "ScalingDesignWarning": "errors",
    "ChinchillaLaw": "fitting.laws",
    "KaplanLaw": "fitting.laws",
    "PowerLaw": "fitting.laws",
    "Fit": "fitting.fit",
    "Bootstrap": "fitting.fit",
    "Backtest": "fitting.fit",
    "fit_chinchilla": "fitting.fit",
    "fit_kaplan": "fitting.fit",
    "fit_power": "fitting.fit",
    "bootstrap": "fitting.fit",
    "backtest": "fitting.fit",
    "optimal_allocation": "fitting.allocation",
    "isoflop": "fitting.allocation",
    "IsoFlop": "fitting.allocation",
    "read_columns": "fitting.points",
    "ModelSpec": "training.spec",
    "ladder": "training.model",
    "get_source": "data",
    "TrainConfig": "training.train",
    "RunRecord": "training.train",
    "RunCache": "runners.cache",
    "train_cached": "runners.cache",
    "SweepResult": "runners.records",
    "run_sweep": "runners.sweep",
    "RayBackend": "runners.ray_backend",
    "Baseline": "gate.baseline",
    "assert_on_curve": "gate.gate",
    "assert_beats_curve": "gate.gate",
    "assert_exponent": "gate.gate",
    "compute_multiplier": "gate.gate",
    "ScalingGateError": "gate.gate",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pytest_scaling' has no attribute {name!r}")
