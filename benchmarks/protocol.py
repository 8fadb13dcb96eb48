"""The evaluation protocol: train-only scaling, split series, stride-1 test windows, MSE and MAE.

Metrics are computed on the standardised scale (a ``StandardScaler`` fitted on the train split
only), over every test window at stride 1, every forecast step and every variate, as
Time-Series-Library does. Test forecasts come from Darts' ``historical_forecasts(retrain=False)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.registry import LoadedDataset, SplitBorders

if TYPE_CHECKING:
    from darts import TimeSeries
    from darts.models.forecasting.torch_forecasting_model import TorchForecastingModel

SCALER_DESCRIPTION = "StandardScaler fitted on the train split only"
METRIC_SCALE = f"standardised ({SCALER_DESCRIPTION})"
"""How every metric in this suite is scaled; printed in every table."""

_CHUNK_ELEMENTS = 1 << 24  # forecast values held at once while scoring (~64 MB of float32)


@dataclass(frozen=True)
class PreparedData:
    """A dataset scaled and split for one lookback.

    Attributes
    ----------
    dataset
        The raw values as read from disk.
    borders
        Train / validation / test row ranges for ``lookback``.
    lookback
        Input window length ``L``.
    scaled
        ``[T_used, V]`` float32 values on the standardised scale, rows ``[0, borders.test[1])``.
    """

    dataset: LoadedDataset
    borders: SplitBorders
    lookback: int
    scaled: np.ndarray

    def series(self, start: int = 0, end: int | None = None) -> TimeSeries:
        """Darts ``TimeSeries`` of scaled rows ``[start, end)``; the time index is the row number."""
        from darts import TimeSeries

        end = self.scaled.shape[0] if end is None else end
        return TimeSeries.from_times_and_values(
            times=_range_index(start, end),
            values=self.scaled[start:end],
            columns=list(self.dataset.columns),
        )

    def split_series(self, split: str) -> TimeSeries:
        """The scaled ``train``, ``val`` or ``test`` slice as a ``TimeSeries``."""
        start, end = getattr(self.borders, split)
        return self.series(start, end)


def _range_index(start: int, end: int):
    import pandas as pd

    return pd.RangeIndex(start, end)


def prepare(dataset: LoadedDataset, lookback: int) -> PreparedData:
    """Split a dataset for ``lookback`` and standardise it with train-split statistics.

    The scaler is Darts' ``Scaler`` around scikit-learn's ``StandardScaler`` (population standard
    deviation, as Time-Series-Library), fitted on the train rows only and applied to all rows used.
    """
    from darts import TimeSeries
    from darts.dataprocessing.transformers import Scaler
    from sklearn.preprocessing import StandardScaler

    borders = dataset.spec.split_borders(lookback, n_rows=dataset.values.shape[0])
    used = dataset.values[: borders.used_rows]
    series = TimeSeries.from_times_and_values(
        times=_range_index(0, used.shape[0]), values=used, columns=list(dataset.columns)
    )
    scaler = Scaler(StandardScaler())
    scaler.fit(series[borders.train[0] : borders.train[1]])
    scaled = scaler.transform(series).values(copy=False).astype(np.float32, copy=False)
    return PreparedData(
        dataset=dataset,
        borders=borders,
        lookback=lookback,
        scaled=np.ascontiguousarray(scaled),
    )


@dataclass(frozen=True)
class TestScore:
    """Scores over the test windows.

    Attributes
    ----------
    mse, mae
        Mean squared / absolute error over windows, steps and variates (standardised scale).
    n_windows
        Number of stride-1 test windows scored.
    example
        One window's lookback, truth and forecast, ``{"index", "variate", "context", "truth",
        "forecast"}``, for forecast-vs-truth plots.
    extra
        Further metrics by name (e.g. a probabilistic study's ``crps``, ``coverage_90``), recorded beside MSE and
        MAE. Default: none.
    """

    mse: float
    mae: float
    n_windows: int
    example: dict
    extra: dict[str, float] = field(default_factory=dict)


def truth_windows(scaled: np.ndarray, first_target: int, n_windows: int, horizon: int) -> np.ndarray:
    """Read-only view of the true targets of consecutive windows, ``[W, H, V]``.

    Window ``w`` covers rows ``[first_target + w, first_target + w + horizon)``.
    """
    span = scaled[first_target : first_target + n_windows + horizon - 1]
    # sliding_window_view gives [W, V, H]; a transposed view, no copy
    return np.lib.stride_tricks.sliding_window_view(span, horizon, axis=0).transpose(0, 2, 1)


def score_test_windows(
    model: TorchForecastingModel,
    data: PreparedData,
    horizon: int,
    example_index: int = 0,
    dataloader_kwargs: dict | None = None,
    max_windows: int | None = None,
) -> TestScore:
    """Forecast every test window at stride 1 with ``historical_forecasts`` and score it.

    The test range is forecast in chunks (each a ``historical_forecasts(retrain=False)`` call on a
    sub-series) so that memory stays bounded on wide datasets; the chunks together cover exactly
    ``len(test) - L - H + 1`` windows, Time-Series-Library's count.

    Parameters
    ----------
    model
        A fitted Darts model with ``input_chunk_length == data.lookback``.
    data
        The prepared dataset.
    horizon
        Forecast horizon ``H``.
    example_index
        Test window kept in ``TestScore.example`` (its last variate, 'OT').
    dataloader_kwargs
        Passed to the prediction data loader of a torch model (``None`` for other models).
    max_windows
        Score only the first this many test windows (a smoke run; results do not compare with the published ones).
        Default: ``None``, every window.

    Returns
    -------
    TestScore
        MSE and MAE on the standardised scale and the window count.
    """
    if max_windows is not None and max_windows < 1:
        raise ValueError(f"`max_windows` must be a positive integer or None, got `{max_windows}`.")
    n_windows = count_test_windows(data, horizon)
    if max_windows is not None:
        n_windows = min(n_windows, max_windows)
    if not 0 <= example_index < n_windows:
        raise ValueError(f"`example_index` must be in [0, {n_windows}), got `{example_index}`.")
    n_variates = data.scaled.shape[1]
    sq_sum = abs_sum = 0.0
    example: dict = {}
    for chunk in forecast_test_windows(model, data, horizon, n_windows, dataloader_kwargs=dataloader_kwargs):
        pred = chunk.values
        err = pred - chunk.truth
        sq_sum += float(np.square(err).sum())
        abs_sum += float(np.abs(err).sum())
        if chunk.holds(example_index):
            example = example_window(data, example_index, horizon, pred[example_index - chunk.first, :, -1])
    count = n_windows * horizon * n_variates
    return TestScore(mse=sq_sum / count, mae=abs_sum / count, n_windows=n_windows, example=example)


def count_test_windows(data: PreparedData, horizon: int) -> int:
    """The test split's window count at stride 1 for ``horizon``; refuses a split that holds none.

    Raises
    ------
    ValueError
        If ``horizon`` with the data's lookback leaves no test window.
    """
    n_windows = data.borders.n_windows("test", data.lookback, horizon)
    if n_windows < 1:
        test_start, test_end = data.borders.test
        raise ValueError(
            f"`horizon={horizon}` with `lookback={data.lookback}` leaves no test window in "
            f"`{data.dataset.spec.name}` (test split has {test_end - test_start} rows)."
        )
    return n_windows


@dataclass(frozen=True)
class WindowChunk:
    """Forecasts of consecutive test windows ``first, first + 1, ...`` and their true targets.

    Attributes
    ----------
    first
        Index of the chunk's first test window.
    values
        ``[W, H, V * P]`` float64 forecast values (``P`` parameters per variate: 1 for point forecasts; Darts groups
        a likelihood's parameters by component).
    truth
        ``[W, H, V]`` read-only view of the true targets.
    """

    first: int
    values: np.ndarray
    truth: np.ndarray

    def holds(self, index: int) -> bool:
        """Whether test window ``index`` is in this chunk."""
        return self.first <= index < self.first + len(self.values)


def forecast_test_windows(
    model: TorchForecastingModel,
    data: PreparedData,
    horizon: int,
    n_windows: int,
    width: int = 1,
    dataloader_kwargs: dict | None = None,
    predict_likelihood_parameters: bool = False,
) -> Iterator[WindowChunk]:
    """Forecast the first ``n_windows`` test windows at stride 1, in chunks that bound memory.

    Each chunk is one ``historical_forecasts(retrain=False)`` call on the sub-series its windows need (their
    lookbacks and targets); the chunks together cover exactly windows ``0 .. n_windows - 1``.

    Parameters
    ----------
    model
        A fitted Darts model with ``input_chunk_length == data.lookback``.
    data
        The prepared dataset.
    horizon
        Forecast horizon ``H``.
    n_windows
        Windows to forecast (at most the test split's).
    width
        Values held per forecast step and variate (parameters, quantiles or samples): sizes the chunks.
    dataloader_kwargs
        Passed to the prediction data loader of a torch model (``None`` for other models).
    predict_likelihood_parameters
        Forecast the likelihood's parameters instead of a point.

    Raises
    ------
    RuntimeError
        If ``historical_forecasts`` returns another number of windows than asked.
    """
    lookback = data.lookback
    test_start, _ = data.borders.test
    chunk = max(1, _CHUNK_ELEMENTS // (horizon * data.scaled.shape[1] * width))
    truth = truth_windows(data.scaled, test_start + lookback, n_windows, horizon)
    predict_kwargs = {} if dataloader_kwargs is None else {"dataloader_kwargs": dataloader_kwargs}
    likelihood = {"predict_likelihood_parameters": True} if predict_likelihood_parameters else {}
    for w0 in range(0, n_windows, chunk):
        w1 = min(n_windows, w0 + chunk)
        sub = data.series(test_start + w0, test_start + w1 - 1 + lookback + horizon)
        forecasts = model.historical_forecasts(
            series=sub,
            start=lookback,
            start_format="position",
            forecast_horizon=horizon,
            stride=1,
            retrain=False,
            overlap_end=False,
            last_points_only=False,
            verbose=False,
            predict_kwargs=predict_kwargs,
            **likelihood,
        )
        if len(forecasts) != w1 - w0:
            raise RuntimeError(f"historical_forecasts returned {len(forecasts)} windows, expected {w1 - w0}.")
        values = np.stack([f.values(copy=False) for f in forecasts]).astype(np.float64)
        yield WindowChunk(w0, values, truth[w0:w1])


def example_window(data: PreparedData, index: int, horizon: int, forecast: np.ndarray, **extra: np.ndarray) -> dict:
    """Test window ``index`` of the last variate for forecast-vs-truth plots: its lookback, truth and ``forecast``
    (``[H]``), with ``extra`` series of the same length (e.g. interval bounds)."""
    first_target = data.borders.test[0] + data.lookback + index
    return {
        "index": index,
        "variate": data.dataset.columns[-1],
        "context": data.scaled[first_target - data.lookback : first_target, -1].tolist(),
        "truth": data.scaled[first_target : first_target + horizon, -1].tolist(),
        "forecast": np.asarray(forecast).tolist(),
        **{name: np.asarray(values).tolist() for name, values in extra.items()},
    }
