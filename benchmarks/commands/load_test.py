"""``python -m benchmarks load-test``: a bounded load test of the forecasting service on 127.0.0.1.

Starts ``darts_timesclip.serve`` in this process (uvicorn in a thread, a free port) for ``MODEL_PATH`` or, without
one, for the ``compact`` TimesCLIP (random weights) fitted briefly on ETTh1's train split (L = H = 96); then sends
``--requests`` forecast requests, ``--concurrency`` at a time, each for a different ETTh1 test window, and prints
p50 / p90 / p99 latency, throughput and the number of errors (non-200 answers). Exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.study import Command


def _fit_default(data_dir: Path | None, path: Path) -> None:
    from benchmarks.protocol import prepare
    from benchmarks.registry import get_spec, read_dataset
    from darts_timesclip import TimesCLIPModel

    data = prepare(read_dataset(get_spec("ETTh1"), data_dir), lookback=96)
    model = TimesCLIPModel(
        96,
        96,
        backbone="compact",
        n_epochs=1,
        batch_size=64,
        random_state=2021,
        pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False, "logger": False},
    )
    model.fit(data.split_series("train"), max_samples_per_ts=512)
    model.save(str(path))


class LoadTest(Command):
    """A bounded load test of the forecasting service on 127.0.0.1 (exit 1 on any failed request)."""

    name = "load-test"
    flags = ("data_dir", "verbose")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "model_path", nargs="?", type=Path, help="a saved TimesCLIPModel fitted on ETTh1's 7 columns"
        )
        parser.add_argument("--requests", type=int, default=500)
        parser.add_argument("--concurrency", type=int, default=16)

    def execute(self, args: argparse.Namespace) -> int:
        """Print the figures; 1 if a request failed."""
        return load_test(args)


def load_test(args: argparse.Namespace) -> int:
    """Serve the model, send the requests, print latency and throughput (see the module docstring)."""
    from benchmarks.protocol import prepare
    from benchmarks.registry import get_spec, read_dataset
    from darts_timesclip.serve import create_app, load_model, quiet_prediction_logs, running

    quiet_prediction_logs()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.model_path
        if path is None:
            path = Path(tmp) / "model.pt"
            _fit_default(args.data_dir, path)
        model = load_model(path)
        full = prepare(read_dataset(get_spec("ETTh1"), args.data_dir), lookback=96).series()
        values = full.values()
        ends = np.linspace(len(full) - 2000, len(full) - 96, args.requests).astype(int)
        bodies = [
            json.dumps({"series": {"values": values[e - 96 : e].tolist(), "start": int(e - 96)}, "n": 96}).encode()
            for e in ends
        ]
        with running(create_app(model)) as url:

            def send(body: bytes) -> tuple[int, float]:
                request = urllib.request.Request(
                    f"{url}/forecast", data=body, headers={"Content-Type": "application/json"}
                )
                start = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=300) as response:
                        response.read()
                        status = response.status
                except urllib.error.HTTPError as err:
                    status = err.code
                return status, time.perf_counter() - start

            send(bodies[0])  # warm-up (first trainer, first charts)
            start = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                results = list(pool.map(send, bodies))
            wall = time.perf_counter() - start
    latencies = np.array([seconds for _, seconds in results]) * 1e3
    errors = sum(status != 200 for status, _ in results)
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
    print(
        f"{args.requests} requests, {args.concurrency} at a time, H = 96, 7 variates, model {model.config.backbone} "
        f"({'pretrained' if model.config.pretrained else 'random weights'}):\n"
        f"  latency p50 {p50:.0f} ms, p90 {p90:.0f} ms, p99 {p99:.0f} ms; {args.requests / wall:.1f} requests/s; "
        f"errors: {errors}"
    )
    return 1 if errors else 0
