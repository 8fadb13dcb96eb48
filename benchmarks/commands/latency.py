"""``python -m benchmarks latency``: what a forecast costs, from Darts' ``predict`` to the batching service.

Fits the ``compact`` TimesCLIP (random weights) briefly on ETTh1's train split (L = H = 96; or loads MODEL_PATH) and
prints, measured side by side in one run on this machine (Markdown tables):

1. one Darts ``predict`` call for one window, broken down into the network's forward and the rest (dataset, data
   loader, Lightning trainer, forecast series);
2. per window: the network's own forward, the direct predictor (``model.predictor()``, torch and ONNX Runtime
   engines) and Darts' ``predict``, at batch 1 and at ``--batch`` windows per call;
3. the forecasting service (``darts-timesclip serve`` in a process of its own, on 127.0.0.1) at each
   ``--concurrency``: one Darts ``predict`` per request under a lock (``--engine darts``, the service before
   micro-batching) and the batching engines; requests per second, p50 / p90 / p99 latency, errors, requests per
   forward pass;
4. backtests over ETTh1's test split (every window at stride 1): ``historical_forecasts(retrain=False)`` against
   the direct predictor over the same windows, beside the network's batched throughput.

Exit status 1 if a service request failed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import machine_line
from benchmarks.study import Command

LOOKBACK = HORIZON = 96


@dataclass
class Setting:
    """What the run measures (the command line, parsed)."""

    data_dir: Path | None
    model_path: Path | None
    backbone: str
    train_windows: int
    device: str
    autocast: str | None
    batch: int
    repeats: int
    concurrency: tuple[int, ...]
    requests: int
    engines: tuple[str, ...]
    max_batch: int
    batch_wait_ms: float
    threads: int
    backtest_windows: int | None


# ------------------------------------------------------------------------------------------------ data and model
def load_data(data_dir: Path | None) -> tuple[Any, Any, str]:
    """ETTh1 scaled as the suite scales it: ``(train, test, source)``; the test series starts L before the split."""
    from benchmarks.protocol import prepare
    from benchmarks.registry import get_spec, read_dataset

    data = prepare(read_dataset(get_spec("ETTh1"), data_dir), lookback=LOOKBACK)
    return data.split_series("train"), data.split_series("test"), "ETTh1 (standardised on its train split)"


def fit_model(train: Any, backbone: str, windows: int, path: Path, accelerator: str = "cpu") -> None:
    """The suite's ``compact`` TimesCLIP (random weights), one epoch over the last ``windows`` train windows."""
    from darts_timesclip import TimesCLIPModel

    model = TimesCLIPModel(
        LOOKBACK,
        HORIZON,
        backbone=backbone,
        pretrained=False,
        n_epochs=1,
        batch_size=64,
        random_state=2021,
        pl_trainer_kwargs={"accelerator": accelerator, "enable_progress_bar": False, "logger": False},
    )
    model.fit(train, max_samples_per_ts=windows)
    model.save(str(path))


def test_windows(test: Any, count: int | None) -> tuple[np.ndarray, list[Any]]:
    """Every input window of the test split (stride 1; the last ``count`` where given) and its history series."""
    values = test.values().astype(np.float32)
    ends = np.arange(LOOKBACK, len(test) - HORIZON + 1)  # windows whose H-step future lies in the split
    if count:
        ends = ends[-count:]
    windows = np.stack([values[end - LOOKBACK : end] for end in ends])
    return windows, [test[int(end) - LOOKBACK : int(end)] for end in ends]


# ------------------------------------------------------------------------------------------------ timing helpers
def median_seconds(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def network_forward(model: Any, device: str, autocast: Any) -> Any:
    """The fitted network's forward alone: ``[B, L, V]`` -> raw output, in evaluation mode, no trainer."""
    import torch
    from darts.utils.data.torch_datasets.utils import ModuleStage, PLModuleInput

    module = model.model.to(device).eval()

    def forward(x: Any) -> None:
        with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=autocast or torch.bfloat16,
                                                    enabled=autocast is not None):  # fmt: skip
            module(PLModuleInput(past_target=x, stage=ModuleStage.PREDICT))
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    return forward


# ------------------------------------------------------------------------------------------------ sections
def predict_breakdown(model: Any, predictors: dict[str, Any], windows: np.ndarray, histories: list[Any],
                      setting: Setting) -> tuple[list[tuple], dict[str, float]]:  # fmt: skip
    """Sections 1 and 2: rows ``(path, batch, ms per window)`` and the figures they come from."""
    import torch

    device, repeats, batch = setting.device, setting.repeats, setting.batch
    forward = network_forward(model, device, _autocast(setting.autocast))
    one, many = torch.from_numpy(windows[:1]).to(device), torch.from_numpy(windows[:batch]).to(device)
    figures = {
        "network_1": median_seconds(lambda: forward(one), repeats),
        "network_b": median_seconds(lambda: forward(many), repeats) / batch,
    }
    for name, predictor in predictors.items():
        figures[f"{name}_1"] = median_seconds(lambda p=predictor: p.predict(HORIZON, windows[:1]), repeats)
        figures[f"{name}_b"] = median_seconds(lambda p=predictor: p.predict(HORIZON, windows[:batch]), repeats) / batch
    trainer = None
    if device.startswith("cuda"):  # Darts' path on the same device
        import pytorch_lightning as pl

        trainer = pl.Trainer(accelerator="gpu", devices=1, logger=False, enable_progress_bar=False,
                             enable_model_summary=False)  # fmt: skip
    else:
        model.model.to("cpu")
    figures["darts_1"] = median_seconds(
        lambda: model.predict(HORIZON, histories[0], trainer=trainer, verbose=False), repeats
    )
    figures["darts_b"] = median_seconds(
        lambda: model.predict(HORIZON, histories[:batch], trainer=trainer, batch_size=batch, verbose=False),
        max(1, repeats // 2),
    ) / min(batch, len(histories))
    rows = [
        ("network forward (eval, no trainer)", figures["network_1"], figures["network_b"]),
        *[(f"direct predictor, {name} engine", figures[f"{name}_1"], figures[f"{name}_b"]) for name in predictors],
        ("Darts `model.predict`", figures["darts_1"], figures["darts_b"]),
    ]
    return rows, figures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """``python -m darts_timesclip.serve MODEL --engine ...`` in a process of its own, on a free port."""

    def __init__(self, model_path: Path, engine: str, setting: Setting) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "darts_timesclip.serve", str(model_path), "--port", str(self.port),
                   "--engine", engine, "--threads", str(setting.threads), "--max-batch", str(setting.max_batch),
                   "--batch-wait-ms", str(setting.batch_wait_ms), "--max-n", str(HORIZON),
                   "--log-level", "warning"]  # fmt: skip
        if setting.device != "cpu" and engine == "torch":
            command += ["--device", setting.device]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 900  # an ONNX export first, on a busy machine
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the `{engine}` service did not start: {self.process.stderr.read()[-2000:]}")
            time.sleep(0.5)

    def metric(self, name: str) -> float | None:
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=30) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and not sample.labels:
                    return sample.value
        return None

    def batches(self) -> tuple[float | None, float | None]:
        """Forward passes so far and the requests they answered (``None`` for the ``darts`` engine)."""
        return self.metric("darts_timesclip_batch_size_count"), self.metric("darts_timesclip_batch_size_sum")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def load(port: int, bodies: list[bytes], clients: int) -> dict[str, float]:
    """``clients`` threads, each on its own keep-alive connection, send ``bodies`` between them; the figures.

    They are requests per second (``rps``), latency percentiles ``p50``, ``p90``, ``p99`` and the extremes ``min``
    and ``max`` (ms), ``errors`` (requests not answered with 200) and ``n`` (requests sent).
    """
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    position = [0]

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            with lock:
                if position[0] >= len(bodies):
                    break
                body = bodies[position[0]]
                position[0] += 1
            start = time.perf_counter()
            try:
                connection.request("POST", "/forecast", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                failed = response.status != 200
            except (OSError, http.client.HTTPException):
                failed = True
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            seconds = time.perf_counter() - start
            with lock:
                latencies.append(seconds)
                errors[0] += failed
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    milliseconds = np.array(latencies) * 1e3
    p50, p90, p99 = np.percentile(milliseconds, [50, 90, 99])
    return {"rps": len(bodies) / wall, "p50": p50, "p90": p90, "p99": p99, "errors": errors[0], "n": len(bodies),
            "min": float(milliseconds.min()), "max": float(milliseconds.max())}  # fmt: skip


def service_rows(model_path: Path, windows: np.ndarray, setting: Setting) -> list[tuple]:
    """Section 3: ``(engine, clients, figures, requests per forward pass)`` rows."""
    rows = []
    for engine in setting.engines:
        server = ServiceProcess(model_path, engine, setting)
        try:
            for clients in setting.concurrency:
                count = max(setting.requests, clients)
                bodies = [_body(windows[(i * 37) % len(windows)], i) for i in range(count)]
                load(server.port, bodies[: max(2, clients)], clients)  # warm-up: connections, first batches
                before = server.batches()
                figures = load(server.port, bodies, clients)
                after = server.batches()
                per_pass = None
                if None not in before + after and after[0] > before[0]:
                    per_pass = (after[1] - before[1]) / (after[0] - before[0])
                    figures["served"] = after[1] - before[1]  # requests the service's forward passes answered
                rows.append((engine, clients, figures, per_pass))
                print(
                    f"  service {engine}, {clients} clients: {figures['rps']:.1f} requests/s, p50 "
                    f"{figures['p50']:.0f} ms, p99 {figures['p99']:.0f} ms, errors {figures['errors']}",
                    flush=True,
                )
        finally:
            server.stop()
    return rows


def _body(window: np.ndarray, i: int) -> bytes:
    return json.dumps({"series": {"values": window.tolist(), "start": int(i)}, "n": HORIZON}).encode()


def backtest_rows(model: Any, predictor: Any, test: Any, setting: Setting, network_b: float) -> tuple[list, int]:
    """Section 4: windows per second of Darts' ``historical_forecasts`` and of the direct predictor."""
    windows, histories = test_windows(test, setting.backtest_windows)
    series = test[-(len(windows) + LOOKBACK + HORIZON - 1) :]
    start = time.perf_counter()
    forecasts = model.historical_forecasts(series, start=LOOKBACK, start_format="position", forecast_horizon=HORIZON,
                                           stride=1, retrain=False, last_points_only=False, verbose=False)  # fmt: skip
    darts_seconds = time.perf_counter() - start
    start = time.perf_counter()
    direct = predictor.predict(HORIZON, windows)
    direct_seconds = time.perf_counter() - start
    assert len(forecasts) == len(windows), (len(forecasts), len(windows))
    difference = max(float(np.abs(f.values() - d[..., 0]).max()) for f, d in zip(forecasts[:50], direct[:50]))
    rows = [
        ("Darts `historical_forecasts(retrain=False)`", len(windows) / darts_seconds, darts_seconds),
        ("direct predictor over the same windows", len(windows) / direct_seconds, direct_seconds),
        ("network forward alone, batched", 1 / network_b, network_b * len(windows)),
    ]
    print(f"  backtest: largest |historical_forecasts - predictor| over the first 50 windows: {difference:.1e}")
    return rows, len(windows)


def _autocast(name: str | None) -> Any:
    import torch

    return {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


class Latency(Command):
    """What a forecast costs: Darts' predict broken down, the direct predictor, the batching service, backtests."""

    name = "latency"
    flags = ("data_dir", "backbone", "threads", "verbose")
    defaults = {"threads": os.cpu_count() or 1}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "model_path", nargs="?", type=Path, help="a saved TimesCLIPModel fitted on ETTh1's 7 columns"
        )
        parser.add_argument("--train-windows", type=int, default=512, help="train windows of its one epoch")
        parser.add_argument("--device", default="cpu", help="device of the network, predictor and torch service")
        parser.add_argument("--autocast", choices=("bf16", "fp16"), default=None, help="autocast (a GPU) in section 2")
        parser.add_argument("--batch", type=int, default=64, help="windows per call in section 2 (default 64)")
        parser.add_argument("--repeats", type=int, default=10, help="timed calls per figure in sections 1-2")
        parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64], help="service clients")
        parser.add_argument("--requests", type=int, default=192, help="requests per concurrency level")
        parser.add_argument("--engines", nargs="+", default=["darts", "torch", "onnx"],
                            choices=("darts", "torch", "onnx"), help="service engines to measure")  # fmt: skip
        parser.add_argument("--max-batch", type=int, default=64, help="the service's --max-batch")
        parser.add_argument("--batch-wait-ms", type=float, default=2.0, help="the service's --batch-wait-ms")
        parser.add_argument("--backtest-windows", type=int, default=0, help="last N test windows (0: all, default)")
        parser.add_argument("--no-backtest", action="store_true", help="skip section 4")

    @classmethod
    def invoke(cls, args: argparse.Namespace, argv: Sequence[str]) -> int:
        """Print the tables; 1 if a service request failed."""
        from benchmarks.runner import torch_threads

        setting = Setting(args.data_dir, args.model_path, args.backbone, args.train_windows, args.device, args.autocast,
                          args.batch, args.repeats, tuple(args.concurrency), args.requests, tuple(args.engines),
                          args.max_batch, args.batch_wait_ms, args.threads, args.backtest_windows or None)  # fmt: skip
        with torch_threads(args.threads):  # the process's own count again afterwards
            return run(setting, skip_backtest=args.no_backtest, argv=list(argv))


def run(setting: Setting, skip_backtest: bool = False, argv: list[str] | None = None) -> int:
    """Measure and print every section; the exit status."""
    from darts_timesclip.serve import load_model

    train, test, source = load_data(setting.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        path = setting.model_path
        if path is None:
            path = Path(tmp) / "model.pt"
            accelerator = "gpu" if setting.device.startswith("cuda") else "cpu"
            fit_model(train, setting.backbone, setting.train_windows, path, accelerator)
        model = load_model(path)
        windows, histories = test_windows(test, max(setting.batch, 64))
        autocast = _autocast(setting.autocast)
        predictors = {"torch": model.predictor(device=setting.device, batch_size=setting.batch, autocast=autocast)}
        if "onnx" in setting.engines and setting.device == "cpu":
            predictors["onnx"] = model.predictor(engine="onnx", batch_size=setting.batch)
        print(f"Machine: {machine_line()}; torch threads: {setting.threads}; device: {setting.device}.")
        print(
            f"Model: TimesCLIP `{model.config.backbone}` (random weights), L = {LOOKBACK}, H = {HORIZON}, "
            f"{model.target_components and len(model.target_components)} variates; data: {source}."
        )
        print("Command: python -m benchmarks " + " ".join(argv or ["latency"]) + "\n", flush=True)
        breakdown, figures = predict_breakdown(model, predictors, windows, histories, setting)
        darts_1, network_1 = figures["darts_1"], figures["network_1"]
        print("One Darts `predict` call for one window:\n")
        print("| part | ms | share |\n|---|---|---|")
        print(f"| network forward (batch 1) | {1e3 * network_1:.1f} | {network_1 / darts_1:.0%} |")
        print(
            f"| the rest (dataset, data loader, trainer, forecast series) | {1e3 * (darts_1 - network_1):.1f} | "
            f"{1 - network_1 / darts_1:.0%} |"
        )
        print(f"| total | {1e3 * darts_1:.1f} | 100% |\n")
        print(f"Per window, H = {HORIZON} (median of {setting.repeats} calls):\n")
        print(f"| path | batch 1 (ms) | batch {setting.batch} (ms / window) | batch 1 vs network |")
        print("|---|---|---|---|")
        for name, single, batched in breakdown:
            print(f"| {name} | {1e3 * single:.1f} | {1e3 * batched:.2f} | {single / network_1:.2f}x |")
        print(flush=True)
        failed = 0
        if setting.engines:
            print(
                f"The service (`darts-timesclip serve --engine E --threads {setting.threads} --max-batch "
                f"{setting.max_batch} --batch-wait-ms {setting.batch_wait_ms:g}` in its own process, clients in "
                f"this one on keep-alive connections; {setting.requests} requests per level):\n",
                flush=True,
            )
            rows = service_rows(Path(path), windows, setting)
            single = {engine: f["p50"] for engine, clients, f, _ in rows if clients == 1}
            base = {clients: f["rps"] for engine, clients, f, _ in rows if engine == "darts"}
            print(
                "\n| engine | clients | requests/s | vs darts | p50 (ms) | p90 (ms) | p99 (ms) | p99 / 1-client p50 "
                "| errors | requests per forward pass |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|")
            for engine, clients, f, per_pass in rows:
                versus = f"{f['rps'] / base[clients]:.1f}x" if clients in base else "-"
                ratio = f"{f['p99'] / single[engine]:.1f}" if engine in single else "-"
                passes = f"{per_pass:.1f}" if per_pass is not None else "-"
                print(
                    f"| {engine} | {clients} | {f['rps']:.1f} | {versus} | {f['p50']:.0f} | {f['p90']:.0f} | "
                    f"{f['p99']:.0f} | {ratio} | {f['errors']} | {passes} |"
                )
                failed += f["errors"]
            print(flush=True)
        if not skip_backtest:
            rows, count = backtest_rows(model, predictors["torch"], test, setting, figures["network_b"])
            print(f"\nBacktest: {count} windows of ETTh1's test split (stride 1), H = {HORIZON}:\n")
            print("| path | windows / s | seconds |\n|---|---|---|")
            for name, rate, seconds in rows:
                print(f"| {name} | {rate:.1f} | {seconds:.1f} |")
    return 1 if failed else 0
