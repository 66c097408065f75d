"""Shared fixtures for the unit tests."""

from pathlib import Path

import numpy as np
import pytest

SHARED_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "svg_extracted_data.csv"


@pytest.fixture(scope="session")
def chinchilla_points():
    """Epoch AI's 245 digitised Chinchilla points as (N, D, loss), 5 highest-loss rows dropped."""
    if not SHARED_CSV.exists():
        pytest.skip(f"Epoch AI's digitised Chinchilla data not found at {SHARED_CSV} (../shared/ is absent)")
    from pytest_scaling.fitting.points import drop_highest, read_columns

    cols = drop_highest(read_columns(SHARED_CSV, ["Model Size", "Training FLOP", "loss"]), "loss", 5)
    N = cols["Model Size"]
    return N, cols["Training FLOP"] / (6 * N), cols["loss"]


@pytest.fixture(scope="session")
def chinchilla_fit(chinchilla_points):
    from pytest_scaling.fitting.fit import fit_chinchilla

    N, D, L = chinchilla_points
    return fit_chinchilla(N, D, L)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
