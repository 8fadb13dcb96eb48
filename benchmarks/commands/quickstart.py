"""The README's main job: TimesCLIP against NLinear on ETTh1 (L = 96, H = 96), in minutes on a CPU.

Usage::

    python -m benchmarks quickstart [--data-dir DIR] [--output outputs/quickstart] [--[no-]progress-bar]
    # a smoke run in seconds: the tiny models, one epoch over 64 windows
    python -m benchmarks quickstart --scale tiny --max-epochs 1 --max-samples-per-ts 64 --test-windows 8

Fits TimesCLIP (the CPU-sized ``compact`` preset, random CLIP weights) and NLinear on ETTh1's standard train
split, forecasts every test window at stride 1 with ``historical_forecasts(retrain=False)``, prints MSE and MAE
on the standardised scale beside the published L = 96 numbers, and saves a forecast-vs-truth plot and the two
result records (``quickstart.json``: metrics, budget and the plotted window). While a model trains, one line per
epoch shows its losses (Lightning's progress bar instead, on a terminal). ``--scale tiny`` and the caps
(``--max-epochs``, ``--max-samples-per-ts``, ``--max-steps``, each replacing the default budget's cap of that name)
with ``--test-windows N`` (only the first N test windows scored) make a smoke run of it.

The data directory is ``--data-dir``, else ``$DARTS_TIMESCLIP_DATA``, else the usual places (see
``benchmarks.registry``). Where ETTh1 cannot be found, the job says so and runs on an embedded synthetic
7-variate hourly series of ETTh1's length instead.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.models import TrainingCaps, model_config
from benchmarks.protocol import METRIC_SCALE, prepare, score_test_windows
from benchmarks.registry import LoadedDataset, get_spec, read_dataset
from benchmarks.report import pyplot, save_plot
from benchmarks.runner import Job, RunSettings, run_job
from benchmarks.study import CAPS_FLAGS, DEFAULT_SEED, Command, positive_int
from benchmarks.tiers import get_tier
from darts_timesclip._io import write_text_atomic

LOOKBACK, HORIZON = 96, 96

#: TimesCLIP's budget: the `quick` tier's (a few epochs over the most recent windows; the paper: 100 epochs, all).
TIMESCLIP_CAPS = get_tier("quick").caps_for("timesclip")


def synthetic_etth1(n_rows: int = 14400, seed: int = 0) -> np.ndarray:
    """An ETTh1-shaped stand-in: 7 hourly variates with daily and weekly cycles, drift and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)[:, None]
    phase = rng.uniform(0, 2 * np.pi, (1, 7))
    daily = np.sin(2 * np.pi * t / 24 + phase) * rng.uniform(0.5, 2.0, (1, 7))
    weekly = np.sin(2 * np.pi * t / 168 + phase) * rng.uniform(0.2, 1.0, (1, 7))
    drift = np.cumsum(rng.standard_normal((n_rows, 7)) * 0.05, axis=0)
    noise = rng.standard_normal((n_rows, 7)) * 0.3
    mixed = daily + weekly + drift + noise
    mixed[:, -1] += 0.5 * mixed[:, :-1].mean(axis=1)  # 'OT' depends on the others, as in ETT
    return mixed.astype(np.float32)


def load_etth1(data_dir: Path | None) -> tuple[LoadedDataset, str]:
    """ETTh1 from ``data_dir`` (or the usual places), else the embedded synthetic stand-in; and a line naming it."""
    spec = get_spec("ETTh1")
    try:
        dataset = read_dataset(spec, data_dir)
        return dataset, f"ETTh1 ({dataset.path})"
    except FileNotFoundError as err:
        print(f"ETTh1 not found: {err}\n-> using the embedded synthetic ETTh1-shaped series instead.\n")
    values = synthetic_etth1(spec.n_rows)
    columns = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
    return LoadedDataset(spec=spec, path=Path("embedded-synthetic"), columns=columns, values=values), (
        "embedded synthetic ETTh1-shaped series (no published numbers apply)"
    )


def plot_forecasts(records: list[dict], path: Path) -> None:
    """The first test window: the input, the truth and each model's forecast."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5), dpi=110)
    example = records[0]["example_window"]
    context, truth = example["context"], example["truth"]
    x_ctx = np.arange(-len(context), 0)
    x_fut = np.arange(len(truth))
    ax.plot(x_ctx, context, color="0.4", lw=1.2, label="input window")
    ax.plot(x_fut, truth, color="black", lw=1.5, label="truth")
    for record, colour in zip(records, ("tab:red", "tab:blue")):
        ax.plot(x_fut, record["example_window"]["forecast"], color=colour, lw=1.3, label=record["model"])
    ax.axvline(0, color="0.7", lw=0.8)
    ax.set_xlabel("hours from forecast start")
    ax.set_ylabel(f"{example['variate']} (standardised)")
    ax.set_title(f"First test window, H={HORIZON}")
    ax.legend(loc="upper left", fontsize=8, ncol=4)
    save_plot(fig, path)


class Quickstart(Command):
    """TimesCLIP against NLinear on ETTh1 (L = H = 96) in minutes, beside the published numbers."""

    name = "quickstart"
    flags = ("data_dir", "output", "scale", *CAPS_FLAGS, "progress_bar", "verbose")
    defaults = {"output": Path("outputs/quickstart")}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed (the benchmark tiers' default)")
        parser.add_argument(
            "--test-windows",
            type=positive_int,
            default=None,
            help="score only the first N test windows, a smoke run (default: every window)",
        )

    def execute(self, args: argparse.Namespace) -> int:
        """Train both models, print the table, save the plot and the records."""
        import sys

        progress_bar = sys.stderr.isatty() if args.progress_bar is None else args.progress_bar
        dataset, source = load_etth1(args.data_dir)
        data = prepare(dataset, LOOKBACK)
        output = Path(args.output)
        settings = RunSettings(  # a two-job demo that writes no run files: nothing to resume
            output_dir=output,
            progress_bar=progress_bar,
            command="python -m benchmarks quickstart",
            epoch_checkpoints=False,
        )
        caps = TrainingCaps(*(getattr(args, name) for name in CAPS_FLAGS))  # each one given replaces the default's
        jobs = [
            Job(
                "ETTh1",
                HORIZON,
                LOOKBACK,
                model_config(name, "ETTh1", HORIZON, scale=args.scale),
                args.seed,
                default.override(caps),
            )
            for name, default in (("timesclip", TIMESCLIP_CAPS), ("nlinear", TrainingCaps()))
        ]
        records = []
        for job in jobs:
            print(f"Training {job.model.name} ...", flush=True)
            record = run_job(job, data, settings, scorer=partial(score_test_windows, max_windows=args.test_windows))
            records.append(record)
            print(
                f"  done: {record['timing']['train_seconds']:.0f} s training, "
                f"{record['timing']['inference_seconds']:.0f} s forecasting "
                f"{record['metrics']['n_test_windows']} windows"
            )
        print_table(records, source, synthetic=dataset.path.name == "embedded-synthetic")
        plot = output / "forecast_vs_truth.png"
        plot_forecasts(records, plot)
        write_text_atomic(output / "quickstart.json", json.dumps(records, indent=1) + "\n")
        print(f"\nPlot: {plot}\nResults: {output / 'quickstart.json'}")
        return 0


def print_table(records: list[dict], source: str, synthetic: bool) -> None:
    """Our MSE and MAE beside the published L = 96 numbers (none on the synthetic stand-in)."""
    from benchmarks.anchors import find_anchor

    print(
        f"\nData: {source}; L={LOOKBACK}, H={HORIZON}; metrics on the {METRIC_SCALE} scale, "
        f"{records[0]['metrics']['n_test_windows']} test windows."
    )
    timesclip = records[0]["budget"]
    print(
        f"TimesCLIP: `{records[0]['backbone']}` preset, random CLIP weights (no pretrained weights on this machine), "
        f"{timesclip['epoch_limit']} epochs over the {timesclip['train_windows_per_epoch']} latest windows.\n"
    )
    print("| model | MSE | MAE | published MSE / MAE (L=96) |")
    print("|---|---|---|---|")
    for record in records:
        anchor = None if synthetic else find_anchor("ETTh1", HORIZON, LOOKBACK, record["model"])
        published = f"{anchor.mse:.3f} / {anchor.mae:.3f} [{anchor.source}]" if anchor else "-"
        m = record["metrics"]
        print(f"| {record['model']} | {m['mse']:.3f} | {m['mae']:.3f} | {published} |")
    if not synthetic:
        context = [find_anchor("ETTh1", HORIZON, LOOKBACK, name) for name in ("itransformer", "patchtst", "dlinear")]
        print(
            "\nPublished ETTh1 H=96, L=96 for context: "
            + ", ".join(f"{a.model} {a.mse:.3f} / {a.mae:.3f}" for a in context if a is not None)
            + " [iTransformer paper, Table 10]."
        )
