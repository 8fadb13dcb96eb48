"""The pretraining corpus: univariate series from Darts ``TimeSeries``, CSV files and the synthetic generator.

Every variate of every input is one sample series. A variate shorter than the shortest context, or with an
infinite value, is an error. NaN gaps split a variate into its finite stretches; stretches shorter than the
shortest context are skipped and counted (``Corpus.skipped``, recorded in ``pretraining.json``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Corpus:
    """Univariate series to pretrain on.

    Attributes
    ----------
    series
        float32 arrays ``[length]``, all finite.
    names
        One name per series (``"file.csv:column"``, ``"series[2]:component"``, ``"synthetic[7]"``).
    skipped
        What was left out: ``{"nan_values": ..., "short_segments": ...}``.
    sources
        What the corpus was built from, for the record.
    """

    series: list[np.ndarray] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=lambda: {"nan_values": 0, "short_segments": 0})
    sources: list[str] = field(default_factory=list)

    def add(self, values: np.ndarray, name: str, min_length: int) -> None:
        """Add one variate, split at its NaN gaps; raise for infinite values."""
        values = np.asarray(values, dtype=np.float64)
        if len(values) < min_length:
            raise ValueError(
                f"`{name}` has {len(values)} points; pretraining needs at least {min_length} (the shortest context "
                "length): leave it out or pass shorter `context_lengths`."
            )
        if np.isinf(values).any():
            at = int(np.flatnonzero(np.isinf(values))[0])
            raise ValueError(f"`{name}` has an infinite value at position {at}; replace or drop it before pretraining.")
        finite = np.isfinite(values)
        self.skipped["nan_values"] += int((~finite).sum())
        # boundaries of the finite stretches
        edges = np.flatnonzero(np.diff(np.concatenate([[0], finite.astype(np.int8), [0]])))
        for part, (start, stop) in enumerate(zip(edges[::2], edges[1::2])):
            if stop - start < min_length:
                self.skipped["short_segments"] += 1
                continue
            suffix = f"#{part}" if len(edges) > 2 else ""
            self.series.append(values[start:stop].astype(np.float32))
            self.names.append(name + suffix)

    def __len__(self) -> int:
        return len(self.series)

    @property
    def n_points(self) -> int:
        return int(sum(len(s) for s in self.series))

    def fingerprint(self) -> str:
        """A short hash of the corpus' content (a resumed run must see the same corpus)."""
        digest = hashlib.sha256()
        for name, values in zip(self.names, self.series):
            digest.update(name.encode())
            digest.update(values.tobytes())
        return digest.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        lengths = [len(s) for s in self.series]
        return {
            "sources": list(self.sources),
            "n_series": len(self.series),
            "n_points": self.n_points,
            "min_length": min(lengths) if lengths else 0,
            "max_length": max(lengths) if lengths else 0,
            "skipped": dict(self.skipped),
            "fingerprint": self.fingerprint(),
        }


def add_timeseries(corpus: Corpus, series: Any, min_length: int) -> None:
    """Add Darts ``TimeSeries`` (one or a sequence): every component of every series is a sample."""
    from darts import TimeSeries

    many = not isinstance(series, TimeSeries)
    items = list(series) if many else [series]
    for i, ts in enumerate(items):
        if not isinstance(ts, TimeSeries):
            raise ValueError(f"`series[{i}]` is a {type(ts).__name__}, not a darts TimeSeries.")
        values = ts.values(copy=False)  # [T, C] (first sample of a stochastic series)
        for c, component in enumerate(ts.components):
            corpus.add(values[:, c], f"series[{i}]:{component}" if many else f"series:{component}", min_length)
    corpus.sources.append(f"{len(items)} TimeSeries")


def csv_files(paths: Iterable[str | Path]) -> list[Path]:
    """The CSV / CSV.GZ files named by ``paths`` (directories: their files, sorted)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.name.endswith((".csv", ".csv.gz")))
            if not found:
                raise ValueError(f"`{path}` holds no .csv or .csv.gz file.")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"`{path}` is neither a file nor a directory.")
    return files


def add_csv(corpus: Corpus, path: Path, min_length: int) -> None:
    """Add the numeric columns of a CSV file; a ``date``/``time`` column (or one that parses as dates) is dropped."""
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, OSError) as err:
        raise ValueError(f"`{path}` could not be read as CSV: {err}") from err
    columns = []
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            columns.append(column)
        elif _is_time_column(column, values):
            continue
        else:
            raise ValueError(
                f"`{path}` column `{column}` is neither numeric nor a date column (e.g. {values.iloc[0]!r}); "
                "pretraining reads numeric columns only: drop it or pass another file."
            )
    if not columns:
        raise ValueError(f"`{path}` has no numeric column.")
    for column in columns:
        corpus.add(frame[column].to_numpy(dtype=np.float64), f"{path.name}:{column}", min_length)
    corpus.sources.append(str(path))


def _is_time_column(name: str, values: Any) -> bool:
    import pandas as pd

    if str(name).lower() in {"date", "time", "datetime", "timestamp", "ds"}:
        return True
    try:
        pd.to_datetime(values.head(20), format="mixed")
    except (ValueError, TypeError):
        return False
    return True


def build_corpus(
    series: Any = None,
    csv_paths: Sequence[str | Path] = (),
    n_synthetic: int = 0,
    min_length: int = 48,
    synthetic_length: int = 1024,
    seed: int = 0,
) -> Corpus:
    """Gather a corpus from ``TimeSeries``, CSV files and the synthetic generator.

    Raises
    ------
    ValueError
        Where nothing usable is left: no input, or every series shorter than ``min_length``.
    """
    from darts_timesclip.pretraining.synthetic import synthetic_series

    corpus = Corpus()
    if series is not None:
        add_timeseries(corpus, series, min_length)
    for path in csv_files(csv_paths):
        add_csv(corpus, path, min_length)
    if n_synthetic:
        for i, values in enumerate(synthetic_series(n_synthetic, synthetic_length, seed=seed)):
            corpus.add(values, f"synthetic[{i}]", min_length)
        corpus.sources.append(f"{n_synthetic} synthetic series of {synthetic_length} points (seed {seed})")
    if not corpus.sources:
        raise ValueError("No series to pretrain on: pass `series`, CSV files (`--data`) or `--synthetic N`.")
    if not corpus.series:
        raise ValueError(
            f"No series of at least {min_length} finite points (the shortest context length) in "
            f"{', '.join(corpus.sources)}; {corpus.skipped['short_segments']} shorter stretch(es) skipped."
        )
    return corpus
