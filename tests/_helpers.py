"""Helpers shared by the tests: tiny models, short synthetic series, a record of training losses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytorch_lightning as pl

#: Lightning settings of every test trainer: CPU, no progress bar, no model summary, no logger.
CPU_TRAINER = {
    "accelerator": "cpu",
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "logger": False,
}

#: Monthly international airline passengers, 1949-1960, in thousands (Box & Jenkins, series G; public domain).
#: Darts' own contract tests use it; `darts.datasets` downloads it, which tests must not.
AIR_PASSENGERS = [
    112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118, 115, 126, 141, 135, 125, 149, 170, 170, 158, 133, 114,
    140, 145, 150, 178, 163, 172, 178, 199, 199, 184, 162, 146, 166, 171, 180, 193, 181, 183, 218, 230, 242, 209, 191,
    172, 194, 196, 196, 236, 235, 229, 243, 264, 272, 237, 211, 180, 201, 204, 188, 235, 227, 234, 264, 302, 293, 259,
    229, 203, 229, 242, 233, 267, 269, 270, 315, 364, 347, 312, 274, 237, 278, 284, 277, 317, 313, 318, 374, 413, 405,
    355, 306, 271, 306, 315, 301, 356, 348, 355, 422, 465, 467, 404, 347, 305, 336, 340, 318, 362, 348, 363, 435, 491,
    505, 404, 359, 310, 337, 360, 342, 406, 396, 420, 472, 548, 559, 463, 407, 362, 405, 417, 391, 419, 461, 472, 535,
    622, 606, 508, 461, 390, 432,
]  # fmt: skip


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


def make_signal_series(length: int = 240):
    """A deterministic two-variate series with signal (two seasonalities, a trend, growing amplitude, light noise)."""
    from darts import TimeSeries

    t = np.arange(length)
    values = np.stack(
        [
            np.sin(2 * np.pi * t / 12) + 0.3 * np.sin(2 * np.pi * t / 5) + 0.005 * t,
            np.cos(2 * np.pi * t / 12) * (1 + 0.002 * t),
        ],
        axis=1,
    )
    values += 0.05 * np.random.default_rng(0).standard_normal(values.shape)
    index = pd.date_range("2020-01-01", periods=length, freq="h")
    return TimeSeries.from_times_and_values(index, values.astype(np.float32), columns=["a", "b"])


#: The held-out benchmark on ``make_signal_series``: windows of 24 -> 6 steps; the first 180 of 240 points train,
#: the rest give 30 held-out windows at stride 1.
IN_LEN, OUT_LEN = 24, 6
TRAIN_END = 180


def _location(forecast, likelihood):
    """The location parameter of each target component of a likelihood-parameter forecast."""
    if likelihood is None:
        return forecast.values()
    n_params = likelihood.num_parameters
    from darts.utils.likelihood_models import QuantileRegression

    if isinstance(likelihood, QuantileRegression):
        return forecast.values()[:, n_params // 2 :: n_params]  # the median
    return forecast.values()[:, ::n_params]  # mu


def held_out_mse(forecasts, series, likelihood=None) -> float:
    """Mean over ``forecasts`` of each one's MSE (of its location parameter) against ``series``."""
    return float(
        np.mean([np.mean((_location(f, likelihood) - series.slice_intersect(f).values()) ** 2) for f in forecasts])
    )


def signal_benchmark():
    """``(train, held_out, naive_mse)`` of the held-out benchmark (naive: the last value repeated)."""
    from darts.models import NaiveSeasonal

    series = make_signal_series()
    held_out = series[TRAIN_END - IN_LEN :]
    naive = NaiveSeasonal(K=1).historical_forecasts(
        held_out, start=IN_LEN, forecast_horizon=OUT_LEN, retrain=True, last_points_only=False, verbose=False
    )
    return series[:TRAIN_END], held_out, held_out_mse(naive, series)


def held_out_ratio(model, held_out, naive_mse, likelihood=None, past_covariates=None) -> float:
    """A fitted model's MSE over every held-out window (its median or mean), as a multiple of the naive one's."""
    forecasts = model.historical_forecasts(
        held_out,
        past_covariates=past_covariates,
        start=IN_LEN,
        forecast_horizon=OUT_LEN,
        retrain=False,
        last_points_only=False,
        predict_likelihood_parameters=likelihood is not None,
        verbose=False,
    )
    return held_out_mse(forecasts, make_signal_series(), likelihood) / naive_mse


def air_passengers():
    """AirPassengers as a float32 monthly series."""
    from darts import TimeSeries

    index = pd.date_range("1949-01-01", periods=len(AIR_PASSENGERS), freq="MS")
    return TimeSeries.from_times_and_values(
        index, np.asarray(AIR_PASSENGERS, dtype=np.float32), columns=["#Passengers"]
    )


class LossHistory(pl.Callback):
    """Records ``train_loss`` (the forecast loss) at the end of every training epoch."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.losses.append(float(trainer.callback_metrics["train_loss"]))
