"""Fixtures of the benchmark-suite tests: synthetic datasets written to temporary directories."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench_helpers import write_synthetic_csv


@pytest.fixture
def ili_dir(tmp_path: Path) -> Path:
    """A directory with a synthetic ``national_illness.csv`` of the standard shape (966 x 7)."""
    write_synthetic_csv(tmp_path / "data" / "national_illness.csv", 966, 7, freq="W")
    return tmp_path / "data"


@pytest.fixture
def quiet_trainer() -> dict:
    """Lightning settings for quiet CPU tests."""
    return {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False, "logger": False}
