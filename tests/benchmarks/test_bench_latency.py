"""``python -m benchmarks latency`` at tiny settings on a synthetic ETTh1: every section runs and prints its table."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import torch

from benchmarks.cli import main
from tests._extras import requires
from tests.benchmarks.bench_helpers import write_synthetic_csv

for _module in ("fastapi", "uvicorn", "prometheus_client"):  # both commands start the service
    requires(_module, "serve")


@pytest.fixture
def two_torch_threads() -> Iterator[None]:
    """The process on 2 torch threads: a command run with ``--threads 1`` must leave it on 2."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_latency_command_prints_every_table(tmp_path, capsys, two_torch_threads):
    write_synthetic_csv(tmp_path / "data" / "ETTh1.csv", 14400, 7)
    argv = ["latency", "--data-dir", str(tmp_path / "data"), "--backbone", "tiny", "--train-windows", "32",
            "--batch", "4", "--repeats", "1", "--concurrency", "1", "3", "--requests", "6", "--engines", "darts",
            "torch", "--threads", "1", "--backtest-windows", "5"]  # fmt: skip
    assert main(argv) == 0
    assert torch.get_num_threads() == 2  # the process's count restored
    out = capsys.readouterr().out
    assert "| network forward (batch 1) |" in out and "| total |" in out
    assert re.search(r"\| direct predictor, torch engine \| [\d.]+ \| [\d.]+ \| [\d.]+x \|", out)
    for engine in ("darts", "torch"):
        for clients in (1, 3):
            assert re.search(
                rf"\| {engine} \| {clients} \| [\d.]+ \| [\d.]+x \| \d+ \| \d+ \| \d+ \| [\d.]+ \| 0 \|", out
            ), out
    assert re.search(r"\| torch \| 3 \| .* \| [\d.]+ \|\n", out)  # requests per forward pass, from /metrics
    assert "Backtest: 5 windows" in out and "| Darts `historical_forecasts(retrain=False)` |" in out


def test_gpu_figures_command_runs_on_a_cpu_at_tiny_settings(tmp_path, capsys, two_torch_threads):
    write_synthetic_csv(tmp_path / "data" / "ETTh1.csv", 14400, 7)
    argv = ["gpu-figures", "--data-dir", str(tmp_path / "data"), "--device", "cpu", "--backbone", "tiny",
            "--precision", "32-true", "--windows", "16", "--batch-size", "8", "--images", "16", "--batch", "4",
            "--concurrency", "1", "2", "--requests", "4", "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    assert torch.get_num_threads() == 2  # the process's count restored
    out = capsys.readouterr().out
    assert re.search(r"\| 32 \| [\d,]+ \| [\d,]+ \|", out)  # the tiny preset's 32-pixel charts
    assert re.search(r"\| on \| [\d.]+ \| [\d.]+ \|", out) and re.search(r"\| off \| [\d.]+ \| [\d.]+ \|", out)
    assert re.search(r"\| direct predictor, torch engine \|", out)
    assert re.search(r"\| torch \| 2 \| [\d.]+ \| - \|", out) and "All figures in" in out
