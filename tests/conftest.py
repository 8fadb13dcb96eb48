"""Shared fixtures. Nothing here downloads: tests build tiny CLIP configurations locally."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests must never reach the hub

import pytest
import torch

from tests._helpers import CPU_TRAINER, make_series, signal_benchmark

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


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
