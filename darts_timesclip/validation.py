"""Checks of user series that Darts itself does not make (NaN / inf values, lengths, component counts)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from darts import TimeSeries


def as_series_list(series: TimeSeries | Sequence[TimeSeries] | None) -> list[TimeSeries]:
    if series is None:
        return []
    return [series] if isinstance(series, TimeSeries) else list(series)


def check_finite(series: TimeSeries | Sequence[TimeSeries] | None, name: str) -> None:
    """Raise ``ValueError`` naming the series, component and first time of any NaN or infinite value.

    Parameters
    ----------
    series
        One or several series (``None`` passes).
    name
        The argument's name, e.g. ``"series"`` or ``"past_covariates"``.
    """
    many = not isinstance(series, TimeSeries)
    for i, ts in enumerate(as_series_list(series)):
        values = ts.all_values(copy=False)  # [T, C, S]
        bad = ~np.isfinite(values)
        if not bad.any():
            continue
        t_idx, c_idx, _ = np.argwhere(bad)[0]
        which = f"`{name}[{i}]`" if many else f"`{name}`"
        value = values[t_idx, c_idx, 0]
        raise ValueError(
            f"{which} has a non-finite value ({value}) in component `{ts.components[c_idx]}` at time "
            f"`{ts.time_index[t_idx]}` ({int(bad.any(axis=(1, 2)).sum())} time steps affected). Fill or drop "
            "missing values first, e.g. with `darts.dataprocessing.transformers.MissingValuesFiller`."
        )


def check_min_length(series: TimeSeries | Sequence[TimeSeries] | None, name: str, min_length: int, why: str) -> None:
    """Raise ``ValueError`` naming the first series shorter than ``min_length``."""
    many = not isinstance(series, TimeSeries)
    for i, ts in enumerate(as_series_list(series)):
        if len(ts) < min_length:
            which = f"`{name}[{i}]`" if many else f"`{name}`"
            raise ValueError(f"{which} has {len(ts)} time steps; {why} needs at least {min_length}.")


def check_components(series: TimeSeries | Sequence[TimeSeries] | None, name: str, expected: int | None) -> None:
    """Raise ``ValueError`` where a series' component count differs from the one the model was trained on."""
    if expected is None:
        return
    many = not isinstance(series, TimeSeries)
    for i, ts in enumerate(as_series_list(series)):
        if ts.n_components != expected:
            which = f"`{name}[{i}]`" if many else f"`{name}`"
            raise ValueError(f"{which} has {ts.n_components} components, but the model was trained on {expected}.")


#: Sample fields whose values reach the network (inference samples have no ``future_target``).
_SAMPLE_FIELDS = ("past_target", "past_covariates", "future_past_covariates", "future_target")


def _check_dataset(dataset: Any, name: str, expected: tuple[int | None, int | None], fields: Sequence[str]) -> None:
    """NaN / inf and component counts of a Darts torch dataset, through its series where it exposes them.

    Darts' own datasets keep the series they slice (``.series``, ``.past_covariates``): those are checked whole,
    and errors name the series, component and time. Any other dataset is checked sample by sample.
    """
    if dataset is None:
        return
    n_target, n_cov = expected
    if isinstance(getattr(dataset, "series", None), Sequence):
        check_finite(dataset.series, f"{name}.series")
        check_components(dataset.series, f"{name}.series", n_target)
        covariates = getattr(dataset, "past_covariates", None)
        if covariates is not None:
            check_finite(covariates, f"{name}.past_covariates")
            check_components(covariates, f"{name}.past_covariates", n_cov)
        return
    for i in range(len(dataset)):
        sample = dataset[i]
        for field in fields:
            values = getattr(sample, field, None)
            if values is None:
                continue
            values = np.asarray(values)
            if not np.isfinite(values).all():
                raise ValueError(
                    f"`{name}[{i}]` has a non-finite value in `{field}`; fill or drop missing values in the series "
                    "the dataset is built from."
                )
        for field, count in (("past_target", n_target), ("past_covariates", n_cov)):
            values = getattr(sample, field, None)
            if count is not None and values is not None and np.shape(values)[-1] != count:
                raise ValueError(
                    f"`{name}[{i}]` has {np.shape(values)[-1]} components in `{field}`, but the model was trained "
                    f"on {count}."
                )


def check_training_dataset(dataset: Any, name: str, expected: tuple[int | None, int | None]) -> None:
    """Checks of a ``TorchTrainingDataset`` (see :func:`_check_dataset`); ``expected``: trained component counts."""
    _check_dataset(dataset, name, expected, _SAMPLE_FIELDS)


def check_inference_dataset(
    dataset: Any, name: str, expected: tuple[int | None, int | None], input_chunk_length: int
) -> None:
    """Checks of a ``TorchInferenceDataset``: NaN / inf, component counts, and series long enough for a window."""
    _check_dataset(dataset, name, expected, _SAMPLE_FIELDS[:3])
    series = getattr(dataset, "series", None)
    if isinstance(series, Sequence):
        check_min_length(series, f"{name}.series", input_chunk_length, "the input window")
