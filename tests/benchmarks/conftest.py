"""Fixtures of the benchmark-suite tests: synthetic datasets written to temporary directories."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.console import (
    LIGHTNING_PACKAGES,
    OWN_LOGGER,
    SHOWN_LIBRARY_LOGGERS,
    THIRD_PARTY_LOGGERS,
    console_handlers,
    ignore_known_warnings,
)
from tests.benchmarks.bench_helpers import write_synthetic_csv


@pytest.fixture
def ili_dir(tmp_path: Path) -> Path:
    """A directory with a synthetic ``national_illness.csv`` of the standard shape (966 x 7)."""
    write_synthetic_csv(tmp_path / "data" / "national_illness.csv", 966, 7, freq="W")
    return tmp_path / "data"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo what ``benchmarks.console.configure_console``, called directly by a test, does to the global logging
    state (a command's ``main()`` restores it itself: ``console_session``).

    The root logger's other handlers belong to pytest (a fresh set per test phase): only the console
    handler is taken off it.
    """
    root = logging.getLogger()
    root_level = root.level
    names = (OWN_LOGGER, *SHOWN_LIBRARY_LOGGERS, *THIRD_PARTY_LOGGERS, *LIGHTNING_PACKAGES)
    saved = {name: (lg.level, list(lg.handlers), lg.propagate) for name in names for lg in [logging.getLogger(name)]}
    yield
    for handler in console_handlers():
        root.removeHandler(handler)
    root.setLevel(root_level)
    for name, (level, handlers, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


@pytest.fixture(autouse=True)
def _known_warnings() -> None:
    """Ignore the known-harmless third-party warnings, as the command line does (pytest restores the filters)."""
    ignore_known_warnings()
