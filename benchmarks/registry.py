"""Dataset registry: file names, frequencies, channel counts and the standard split borders.

The split borders follow Time-Series-Library's ``data_provider/data_loader.py`` (identical in the
PatchTST and iTransformer repositories), so that numbers compare with the literature:

- ETTh1/ETTh2 (``Dataset_ETT_hour``): train ``[0, 8640)``, val ``[8640 - L, 11520)``,
  test ``[11520 - L, 14400)``; rows from 14400 on are never used.
- ETTm1/ETTm2 (``Dataset_ETT_minute``): the same borders times 4.
- everything else (``Dataset_Custom``): ``num_train = int(0.7 N)``, ``num_test = int(0.2 N)``,
  val and test start ``L`` rows earlier than the previous split ends.

Slices are half-open ``[start, end)`` row ranges; ``L`` is the lookback (``seq_len``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "DARTS_TIMESCLIP_DATA"
"""Environment variable naming the directory that holds the benchmark CSV files."""

SplitKind = Literal["ett_hour", "ett_minute", "custom"]

_ETT_HOUR_BORDERS = (12 * 30 * 24, 12 * 30 * 24 + 4 * 30 * 24, 12 * 30 * 24 + 8 * 30 * 24)
_LONG_HORIZONS = (96, 192, 336, 720)
_ILI_HORIZONS = (24, 36, 48, 60)

_AUTOFORMER_HINT = (
    "It is part of the Autoformer / Time-Series-Library dataset bundle "
    "(https://github.com/thuml/Time-Series-Library, README 'Get Started'; Autoformer's "
    "'all_six_datasets'). Darts' `{darts_class}` loads a differently formatted file that does not "
    "follow these splits, so it cannot stand in."
)
_ETT_HINT = (
    "Darts downloads the identical file with `from darts.datasets import {darts_class}; "
    "{darts_class}().load()` into ~/.darts/datasets/ (searched automatically), or take "
    "ETT-small/{file} from https://github.com/zhouhaoyi/ETDataset."
)


@dataclass(frozen=True)
class SplitBorders:
    """Half-open row ranges ``[start, end)`` of the train, validation and test splits.

    The validation and test ranges include the ``lookback`` rows that precede their first target.
    """

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    @property
    def used_rows(self) -> int:
        """Number of leading rows the protocol uses (rows after the test end are ignored)."""
        return self.test[1]

    def n_windows(self, split: Literal["train", "val", "test"], lookback: int, horizon: int) -> int:
        """Number of stride-1 windows in a split: ``len(split) - lookback - horizon + 1``.

        This is Time-Series-Library's ``Dataset.__len__``.
        """
        start, end = getattr(self, split)
        return end - start - lookback - horizon + 1


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark dataset.

    Parameters
    ----------
    name
        Registry name, as used on the command line and in the results tables.
    file_name
        CSV file name; ``<file_name>.gz`` is accepted as well.
    freq
        Sampling frequency (pandas alias), for information.
    n_variates
        Number of variates (columns other than ``date``).
    n_rows
        Number of rows of the standard file.
    split_kind
        Which Time-Series-Library dataset class defines the borders.
    horizons
        The literature's forecast horizons for this dataset.
    obtain_hint
        How to get the file when it is missing.
    """

    name: str
    file_name: str
    freq: str
    n_variates: int
    n_rows: int
    split_kind: SplitKind
    horizons: tuple[int, ...]
    obtain_hint: str

    def split_borders(self, lookback: int, n_rows: int | None = None) -> SplitBorders:
        """Train / validation / test borders for a lookback ``L``.

        Parameters
        ----------
        lookback
            Input window length ``L``; validation and test start ``L`` rows before their first target.
        n_rows
            Rows in the file at hand. Default: the registry's ``n_rows``. Only the ``custom`` split
            depends on it; the ETT borders are fixed and need at least as many rows as they use.

        Returns
        -------
        SplitBorders
            The three half-open row ranges.
        """
        if lookback < 1:
            raise ValueError(f"`lookback` must be a positive integer, got `{lookback}`.")
        n = self.n_rows if n_rows is None else n_rows
        if self.split_kind == "custom":
            num_train = int(n * 0.7)
            num_test = int(n * 0.2)
            num_vali = n - num_train - num_test
            b1 = (0, num_train - lookback, n - num_test - lookback)
            b2 = (num_train, num_train + num_vali, n)
        else:
            factor = 1 if self.split_kind == "ett_hour" else 4
            ends = tuple(factor * b for b in _ETT_HOUR_BORDERS)
            b1 = (0, ends[0] - lookback, ends[1] - lookback)
            b2 = ends
            if n < b2[2]:
                raise ValueError(
                    f"Dataset `{self.name}` needs at least {b2[2]} rows for its fixed ETT borders, got `n_rows={n}`."
                )
        if b1[1] < 0 or b1[2] < 0:
            raise ValueError(
                f"`lookback={lookback}` is longer than the training split of `{self.name}` ({b2[0]} rows)."
            )
        return SplitBorders(train=(b1[0], b2[0]), val=(b1[1], b2[1]), test=(b1[2], b2[2]))


def _ett(name: str, freq: str, split_kind: SplitKind, n_rows: int) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        file_name=f"{name}.csv",
        freq=freq,
        n_variates=7,
        n_rows=n_rows,
        split_kind=split_kind,
        horizons=_LONG_HORIZONS,
        obtain_hint=_ETT_HINT.format(darts_class=f"{name}Dataset", file=f"{name}.csv"),
    )


def _custom(
    name: str, freq: str, n_variates: int, n_rows: int, darts_class: str, horizons: tuple[int, ...]
) -> DatasetSpec:
    return DatasetSpec(
        name=name,
        file_name=f"{name}.csv",
        freq=freq,
        n_variates=n_variates,
        n_rows=n_rows,
        split_kind="custom",
        horizons=horizons,
        obtain_hint=_AUTOFORMER_HINT.format(darts_class=darts_class),
    )


REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        _ett("ETTh1", "h", "ett_hour", 17420),
        _ett("ETTh2", "h", "ett_hour", 17420),
        _ett("ETTm1", "15min", "ett_minute", 69680),
        _ett("ETTm2", "15min", "ett_minute", 69680),
        _custom("weather", "10min", 21, 52696, "WeatherDataset", _LONG_HORIZONS),
        _custom("exchange_rate", "D", 8, 7588, "ExchangeRateDataset", _LONG_HORIZONS),
        _custom("national_illness", "W", 7, 966, "ILINetDataset", _ILI_HORIZONS),
        _custom("electricity", "h", 321, 26304, "ElectricityDataset", _LONG_HORIZONS),
        _custom("traffic", "h", 862, 17544, "TrafficDataset", _LONG_HORIZONS),
    )
}
"""Every dataset the suite knows, by registry name."""


def get_spec(name: str) -> DatasetSpec:
    """Look a dataset up by registry name (case-insensitive).

    Raises
    ------
    ValueError
        If the name is not in the registry.
    """
    by_lower = {key.lower(): spec for key, spec in REGISTRY.items()}
    spec = by_lower.get(name.lower())
    if spec is None:
        raise ValueError(f"Unknown dataset `{name}`; choose from {sorted(REGISTRY)}.")
    return spec


def _darts_cache_dir() -> Path:
    return Path.home() / ".darts" / "datasets"


def default_project_data_dir() -> Path:
    """The project's shared data directory, ``../shared/data`` next to the repository root."""
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def candidate_dirs(data_dir: str | os.PathLike[str] | None, spec: DatasetSpec) -> list[Path]:
    """Directories searched for a dataset file, in order.

    ``data_dir`` when given; otherwise ``$DARTS_TIMESCLIP_DATA`` when set; otherwise the project's
    ``../shared/data``. Darts' own cache (``~/.darts/datasets``) comes last for the ETT files, whose
    Darts copies are byte-identical to the standard ones.
    """
    if data_dir is not None:
        dirs = [Path(data_dir)]
    elif os.environ.get(DATA_DIR_ENV):
        dirs = [Path(os.environ[DATA_DIR_ENV])]
    else:
        dirs = [default_project_data_dir()]
    if spec.split_kind != "custom":
        dirs.append(_darts_cache_dir())
    return dirs


def find_file(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of a dataset's ``.csv`` or ``.csv.gz`` file.

    Raises
    ------
    FileNotFoundError
        Naming every path looked at and how to obtain the file.
    """
    looked: list[Path] = []
    for directory in candidate_dirs(data_dir, spec):
        for file_name in (spec.file_name, spec.file_name + ".gz"):
            path = directory / file_name
            looked.append(path)
            if path.is_file():
                return path
    tried = ", ".join(str(p) for p in looked)
    raise FileNotFoundError(
        f"Dataset `{spec.name}` not found; looked for {tried}. Pass `--data-dir` or set "
        f"${DATA_DIR_ENV} to the directory holding {spec.file_name}[.gz]. {spec.obtain_hint}"
    )


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset's values as read from disk (unscaled).

    ``values`` is ``[T, V]`` float32, with ``columns`` in Time-Series-Library's order ('OT' last).
    """

    spec: DatasetSpec
    path: Path
    columns: tuple[str, ...]
    values: np.ndarray


def read_dataset(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None = None) -> LoadedDataset:
    """Read a dataset file: drop ``date``, put ``OT`` last, cast to float32.

    ``Dataset_Custom`` reorders the columns to ``others + ['OT']``; we mirror it for every dataset
    (the ETT files already end with ``OT``). Metrics over all variates do not depend on the order.
    A file whose shape differs from the registry's is accepted with a warning, so that slices and
    synthetic stand-ins work; the ETT borders still need their fixed number of rows.
    """
    path = find_file(spec, data_dir)
    frame = pd.read_csv(path)
    if "date" in frame.columns:
        frame = frame.drop(columns="date")
    columns = [c for c in frame.columns if c != "OT"] + (["OT"] if "OT" in frame.columns else [])
    frame = frame[columns]
    values = frame.to_numpy(dtype=np.float32)
    if values.shape != (spec.n_rows, spec.n_variates):
        logger.warning(
            "%s: %s has shape %s, the registry expects %s; results will not compare with the published ones.",
            spec.name,
            path,
            values.shape,
            (spec.n_rows, spec.n_variates),
        )
    if not np.isfinite(values).all():
        raise ValueError(f"Dataset `{spec.name}` in {path} contains NaN or infinite values.")
    return LoadedDataset(spec=spec, path=path, columns=tuple(str(c) for c in columns), values=values)


def resolve_names(names: Sequence[str]) -> list[str]:
    """Canonical registry names for user-given names (case-insensitive), order kept."""
    return [get_spec(name).name for name in names]
