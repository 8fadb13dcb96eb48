"""Helpers of the benchmark-suite tests (a module name of its own: `conftest` is taken by tests/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


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


def tiny_nlinear(input_chunk_length: int, output_chunk_length: int, random_state: int, pl_trainer_kwargs: dict):
    """A model factory of one's own (``run --model``): NLinear, 3 epochs."""
    from darts.models import NLinearModel

    return NLinearModel(
        input_chunk_length,
        output_chunk_length,
        n_epochs=3,
        random_state=random_state,
        pl_trainer_kwargs=pl_trainer_kwargs,
    )


def factory_of_another_lookback(output_chunk_length: int, pl_trainer_kwargs: dict):
    """A factory that ignores the lookback it is given."""
    from darts.models import NLinearModel

    return NLinearModel(12, output_chunk_length, pl_trainer_kwargs=pl_trainer_kwargs)


def factory_without_trainer_arguments(input_chunk_length: int, output_chunk_length: int):
    """A factory that drops the protocol's trainer arguments."""
    from darts.models import NLinearModel

    return NLinearModel(input_chunk_length, output_chunk_length)


def factory_of_a_local_model():
    """A factory of a model that cannot forecast windows it was not fitted on."""
    from darts.models import NaiveSeasonal

    return NaiveSeasonal()


def linear_regression(input_chunk_length: int, output_chunk_length: int, random_state: int):
    """A model of one's own without Lightning (scikit-learn's linear regression on the last ``L`` values)."""
    from darts.models import LinearRegressionModel

    return LinearRegressionModel(
        lags=input_chunk_length, output_chunk_length=output_chunk_length, random_state=random_state
    )
