"""Atomic file writes: a temporary file in the target's folder, flushed to disk, then ``os.replace``.

A reader (or a crash) sees the old file or the new one, never a half-written one. Used for everything this
package and its benchmarks write that a user keeps: saved models and regressors, pretraining checkpoints and
records, result files and figures.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_NEW_FILE_MODE = 0o666 & ~_umask()


def fsync_file(path: str | os.PathLike[str]) -> None:
    """Flush a written file's data to disk (a no-op where the platform cannot open a file read-write)."""
    try:
        with open(path, "rb+") as handle:
            os.fsync(handle.fileno())
    except OSError:  # pragma: no cover - e.g. a file system without fsync
        pass


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends normally, move it onto ``path``.

    Write the file at the yielded path in any way (``torch.save``, ``pickle.dump``, ``fig.savefig``); it is flushed
    and renamed onto ``path`` in one ``os.replace``. If the block raises, ``path`` is left as it was and the temporary
    file is removed. The new file gets the mode of the file it replaces, or the usual mode of a new file.

    Examples
    --------
    >>> with atomic_path("results.csv") as tmp:  # doctest: +SKIP
    ...     frame.to_csv(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else _NEW_FILE_MODE)
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone already after a successful replace


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_figure_atomic(figure: Any, path: str | os.PathLike[str], **savefig_kwargs: Any) -> Path:
    """``figure.savefig(path, ...)`` atomically; the format comes from ``path``'s suffix (default PNG)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=path.suffix.lstrip(".") or "png", **savefig_kwargs)
    return path
