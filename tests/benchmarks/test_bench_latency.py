"""``python -m benchmarks latency``, ``gpu-figures`` and ``load-test`` at tiny settings on a synthetic ETTh1: every
section runs and prints its table."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import torch

from benchmarks.cli import main
from tests._extras import requires
from tests.benchmarks.bench_helpers import write_synthetic_csv

for _module in ("fastapi", "uvicorn", "prometheus_client"):  # both commands start the service
    requires(_module, "serve")


def _other_thread_count() -> tuple[int, int]:
    """The process's torch thread count and another one for a command's ``--threads``."""
    before = torch.get_num_threads()
    return before, 1 if before > 1 else 2


@pytest.fixture
def two_torch_threads() -> Iterator[None]:
    """The process on 2 torch threads: a command run with ``--threads 1`` must leave it on 2."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_latency_command_prints_every_table(tmp_path, capsys, two_torch_threads):
    write_synthetic_csv(tmp_path / "data" / "ETTh1.csv", 14400, 7)
    before, threads = _other_thread_count()
    argv = ["latency", "--data-dir", str(tmp_path / "data"), "--backbone", "tiny", "--train-windows", "32",
            "--batch", "4", "--repeats", "1", "--concurrency", "1", "3", "--requests", "6", "--engines", "darts",
            "torch", "--threads", str(threads), "--backtest-windows", "5"]  # fmt: skip
    assert main(argv) == 0
    assert torch.get_num_threads() == before  # the command ran with --threads; the process keeps its own
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
    before, threads = _other_thread_count()
    argv = ["gpu-figures", "--data-dir", str(tmp_path / "data"), "--device", "cpu", "--backbone", "tiny",
            "--precision", "32-true", "--windows", "16", "--batch-size", "8", "--images", "16", "--batch", "4",
            "--concurrency", "1", "2", "--requests", "4", "--threads", str(threads)]  # fmt: skip
    assert main(argv) == 0
    assert torch.get_num_threads() == before
    out = capsys.readouterr().out
    assert re.search(r"\| 32 \| [\d,]+ \| [\d,]+ \|", out)  # the tiny preset's 32-pixel charts
    assert re.search(r"\| on \| [\d.]+ \| [\d.]+ \|", out) and re.search(r"\| off \| [\d.]+ \| [\d.]+ \|", out)
    assert re.search(r"\| direct predictor, torch engine \|", out)
    assert re.search(r"\| torch \| 2 \| [\d.]+ \| - \|", out) and "All figures in" in out


def test_load_test_answers_every_request_it_sends(tmp_path, capsys):
    write_synthetic_csv(tmp_path / "data" / "ETTh1.csv", 14400, 7)
    before, threads = _other_thread_count()
    written = tmp_path / "load.json"
    argv = ["load-test", "--data-dir", str(tmp_path / "data"), "--backbone", "tiny", "--train-windows", "16",
            "--requests", "8", "--concurrency", "2", "--threads", str(threads), "--json", str(written)]  # fmt: skip
    assert main(argv) == 0
    assert torch.get_num_threads() == before  # the model was fitted with --threads; the process keeps its own
    figures = json.loads(written.read_text())
    assert figures["engine"] == "torch" and figures["clients"] == 2
    assert figures["n"] == 8 and figures["errors"] == 0
    assert figures["served"] == 8  # counted by the service: every request sent went through a forward pass
    assert 0 < figures["min"] <= figures["p50"] <= figures["p90"] <= figures["p99"] <= figures["max"]
    # two clients, one request at a time each: one to two requests per forward pass, at most 2 requests per fastest
    # round trip
    assert 1 <= figures["requests_per_forward_pass"] <= 2
    assert 0 < figures["rps"] <= 2 * 1e3 / figures["min"]
    printed = capsys.readouterr().out
    assert "8 requests, 2 at a time, H = 96, engine torch:" in printed
    assert f"latency p50 {figures['p50']:.0f} ms, p90 {figures['p90']:.0f} ms, p99 {figures['p99']:.0f} ms" in printed
    assert f"errors: 0; {figures['requests_per_forward_pass']:.1f} requests per forward pass" in printed
