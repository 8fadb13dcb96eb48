"""Checks and conversions of a regressor's inputs: ``X`` (series, one per sample) and ``y`` (targets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from darts import TimeSeries


def as_sample_arrays(X: Any) -> list[np.ndarray]:
    """``X`` -> one float32 array ``[length, n_variates]`` per sample, every value finite.

    Parameters
    ----------
    X
        An array ``[n_samples, length]`` (one univariate series per row, aeon's convention for a collection of
        series) or ``[n_samples, length, n_variates]``; or a sequence of ``TimeSeries``, of arrays
        ``[length, n_variates]`` or of univariate arrays ``[length]`` (lengths may differ between samples).

    Raises
    ------
    TypeError
        For a sparse matrix, or values that are not numbers.
    ValueError
        For any other shape or type, an empty ``X``, complex values, a stochastic series, or a NaN / infinite value
        (naming the sample, variate and step).
    """
    if isinstance(X, TimeSeries):
        raise ValueError("`X` is one TimeSeries; pass a sequence of series, one per sample (e.g. `[series]`).")
    if _is_sparse(X):
        raise TypeError(
            f"`X` is a sparse {type(X).__name__}; TimesCLIPRegressor reads dense series: pass `X.toarray()` "
            "([n_samples, length], one univariate series per row)."
        )
    items: Sequence[Any]
    if isinstance(X, np.ndarray) or (hasattr(X, "__array__") and not isinstance(X, Sequence)):  # arrays, DataFrames
        array = _as_float_array(X, "X")
        if array.ndim == 2:
            items = list(array[:, :, None])  # one univariate series per row
        elif array.ndim == 3:
            items = list(array)
        else:
            hint = " Reshape your data: `X[None, :]` is one univariate series." if array.ndim == 1 else ""
            raise ValueError(
                "`X` as an array must have shape [n_samples, length] (univariate series) or "
                f"[n_samples, length, n_variates], got {list(array.shape)}.{hint}"
            )
    elif isinstance(X, Sequence) and not isinstance(X, (str, bytes)):
        items = X
    else:
        raise ValueError(
            "`X` must be an array [n_samples, length] or [n_samples, length, n_variates], or a sequence of TimeSeries, "
            f"got {type(X).__name__}."
        )
    if len(items) == 0:
        raise ValueError("`X` holds no sample.")
    samples = []
    for i, item in enumerate(items):
        if isinstance(item, TimeSeries):
            if item.n_samples != 1:
                raise ValueError(f"`X[{i}]` is stochastic ({item.n_samples} samples); pass deterministic series.")
            values = np.asarray(item.values(copy=False), dtype=np.float64)
        else:
            values = _as_float_array(item, f"X[{i}]")
            if values.ndim == 1:
                values = values[:, None]  # a univariate series
            if values.ndim != 2:
                raise ValueError(
                    f"`X[{i}]` must be 1-D [length] or 2-D [length, n_variates], got shape {list(values.shape)}."
                )
        _check_finite(values, i)
        samples.append(values.astype(np.float32))
        if not np.isfinite(samples[-1]).all():
            raise ValueError(f"`X[{i}]` has values beyond float32's range (~3.4e38); rescale it.")
    return samples


def _is_sparse(X: Any) -> bool:
    from scipy.sparse import issparse  # scipy comes with scikit-learn

    return bool(issparse(X))


def _as_float_array(values: Any, name: str) -> np.ndarray:
    """``values`` as float64, refusing complex numbers (which a cast to float would silently make real).

    Raises ``ValueError`` for complex values or ragged nesting, ``TypeError`` for values that are not numbers.
    """
    try:
        array = np.asarray(values)
    except ValueError as err:  # ragged nested sequences
        raise ValueError(f"`{name}` must be a regular array of numbers: {err}") from None
    if np.iscomplexobj(array):
        raise ValueError(f"`{name}` holds complex values. Complex data not supported: pass real numbers.")
    try:
        return array.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`{name}` must hold numbers: {err}") from None


def _check_finite(values: np.ndarray, i: int) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        step, variate = np.argwhere(bad)[0]
        raise ValueError(
            f"`X[{i}]` has a missing (NaN) or infinite value ({values[step, variate]}) in variate {variate} at step "
            f"{step} ({int(bad.any(axis=1).sum())} steps affected). Fill or drop missing values first, e.g. with "
            "`darts.dataprocessing.transformers.MissingValuesFiller`."
        )


def check_samples(
    samples: Sequence[np.ndarray], n_variates: int, whose: str, min_length: int, max_length: int | None, limits: str
) -> None:
    """Raise ``ValueError`` naming the first sample whose variate count or length the network cannot take.

    Parameters
    ----------
    samples
        ``[length, n_variates]`` arrays.
    n_variates
        The variate count every sample must have.
    whose
        Where that count comes from, e.g. ``"the encoder was trained on"``.
    min_length, max_length
        Bounds on the length (``None``: no upper bound).
    limits
        The settings behind the bounds, for the messages.
    """
    for i, values in enumerate(samples):
        length, variates = values.shape
        if variates != n_variates:
            raise ValueError(f"`X[{i}]` has {variates} variates, but {whose} {n_variates}.")
        if length < min_length:
            raise ValueError(
                f"`X[{i}]` has {length} time steps; the encoder needs at least {min_length} (one patch, {limits})."
            )
        if max_length is not None and length > max_length:
            raise ValueError(
                f"`X[{i}]` has {length} time steps; the numeric tower encodes at most {max_length} ({limits}): its "
                "patches and summary token must fit the text tower's positions. Shorten or resample the series, "
                "or use a longer `patch_stride` for a fresh encoder."
            )


def as_targets(y: Any, n_samples: int) -> np.ndarray:
    """``y`` -> a float64 array ``[n_samples]`` or ``[n_samples, n_targets]``, every value finite.

    Raises
    ------
    ValueError
        For ``None``, complex values, another shape, a length other than ``n_samples``, or a NaN / infinite value
        (naming the sample).
    TypeError
        For a sparse matrix, or values that are not numbers.
    """
    if y is None:
        raise ValueError("`y` is None: TimesCLIPRegressor requires y to be passed, but the target y is None.")
    if _is_sparse(y):
        raise TypeError(f"`y` is a sparse {type(y).__name__}; pass dense targets (`y.toarray()`).")
    targets = _as_float_array(y, "y")
    if targets.ndim not in (1, 2) or (targets.ndim == 2 and targets.shape[1] == 0):
        raise ValueError(f"`y` must have shape [n_samples] or [n_samples, n_targets], got {list(targets.shape)}.")
    if len(targets) != n_samples:
        raise ValueError(f"`X` has {n_samples} samples but `y` has {len(targets)}; they must match.")
    bad = ~np.isfinite(targets)
    if bad.any():
        where = np.argwhere(bad)[0]
        index = ", ".join(str(k) for k in where)
        raise ValueError(
            f"`y[{index}]` is not finite ({targets[tuple(where)]}): sample {where[0]}'s target is missing or "
            f"infinite ({int(bad.reshape(len(targets), -1).any(axis=1).sum())} samples affected)."
        )
    return targets


def length_groups(samples: Sequence[np.ndarray], indices: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """Sample indices (among ``indices``, default all) grouped by series length, in ascending order of index."""
    indices = np.arange(len(samples)) if indices is None else np.asarray(indices)
    groups: dict[int, list[int]] = {}
    for i in indices:
        groups.setdefault(len(samples[i]), []).append(int(i))
    return {length: np.asarray(sorted(members)) for length, members in sorted(groups.items())}
