"""``python -m benchmarks export``: ONNX export of TimesCLIP on real data, checked against ``predict``.

Fits the ``compact`` TimesCLIP (random weights) briefly on ETTh1's train split (L = H = 96, the suite's scaling),
exports it with Darts' ``to_onnx``, and forecasts the last ``--windows`` test windows both ways: with
``TimesCLIPModel.predict`` (torch, the embedding cache on) and with ``darts.utils.onnx.run_onnx_prediction`` (ONNX
Runtime, every chart rendered and encoded in the graph). Prints the largest absolute difference, the export time,
the file size and the per-window latency of each. ``--save-to DIR`` keeps the ONNX file and the fitted model there
(``timesclip.onnx``, ``timesclip.pt``), to check or reuse; by default both are thrown away.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.study import Command


class Export(Command):
    """ONNX export of TimesCLIP on ETTh1, checked against predict (exit 1 beyond --tolerance)."""

    name = "export"
    flags = ("data_dir", "backbone", "verbose")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--windows", type=int, default=20, help="test windows forecast both ways")
        parser.add_argument("--train-windows", type=int, default=1024, help="most recent train windows, one epoch")
        parser.add_argument("--tolerance", type=float, default=1e-4)
        parser.add_argument(
            "--save-to", type=Path, default=None, help="keep timesclip.onnx and the fitted timesclip.pt in this folder"
        )

    def execute(self, args: argparse.Namespace) -> int:
        """Print the figures; 1 if the difference exceeds ``--tolerance``."""
        return export_figures(args)


def export_figures(args: argparse.Namespace) -> int:
    """Fit, export, forecast both ways and print the figures (see the module docstring)."""
    import onnxruntime as ort
    from darts.utils.onnx import run_onnx_prediction

    from benchmarks.protocol import prepare
    from benchmarks.registry import get_spec, read_dataset
    from darts_timesclip import TimesCLIPModel

    data = prepare(read_dataset(get_spec("ETTh1"), args.data_dir), lookback=96)
    train, full = data.split_series("train"), data.series()
    model = TimesCLIPModel(
        96,
        96,
        backbone=args.backbone,
        n_epochs=1,
        batch_size=64,
        random_state=2021,
        pl_trainer_kwargs={"accelerator": "cpu", "enable_progress_bar": False, "logger": False},
    )
    model.fit(train, max_samples_per_ts=args.train_windows)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) if args.save_to is None else args.save_to
        folder.mkdir(parents=True, exist_ok=True)
        if args.save_to is not None:
            model.save(str(folder / "timesclip.pt"))
        path = folder / "timesclip.onnx"
        start = time.perf_counter()
        model.to_onnx(str(path), verbose=False)
        export_seconds = time.perf_counter() - start
        size_mb = path.stat().st_size / 2**20
        session = ort.InferenceSession(str(path))
        ends = np.linspace(len(full) - 96 * 2, len(full) - 96, args.windows).astype(int)  # inside the test split
        histories = [full[: int(end)] for end in ends]
        start = time.perf_counter()
        torch_out = [model.predict(96, h, verbose=False) for h in histories]
        torch_seconds = (time.perf_counter() - start) / len(histories)
        start = time.perf_counter()
        onnx_out = [run_onnx_prediction(n=96, session=session, series=h) for h in histories]
        onnx_seconds = (time.perf_counter() - start) / len(histories)
    diff = max(float(np.abs(a.values() - b.values()).max()) for a, b in zip(torch_out, onnx_out))
    print(
        f"ETTh1 (scaled), {args.backbone} backbone (random weights), {len(histories)} test windows, H = 96:\n"
        f"  max |onnx - predict| = {diff:.2e} (tolerance {args.tolerance:g})\n"
        f"  export {export_seconds:.1f} s, file {size_mb:.1f} MiB\n"
        f"  per window: predict {1e3 * torch_seconds:.1f} ms (torch, cache on), "
        f"ONNX Runtime {1e3 * onnx_seconds:.1f} ms"
    )
    return 0 if diff <= args.tolerance else 1
