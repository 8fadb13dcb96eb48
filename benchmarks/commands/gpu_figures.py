"""``python -m benchmarks gpu-figures``: every figure the docs list as missing for want of a GPU, in one command.

Meant for one GPU (an H100 takes about 5 of its 8-minute budget, see ``docs/latency.md``); runs anywhere at small
settings (``--device cpu --backbone tiny``, as the tests do). With the full-size ViT-B/16 (``pretrained=False``:
random weights, nothing downloaded) in ``--precision`` (bf16-mixed), it prints:

1. charts rendered per second and vision-tower images per second (``python -m benchmarks speed``'s device figures);
2. training epoch time on the ETTh1 train split, with and without the frozen-vision embedding cache (two epochs
   each: the first fills the cache, the second reads it);
3. ``python -m benchmarks latency`` on the device: the network, the direct predictor (torch engine, autocast) at
   batch 1 and ``--batch``, and the service (``--engine torch --device DEVICE``) at 1, 16 and 64 clients.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

from benchmarks.machine import machine_line
from benchmarks.study import Command

FULL_SIZE = "openai/clip-vit-base-patch16"


class GPUFigures(Command):
    """Every figure the docs list as missing for want of a GPU (ViT-B/16 with random weights), in one command."""

    name = "gpu-figures"
    flags = ("data_dir", "backbone", "threads", "verbose")
    defaults = {"backbone": FULL_SIZE, "threads": os.cpu_count() or 1}  # random weights: nothing downloaded

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--device", default="cuda", help="default: cuda")
        parser.add_argument("--precision", default="bf16-mixed", help="Lightning precision of training (bf16-mixed)")
        parser.add_argument("--windows", type=int, default=0, help="training windows per epoch (0: all, default)")
        parser.add_argument("--batch-size", type=int, default=64, help="training batch size (default 64)")
        parser.add_argument("--images", type=int, default=1024, help="charts per device figure (default 1024)")
        parser.add_argument("--batch", type=int, default=64, help="windows per predictor call (default 64)")
        parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64], help="service clients")
        parser.add_argument("--requests", type=int, default=512, help="service requests per concurrency level")

    @classmethod
    def invoke(cls, args: argparse.Namespace, argv: Sequence[str]) -> int:
        """Print every table; 1 if a service request failed."""
        from benchmarks.runner import torch_threads

        with torch_threads(args.threads):  # the process's own count again afterwards
            return gpu_figures(args, list(argv))


def gpu_figures(args: argparse.Namespace, argv: list[str]) -> int:
    """Measure and print the figures (see the module docstring)."""
    import torch

    from benchmarks.commands import latency, speed

    started = time.perf_counter()
    print(f"Machine: {machine_line()}; device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "") + ".")  # fmt: skip
    print("Command: python -m benchmarks " + " ".join(argv) + "\n", flush=True)

    figures = speed.device_figures(args.backbone, args.device, args.precision, n_images=args.images)
    print(f"On {args.device}, `{args.backbone}` (random weights), {args.precision}:\n")
    print("| chart size | charts rendered / s | vision-tower images / s |\n|---|---|---|")
    print(f"| {figures['image_size']} | {figures['charts_per_second']:,.0f} | {figures['encoded_per_second']:,.0f} |")
    print(f"\n({time.perf_counter() - started:.0f} s so far)\n", flush=True)

    what, rows = speed.training_figures(
        args.data_dir,
        args.windows or None,
        batch_size=args.batch_size,
        backbone=args.backbone,
        device=args.device,
        precision=args.precision,
    )
    print(f"Training epochs, `{args.backbone}`, {args.device}, {args.precision}, L = H = 96, {what}:\n")
    print("| embedding cache | epoch 1 (s) | epoch 2 (s) |\n|---|---|---|")
    for cache, times in rows:
        print(f"| {cache} | {times[0]:.1f} | {times[1]:.1f} |")
    print(f"\n({time.perf_counter() - started:.0f} s so far)\n", flush=True)

    setting = latency.Setting(
        data_dir=args.data_dir, model_path=None, backbone=args.backbone, train_windows=max(args.batch, 64),
        device=args.device, autocast="bf16" if args.precision.startswith("bf16") else None, batch=args.batch,
        repeats=10, concurrency=tuple(args.concurrency), requests=args.requests, engines=("torch",),
        max_batch=64, batch_wait_ms=2.0, threads=args.threads, backtest_windows=None,
    )  # fmt: skip
    status = latency.run(setting, skip_backtest=True, argv=["latency", "(through gpu-figures)"])
    print(f"\nAll figures in {time.perf_counter() - started:.0f} s.")
    return status
