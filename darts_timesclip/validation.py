"""Checks of user series that Darts itself does not make (NaN / inf values, lengths, component counts)."""

from __future__ import annotations

from collections.abc import Sequence

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
