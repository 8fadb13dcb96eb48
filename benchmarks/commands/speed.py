"""Speed and size figures of darts-timesclip on this machine (not a test: it prints measurements).

Usage::

    python -m benchmarks speed --data-dir ../shared/data [--windows 2048] [--skip-training] [--json speed.json]
    # the GPU figures (full-size ViT-B/16 with random weights, bf16-mixed; charts are channels-last on CUDA)
    python -m benchmarks speed --data-dir ../shared/data --device cuda --backbone openai/clip-vit-base-patch16 \
        --precision bf16-mixed

Prints, as Markdown tables:

1. chart rendering throughput: the batched torch rasteriser against matplotlib drawing into one reused figure
   (``set_ydata`` + ``draw``, the fast matplotlib way), at the compact preset's and ViT-B/16's image sizes;
2. parameter counts (total / trainable) of TimesCLIP on each backbone preset and on ViT-B/16 with random weights;
3. on ``--device``, with ``--backbone``: charts rendered per second at the backbone's image size and vision-tower
   images per second (forward, in ``--precision``);
4. training epoch time of ``--backbone`` (default ``compact``) on the ETTh1 train split (L = 96, H = 96), with and
   without the frozen-vision embedding cache, on ``--device`` in ``--precision``.

``--json PATH`` also writes these figures to a JSON file. Smaller settings for a smoke run: ``--charts`` (charts
per rendering figure), ``--parameter-backbones`` (the backbones of table 2), ``--images`` (charts per device
figure), ``--epochs`` and ``--batch-size`` (training), e.g. ``--backbone tiny --charts 8
--parameter-backbones tiny --images 8 --epochs 1 --windows 16 --batch-size 8``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.machine import machine_line
from benchmarks.runner import write_json_atomic
from benchmarks.study import Command, positive_int

#: The backbones of the parameter table by default: the presets and ViT-B/16.
PARAMETER_BACKBONES = ("tiny", "compact", "openai/clip-vit-base-patch16")


def rendering_figures(n_images: int = 448, length: int = 96, repeats: int = 3) -> list[tuple]:
    """Rows ``(image size, charts, matplotlib charts, torch charts/s, matplotlib charts/s)`` at 64 and 224 pixels.

    Parameters
    ----------
    n_images
        Charts the torch rasteriser renders per call; matplotlib draws ``min(n_images, 200)``.
    length
        Points per chart.
    repeats
        Timed torch calls per size (the fastest counts).
    """
    from darts_timesclip.network.chart_rendering import (
        minmax_scale,
        render_line_charts,
        render_line_charts_matplotlib,
        variate_colours,
    )

    gen = torch.Generator().manual_seed(0)
    rows = minmax_scale(torch.cumsum(torch.randn(n_images, length, generator=gen), dim=-1))
    colours = variate_colours(n_images)
    out = []
    for size in (64, 224):
        render_line_charts(rows, colours, size)  # warm-up
        best = min(_timed(render_line_charts, rows, colours, size) for _ in range(repeats))
        n_mpl = min(n_images, 200)
        mpl = _timed(render_line_charts_matplotlib, rows[:n_mpl].numpy(), colours[:n_mpl].numpy(), size)
        out.append((size, len(rows), n_mpl, len(rows) / best, n_mpl / mpl))
    return out


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def parameter_figures(
    lookback: int = 96, horizon: int = 96, n_variates: int = 7, backbones: Sequence[str] = PARAMETER_BACKBONES
) -> list[tuple]:
    """Rows ``(backbone, chart size, parameters, trainable parameters)`` of TimesCLIP with random weights.

    Parameters
    ----------
    lookback, horizon, n_variates
        The network's shape.
    backbones
        One row per backbone, in this order.
    """
    from darts_timesclip.network import TimesCLIPConfig, TimesCLIPNetwork

    rows = []
    for name in backbones:
        config = TimesCLIPConfig(lookback, horizon, n_targets=n_variates, backbone=name, pretrained=False)
        net = TimesCLIPNetwork(config)
        total = sum(p.numel() for p in net.parameters())
        trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
        rows.append((name, config.vision_config["image_size"], total, trainable))
        del net
    return rows


def device_figures(backbone: str, device: str, precision: str, n_images: int = 1024) -> dict[str, float]:
    """Charts rendered per second and vision-tower images per second on ``device`` (random weights)."""
    from darts_timesclip.network import TimesCLIPConfig, TimesCLIPNetwork
    from darts_timesclip.network.chart_rendering import minmax_scale

    config = TimesCLIPConfig(96, 96, n_targets=7, backbone=backbone, pretrained=False)
    tower = TimesCLIPNetwork(config).vision.to(device).eval()
    gen = torch.Generator().manual_seed(0)
    rows = minmax_scale(torch.cumsum(torch.randn(n_images, 96, generator=gen), dim=-1)).to(device)
    colour_index = torch.arange(n_images, device=device) % 10
    dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16 if precision.startswith("16") else None

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def rate(fn) -> float:
        fn()  # warm-up
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return n_images / (time.perf_counter() - start)

    def encode() -> None:
        with torch.no_grad(), torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            tower._encode(rows, colour_index)

    return {
        "image_size": tower.image_size,
        "charts_per_second": rate(lambda: tower.render(rows, colour_index)),
        "encoded_per_second": rate(encode),
    }


def training_figures(
    data_dir: Path | None,
    windows: int,
    epochs: int = 2,
    batch_size: int = 32,
    backbone: str = "compact",
    device: str = "cpu",
    precision: str = "32-true",
) -> tuple[str, list]:
    from darts import TimeSeries

    from benchmarks.callbacks import EpochLog, EpochTimer
    from darts_timesclip import TimesCLIPModel

    lookback, horizon = 96, 96
    try:
        from benchmarks.protocol import prepare
        from benchmarks.registry import get_spec, read_dataset

        data = prepare(read_dataset(get_spec("ETTh1"), data_dir), lookback)
        train = data.split_series("train")
        source = "ETTh1 train split (standardised)"
    except FileNotFoundError:
        rng = np.random.default_rng(0)
        values = np.cumsum(rng.standard_normal((8640, 7)), axis=0).astype(np.float32)
        train = TimeSeries.from_values(values)
        source = "synthetic random walk of ETTh1's train shape (ETTh1 not found)"
    rows = []
    for cache_mb in (1024.0, 0.0):
        timer = EpochTimer()
        model = TimesCLIPModel(
            lookback,
            horizon,
            backbone=backbone,
            pretrained=False,
            batch_size=batch_size,
            n_epochs=epochs,
            embedding_cache_mb=cache_mb,
            random_state=0,
            pl_trainer_kwargs={
                "accelerator": "gpu" if device.startswith("cuda") else device,
                "precision": precision,
                "enable_progress_bar": False,
                "enable_model_summary": False,
                "logger": False,
                "enable_checkpointing": False,
                "callbacks": [timer, EpochLog(f"{backbone}, cache {'on' if cache_mb else 'off'}")],
            },
        )
        # no pinned memory without a GPU (torch warns on every loader otherwise)
        model.fit(train, max_samples_per_ts=windows, dataloader_kwargs={"pin_memory": torch.cuda.is_available()})
        rows.append(("on" if cache_mb else "off", timer.seconds))
    n_windows = min(windows, len(train) - lookback - horizon + 1) if windows else len(train) - lookback - horizon + 1
    return f"{source}, {n_windows} windows x 7 variates, batch {batch_size}", rows


class Speed(Command):
    """Rendering, parameter and training-epoch figures on this machine (prints Markdown tables)."""

    name = "speed"
    flags = ("data_dir", "backbone", "verbose")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--windows", type=int, default=0, help="training windows per epoch (0: all)")
        parser.add_argument("--skip-training", action="store_true", help="only rendering and parameter figures")
        parser.add_argument("--device", default="cpu", help="cpu or cuda (the GPU figures)")
        parser.add_argument("--precision", default="32-true", help="Lightning precision, e.g. bf16-mixed on a GPU")
        parser.add_argument("--charts", type=positive_int, default=448, help="charts per rendering figure (448)")
        parser.add_argument("--parameter-backbones", nargs="+", default=list(PARAMETER_BACKBONES), metavar="NAME",
                            help="backbones of the parameter table (default: %(default)s)")  # fmt: skip
        parser.add_argument("--images", type=positive_int, default=1024, help="charts per device figure (1024)")
        parser.add_argument("--epochs", type=positive_int, default=2, help="training epochs per cache setting (2)")
        parser.add_argument("--batch-size", type=positive_int, default=32, help="training batch size (32)")
        parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")

    @classmethod
    def trains(cls, args: argparse.Namespace) -> bool:
        return not args.skip_training

    def execute(self, args: argparse.Namespace) -> int:
        """Print the tables (and write them to ``--json``)."""
        figures: dict[str, Any] = {"machine": machine_line()}
        print(f"Machine: {figures['machine']}; every backbone has random weights.\n")
        print("| image size | torch rasteriser (img/s) | matplotlib, reused figure (img/s) | speed-up |")
        print("|---|---|---|---|")
        figures["rendering"] = []
        for size, n_ours, n_mpl, ours, mpl in rendering_figures(args.charts):
            print(f"| {size}x{size} | {ours:,.0f} | {mpl:,.0f} | {ours / mpl:.1f}x |")
            figures["rendering"].append(
                {"image_size": size, "charts": n_ours, "matplotlib_charts": n_mpl, "charts_per_second": ours,
                 "matplotlib_charts_per_second": mpl}
            )  # fmt: skip

        print("\n| backbone | chart size | parameters | trainable (vision frozen) |")
        print("|---|---|---|---|")
        figures["parameters"] = []
        for name, size, total, trainable in parameter_figures(backbones=args.parameter_backbones):
            print(f"| {name} | {size} | {total / 1e6:.2f} M | {trainable / 1e6:.2f} M |")
            figures["parameters"].append({"backbone": name, "image_size": size, "total": total, "trainable": trainable})

        device = device_figures(args.backbone, args.device, args.precision, n_images=args.images)
        figures["device"] = {"backbone": args.backbone, "device": args.device, "precision": args.precision,
                             "images": args.images, **device}  # fmt: skip
        print(f"\nOn {args.device}, `{args.backbone}` (random weights), {args.precision}:\n")
        print("| chart size | charts rendered / s | vision-tower images / s |\n|---|---|---|")
        print(f"| {device['image_size']} | {device['charts_per_second']:,.0f} | {device['encoded_per_second']:,.0f} |")

        if not args.skip_training:
            what, rows = training_figures(
                args.data_dir,
                args.windows or None,
                epochs=args.epochs,
                batch_size=args.batch_size,
                backbone=args.backbone,
                device=args.device,
                precision=args.precision,
            )
            figures["training"] = {"data": what, "epoch_seconds": {cache: times for cache, times in rows}}
            print(f"\nTraining epochs, `{args.backbone}`, {args.device}, {args.precision}, L=96, H=96, {what}:\n")
            print("| embedding cache | epoch 1 (s) | later epochs (s) |")
            print("|---|---|---|")
            for cache, times in rows:
                later = ", ".join(f"{t:.0f}" for t in times[1:])
                print(f"| {cache} | {times[0]:.0f} | {later} |")
        if args.json is not None:
            write_json_atomic(args.json, figures)
            print(f"\nwrote {args.json}")
        return 0
