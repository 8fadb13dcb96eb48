"""Fixtures of the benchmark-suite tests: synthetic datasets written to temporary directories."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # `benchmarks` is run from the repository root, not installed
    sys.path.insert(0, str(_ROOT))


def write_synthetic_csv(path: Path, n_rows: int, n_variates: int, seed: int = 0, freq: str = "h") -> pd.DataFrame:
    """Write a ``date`` + variates CSV with ``OT`` in the middle (the loader must move it last).

    Each variate is a noisy sine with its own level, so a forecaster has something to learn.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)[:, None]
    values = (np.sin(2 * np.pi * t / 24 + np.arange(n_variates)) + 0.1 * rng.standard_normal((n_rows, n_variates))) * (
        1 + np.arange(n_variates)
    ) + 10 * np.arange(n_variates)
    names = [f"v{i}" for i in range(n_variates - 1)]
    names.insert(len(names) // 2, "OT")
    frame = pd.DataFrame(values.astype(np.float32), columns=names)
    frame.insert(0, "date", pd.date_range("2020-01-01", periods=n_rows, freq=freq).astype(str))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return frame


@pytest.fixture
def ili_dir(tmp_path: Path) -> Path:
    """A directory with a synthetic ``national_illness.csv`` of the standard shape (966 x 7)."""
    write_synthetic_csv(tmp_path / "data" / "national_illness.csv", 966, 7, freq="W")
    return tmp_path / "data"


@pytest.fixture
def quiet_trainer() -> dict:
    """Lightning settings for quiet CPU tests."""
    return {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False, "logger": False}
