"""Helpers shared by the tests: quiet CPU trainers, tiny models, short synthetic series."""

from __future__ import annotations

import numpy as np
import pandas as pd

CPU_TRAINER = {
    "accelerator": "cpu",
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
}


def model_kwargs(**overrides):
    """Keyword arguments of a tiny, fast, reproducible TimesCLIPModel."""
    kwargs = dict(
        input_chunk_length=24,
        output_chunk_length=6,
        backbone="tiny",
        patch_length=8,
        patch_stride=4,
        n_epochs=1,
        batch_size=16,
        random_state=0,
        pl_trainer_kwargs=dict(CPU_TRAINER),
    )
    kwargs.update(overrides)
    return kwargs


def make_series(length: int = 90, n_components: int = 2, seed: int = 0, freq: str = "h", start: str = "2024-01-01"):
    """A float32 multivariate series: seasonal components with noise."""
    from darts import TimeSeries

    rng = np.random.default_rng(seed)
    t = np.arange(length)[:, None]
    periods = np.arange(1, n_components + 1)[None, :] * 6.0
    values = np.sin(2 * np.pi * t / periods) + 0.1 * rng.standard_normal((length, n_components))
    index = pd.date_range(start, periods=length, freq=freq)
    return TimeSeries.from_times_and_values(
        index, values.astype(np.float32), columns=[f"c{i}" for i in range(n_components)]
    )
