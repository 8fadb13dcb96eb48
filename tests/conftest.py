"""Shared fixtures. Nothing here downloads: tests build tiny CLIP configurations locally."""

from __future__ import annotations

import importlib.util
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests must never reach the hub
if os.environ.get("PYTEST_XDIST_WORKER"):
    # a worker per core: the processes a test starts (the docs' examples, searches, the console script) get one
    # thread too, or their thread pools spin against the other worker's
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

import pytest
import torch

from tests._extras import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401 -- the hooks
from tests._helpers import CPU_TRAINER, make_series, signal_benchmark
from tests._isolation import no_leaked_state  # noqa: F401 -- the autouse fixture

if importlib.util.find_spec("lightning") is not None:
    import lightning.pytorch  # noqa: F401 -- its first import sets its logger's level: done here, not in a test

# one torch thread per pytest-xdist worker (a worker per core), else up to two
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def series():
    return make_series()


@pytest.fixture
def quiet_trainer() -> dict:
    """Lightning settings of a quiet CPU test trainer (a fresh dict: tests may add callbacks)."""
    return dict(CPU_TRAINER)


@pytest.fixture(scope="session")
def signal():
    """``(train, held_out, naive_mse)``: the held-out benchmark of ``tests._helpers.signal_benchmark``."""
    return signal_benchmark()


def pytest_terminal_summary(terminalreporter) -> None:
    """Under ``.ci/run``: how long the README's test command took (bootstrap included), above pytest's last line."""
    start = os.environ.get("DARTS_TIMESCLIP_CI_START")
    if start and start.isdigit():
        import time

        seconds = int(time.time()) - int(start)
        load = " ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
        terminalreporter.write_line(
            f"README test command (bootstrap + pytest): {seconds // 60} min {seconds % 60} s on "
            f"{os.cpu_count()} CPU cores; load average {load} at the end"
        )
