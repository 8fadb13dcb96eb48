"""Figures of ``VQTransformerModel`` on this machine (not a test: it prints measurements).

Usage::

    python -m benchmarks vq-figures --data-dir ../shared/data [--dataset ETTh1] [--epochs 2] [--windows 4096]

Trains the suite's ``vqtransformer`` configuration on a dataset's train split (L = 96, H = 96, the quick tier's
budget by default: every stage ``--epochs`` epochs over the most recent ``--windows`` windows) and prints, as
Markdown tables: parameter counts per part; seconds per epoch of each stage; the tokenizer's codebook usage
(perplexity, codes used, reconstruction error) on the train and test splits' windows, after the two pretraining
stages and again after the fine-tune (which, by default, trains the tokenizer's encoder and decoder for the forecast).
``--json PATH`` also writes these figures. ``--scale tiny`` trains the suite's tiny widths instead, and
``--test-windows N`` measures the codebook on the test split's most recent N windows only (a smoke run:
``--scale tiny --epochs 1 --windows 16 --test-windows 16``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from benchmarks.machine import machine_line
from benchmarks.models import Scale
from benchmarks.runner import write_json_atomic
from benchmarks.study import Command


def vq_figures(
    dataset: str,
    data_dir: Path | None,
    epochs: int,
    windows: int,
    horizon: int = 96,
    scale: Scale = "official",
    test_windows: int = 0,
) -> dict:
    """Train and measure; returns the figures as a dictionary (see the module docstring).

    Parameters
    ----------
    dataset, data_dir
        The registry dataset and where its file is (``None``: the default directories).
    epochs
        Epochs of every stage.
    windows
        The most recent training windows per series (0: all).
    horizon
        The forecast horizon.
    scale
        ``official``: the suite's configuration; ``tiny``: its smoke-test widths.
    test_windows
        The most recent test windows per series the codebook is measured on (0: all).
    """
    from benchmarks.callbacks import EpochTimer
    from benchmarks.models import TrainingCaps, build_model, model_config
    from benchmarks.protocol import prepare
    from benchmarks.registry import get_spec, read_dataset

    data = prepare(read_dataset(get_spec(dataset), data_dir), 96)
    train = data.split_series("train")
    test = data.series(data.borders.test[0] - 96, data.borders.test[1])
    timer = EpochTimer()
    caps = TrainingCaps(max_epochs=epochs, max_samples_per_ts=windows or None)
    model = build_model(
        model_config("vqtransformer", dataset, horizon, scale=scale),
        lookback=96,
        horizon=horizon,
        seed=2021,
        caps=caps,
        n_train_windows=windows or len(train),
        callbacks=[timer],
        accelerator="cpu",
    )
    model.pretrain(train, max_samples_per_ts=caps.max_samples_per_ts)  # stages 1-2, what `fit` would run first
    pretrained_usage = {
        "train": model.codebook_usage(train, max_samples_per_ts=caps.max_samples_per_ts),
        "test": model.codebook_usage(test, max_samples_per_ts=test_windows or None),
    }
    model.fit(train, max_samples_per_ts=caps.max_samples_per_ts)  # the fine-tune only
    network = model.model.network
    parts = {
        "tokenizer (VQ-VAE)": list(network.tokenizer.parameters()),
        "causal Transformer": list(network.transformer.parameters()),
        "forecast queries and heads": [
            network.future_queries,
            *network.latent_head.parameters(),
            *network.parameter_head.parameters(),
        ],
    }
    history = model.stage_history.values
    return {
        "parameters": {name: sum(p.numel() for p in params) for name, params in parts.items()}
        | {"total": sum(p.numel() for p in network.parameters())},
        "epoch_seconds": {
            "tokenizer": history["tokenizer_epoch_seconds"],
            "pretrain": history["pretrain_epoch_seconds"],
            "fine-tune": timer.seconds,
        },
        "stage_losses": {
            key: history[key]
            for key in (
                "tokenizer_reconstruction_loss",
                "tokenizer_perplexity",
                "tokenizer_codebook_usage",
                "pretrain_loss",
                "pretrain_accuracy",
            )
        },
        "codebook": {
            "train, after stages 1-2": pretrained_usage["train"],
            "test, after stages 1-2": pretrained_usage["test"],
            "train, after the fine-tune": model.codebook_usage(train, max_samples_per_ts=caps.max_samples_per_ts),
            "test, after the fine-tune": model.codebook_usage(test, max_samples_per_ts=test_windows or None),
        },
    }


class VQFigures(Command):
    """VQTransformerModel's parameters, epoch times and codebook usage on a dataset."""

    name = "vq-figures"
    flags = ("data_dir", "scale", "verbose")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dataset", default="ETTh1")
        parser.add_argument("--epochs", type=int, default=2, help="epochs of every stage (the quick tier's 2)")
        parser.add_argument("--windows", type=int, default=4096, help="training windows per series (0: all)")
        parser.add_argument("--test-windows", type=int, default=0, help="test windows per series (0: all)")
        parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")

    def execute(self, args: argparse.Namespace) -> int:
        """Train, measure and print the tables (and write them to ``--json``)."""
        figures = vq_figures(
            args.dataset, args.data_dir, args.epochs, args.windows, scale=args.scale, test_windows=args.test_windows
        )
        print(f"machine: {machine_line()}")
        print(
            f"\n{args.dataset}, L = 96, H = 96, {args.epochs} epochs per stage over {args.windows or 'all'} windows\n"
        )
        print("| part | parameters |\n|---|---|")
        for name, value in figures["parameters"].items():
            print(f"| {name} | {value:,} |")
        print("\n| stage | seconds per epoch |\n|---|---|")
        for stage, seconds in figures["epoch_seconds"].items():
            print(f"| {stage} | {', '.join(f'{s:.0f}' for s in seconds)} |")
        print("\n| windows | perplexity | codes used | reconstruction MSE (normalised) |\n|---|---|---|---|")
        for split, usage in figures["codebook"].items():
            print(
                f"| {split} | {usage['perplexity']:.1f} | {usage['used']} of {usage['codebook_size']} | "
                f"{usage['reconstruction_mse']:.3f} |"
            )
        losses = figures["stage_losses"]
        print("\nper epoch (training mode, batch means):")
        for key, values in losses.items():
            print(f"- {key}: " + ", ".join(f"{v:.3f}" for v in values))
        size = next(iter(figures["codebook"].values()))["codebook_size"]
        print(f"(uniform guess of the next code: cross-entropy ln {size} = {math.log(size):.3f})")
        if args.json is not None:
            write_json_atomic(args.json, {"machine": machine_line(), "dataset": args.dataset, "scale": args.scale,
                                          "epochs": args.epochs, "windows": args.windows,
                                          "test_windows": args.test_windows, **figures})  # fmt: skip
            print(f"wrote {args.json}")
        return 0
