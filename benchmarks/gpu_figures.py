"""``python -m benchmarks.gpu_figures``: every figure the docs list as missing for want of a GPU, in one command.

Meant for one GPU (an H100 takes about 5 of its 8-minute budget, see ``docs/latency.md``); runs anywhere at small
settings (``--device cpu --backbone tiny``, as the tests do). With the full-size ViT-B/16 (``pretrained=False``:
random weights, nothing downloaded) in ``--precision`` (bf16-mixed), it prints:

1. charts rendered per second and vision-tower images per second (``benchmarks.speed``'s device figures);
2. training epoch time on the ETTh1 train split, with and without the frozen-vision embedding cache (two epochs
   each: the first fills the cache, the second reads it);
3. ``benchmarks.latency`` on the device: the network, the direct predictor (torch engine, autocast) at batch 1 and
   ``--batch``, and the service (``--engine torch --device DEVICE``) at 1, 16 and 64 clients.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchmarks.console import configure_console
from benchmarks.machine import machine_line

FULL_SIZE = "openai/clip-vit-base-patch16"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=None, help="directory with ETTh1.csv[.gz]")
    parser.add_argument("--device", default="cuda", help="default: cuda")
    parser.add_argument("--backbone", default=FULL_SIZE, help=f"default: {FULL_SIZE} (random weights)")
    parser.add_argument("--precision", default="bf16-mixed", help="Lightning precision of training (bf16-mixed)")
    parser.add_argument("--windows", type=int, default=0, help="training windows per epoch (0: all, default)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size (default 64)")
    parser.add_argument("--images", type=int, default=1024, help="charts per device figure (default 1024)")
    parser.add_argument("--batch", type=int, default=64, help="windows per predictor call (default 64)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64], help="service clients")
    parser.add_argument("--requests", type=int, default=512, help="service requests per concurrency level")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; prints every table (exit 1 if a service request failed)."""
    from benchmarks import latency, speed

    args = build_parser().parse_args(argv)
    configure_console()
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    argv = list(sys.argv[1:] if argv is None else argv)
    print(f"Machine: {machine_line()}; device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else "") + ".")  # fmt: skip
    print("Command: python -m benchmarks.gpu_figures " + " ".join(argv) + "\n", flush=True)

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
    status = latency.run(setting, skip_backtest=True, argv=["(through gpu_figures)"])
    print(f"\nAll figures in {time.perf_counter() - started:.0f} s.")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
