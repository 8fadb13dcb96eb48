"""``python -m benchmarks load-test``: a bounded load test of the forecasting service on 127.0.0.1.

Starts ``darts-timesclip serve`` in a process of its own (``--engine``, default ``torch``: micro-batching over the
direct predictor) for ``MODEL_PATH`` or, without one, for TimesCLIP on ``--backbone`` (default ``compact``, random
weights) fitted for one epoch over the last ``--train-windows`` windows (default 512) of ETTh1's train split
(L = H = 96); then sends ``--requests`` forecast requests from ``--concurrency`` clients on keep-alive connections,
each for an ETTh1 test window, and prints p50 / p90 / p99 latency, throughput, the number of errors (non-200 answers)
and the requests answered per forward pass. ``--json PATH`` also writes these figures, with the fastest and slowest
request and the requests the service's forward passes answered. Exits 1 if any request failed. A smoke run:
``--backbone tiny --train-windows 16 --requests 8 --concurrency 2``. The same measurement, for every engine and
several concurrency levels side by side, is ``python -m benchmarks latency``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from benchmarks.runner import torch_threads, write_json_atomic
from benchmarks.study import Command, positive_int


class LoadTest(Command):
    """A bounded load test of the forecasting service on 127.0.0.1 (exit 1 on any failed request)."""

    name = "load-test"
    flags = ("data_dir", "backbone", "threads", "verbose")
    defaults = {"threads": os.cpu_count() or 1}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "model_path", nargs="?", type=Path, help="a saved TimesCLIPModel fitted on ETTh1's 7 columns"
        )
        parser.add_argument("--requests", type=int, default=500)
        parser.add_argument("--concurrency", type=int, default=16)
        parser.add_argument("--engine", choices=("torch", "onnx", "darts"), default="torch")
        parser.add_argument("--max-batch", type=int, default=64)
        parser.add_argument("--batch-wait-ms", type=float, default=2.0)
        parser.add_argument("--train-windows", type=positive_int, default=512,
                            help="train windows of the fitted model's one epoch, without MODEL_PATH (512)")  # fmt: skip
        parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")

    def execute(self, args: argparse.Namespace) -> int:
        """Print the figures; 1 if a request failed."""
        with torch_threads(args.threads):  # the process's own count again afterwards
            return load_test(args)


def load_test(args: argparse.Namespace) -> int:
    """Serve the model, send the requests, print latency and throughput (see the module docstring)."""
    from benchmarks.commands import latency

    setting = latency.Setting(
        data_dir=args.data_dir, model_path=args.model_path, backbone=args.backbone, train_windows=args.train_windows,
        device="cpu",
        autocast=None, batch=64, repeats=1, concurrency=(args.concurrency,), requests=args.requests,
        engines=(args.engine,), max_batch=args.max_batch, batch_wait_ms=args.batch_wait_ms, threads=args.threads,
        backtest_windows=None,
    )  # fmt: skip
    train, test, _ = latency.load_data(args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model_path
        if path is None:
            path = Path(tmp) / "model.pt"
            latency.fit_model(train, args.backbone, args.train_windows, path)
        windows, _ = latency.test_windows(test, 2000)
        rows = latency.service_rows(path, windows, setting)
    _, clients, figures, per_pass = rows[0]
    passes = f"; {per_pass:.1f} requests per forward pass" if per_pass is not None else ""
    print(
        f"{figures['n']} requests, {clients} at a time, H = 96, engine {args.engine}:\n"
        f"  latency p50 {figures['p50']:.0f} ms, p90 {figures['p90']:.0f} ms, p99 {figures['p99']:.0f} ms; "
        f"{figures['rps']:.1f} requests/s; errors: {figures['errors']}{passes}"
    )
    if args.json is not None:
        write_json_atomic(
            args.json,
            {"engine": args.engine, "clients": clients, "requests_per_forward_pass": per_pass, "latency_unit": "ms",
             **figures},
        )  # fmt: skip
        print(f"wrote {args.json}")
    return 1 if figures["errors"] else 0
