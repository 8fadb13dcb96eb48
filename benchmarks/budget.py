"""Is TimesCLIP budget-limited on CPU? ``python -m benchmarks budget``: test MSE as the training budget grows.

The ``compact`` TimesCLIP (random weights) beside NLinear and iTransformer, each at the same budget points, on the
suite's protocol (H = L = 96):

==============  ====================================================================================================
``2x4096``      2 epochs over the most recent 4,096 train (and validation) windows: the quick/standard tiers' CPU budget
``2xall``       2 epochs over every window
``10xall-es``   up to 10 epochs over every window, early stopping on the validation loss with patience 3
``full``        each model's own published setup, uncapped (TimesCLIP: 100 epochs, patience 30; GPU-sized)
==============  ====================================================================================================

Each (dataset, model, budget, seed) is one benchmark job; ``budget.csv``, ``budget.md`` and ``budget.png`` hold the
curve (mean ± standard deviation over seeds, with the windows seen in training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.models import TrainingCaps, model_config
from benchmarks.runner import Job, command_markdown, load_results, write_study_files
from benchmarks.stats import mean_std
from darts_timesclip._io import save_figure_atomic

HORIZON = LOOKBACK = 96
BUDGET_DATASETS = ("ETTh1", "ETTh2")
BUDGET_MODELS = ("timesclip", "nlinear", "itransformer")


@dataclass(frozen=True)
class BudgetPoint:
    """One point of the curve: caps on epochs and windows, and an optional early-stopping patience override."""

    caps: TrainingCaps
    patience: int | None = None
    description: str = ""


BUDGETS: dict[str, BudgetPoint] = {
    "2x4096": BudgetPoint(TrainingCaps(max_epochs=2, max_samples_per_ts=4096), None, "2 epochs x 4,096 windows"),
    "2xall": BudgetPoint(TrainingCaps(max_epochs=2), None, "2 epochs x all windows"),
    "10xall-es": BudgetPoint(TrainingCaps(max_epochs=10), 3, "<= 10 epochs x all windows, patience 3"),
    "full": BudgetPoint(TrainingCaps(), None, "each model's own setup (GPU-sized for TimesCLIP)"),
}
"""Budget points by name, in increasing order of compute."""


def budget_jobs(
    datasets: Sequence[str],
    models: Sequence[str] = BUDGET_MODELS,
    budgets: Sequence[str] = ("2x4096", "2xall", "10xall-es"),
    seeds: Sequence[int] = (2021,),
    *,
    scale: str = "official",
    backbone: str = "compact",
) -> list[Job]:
    """The curve's jobs; ``Job.tier`` is ``budget:<name>``.

    Raises
    ------
    ValueError
        For an unknown budget point.
    """
    unknown = [b for b in budgets if b not in BUDGETS]
    if unknown:
        raise ValueError(f"Unknown budget(s) {unknown}; choose from {list(BUDGETS)}.")
    jobs = []
    for dataset in datasets:
        for model in models:
            base = model_config(model, dataset, HORIZON, scale=scale, backbone=backbone)
            for name in budgets:
                point = BUDGETS[name]
                config = base
                if point.patience is not None and base.patience is not None:
                    config = replace(base, patience=min(base.patience, point.patience))
                jobs.extend(
                    Job(dataset, HORIZON, LOOKBACK, config, seed, point.caps, tier=f"budget:{name}") for seed in seeds
                )
    return jobs


def budget_table(output_dir: Path) -> list[dict[str, Any]]:
    """One row per finished budget job: dataset, model, budget, seed, mse, mae, epochs run, train seconds."""
    rows = []
    for record in load_results(output_dir):
        tier = str(record.get("tier", ""))
        if not tier.startswith("budget:"):
            continue
        budget = record.get("budget", {})
        rows.append(
            {
                "dataset": record["dataset"],
                "horizon": record["horizon"],
                "model": record["model"],
                "budget": tier.split(":", 1)[1],
                "seed": record["seed"],
                "mse": record["metrics"]["mse"],
                "mae": record["metrics"]["mae"],
                "epochs": budget.get("epochs_run"),
                "train_windows": budget.get("train_windows_per_epoch"),
                "train_seconds": record.get("timing", {}).get("train_seconds"),
            }
        )
    order = {b: k for k, b in enumerate(BUDGETS)}
    return sorted(rows, key=lambda r: (r["dataset"], r["model"], order.get(r["budget"], len(order)), r["seed"]))


def budget_markdown(rows: Sequence[dict[str, Any]], command: str = "") -> str:
    """Per dataset: models x budget points, test MSE mean ± std (n seeds)."""
    cells: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        cells.setdefault((row["dataset"], row["model"], row["budget"]), []).append(row["mse"])
    budgets = [b for b in BUDGETS if any(r["budget"] == b for r in rows)]
    lines = [
        "# Training budget against test MSE",
        "",
        f"H = {HORIZON}, L = {LOOKBACK}; TimesCLIP is the `compact` backbone with random weights. Test MSE on the "
        "scaled series, mean ± standard deviation over seeds (n in brackets). Budgets: "
        + "; ".join(f"`{b}` {BUDGETS[b].description}" for b in budgets)
        + ".",
        "",
    ]
    lines += command_markdown(command)
    for dataset in sorted({r["dataset"] for r in rows}):
        lines += [f"## {dataset}", "", "| model | " + " | ".join(budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
        for model in sorted({r["model"] for r in rows if r["dataset"] == dataset}):
            cells_text = []
            for budget in budgets:
                values = cells.get((dataset, model, budget))
                if values:
                    mean, std = mean_std(values)
                    cells_text.append(f"{mean:.4f} ± {std:.4f} ({len(values)})")
                else:
                    cells_text.append("-")
            lines.append(f"| {model} | " + " | ".join(cells_text) + " |")
        lines.append("")
    return "\n".join(lines)


def write_budget_report(output_dir: Path, results_dir: Path, plots: bool = True, command: str = "") -> list[Path]:
    """Write ``budget.csv``, ``budget.md`` (and ``budget.png``) into ``results_dir``.

    Raises
    ------
    ValueError
        If ``output_dir`` holds no finished budget job.
    """
    rows = budget_table(output_dir)
    if not rows:
        raise ValueError(f"No finished budget job under `{output_dir}`; run `python -m benchmarks budget` first.")
    plot = (lambda path: _plot(rows, path)) if plots else None
    return write_study_files(results_dir, "budget", rows, budget_markdown(rows, command), plot)


def _plot(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in rows})
    budgets = [b for b in BUDGETS if any(r["budget"] == b for r in rows)]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for model in sorted({r["model"] for r in rows if r["dataset"] == dataset}):
            stats = [
                mean_std([r["mse"] for r in rows if (r["dataset"], r["model"], r["budget"]) == (dataset, model, b)])
                if any((r["dataset"], r["model"], r["budget"]) == (dataset, model, b) for r in rows)
                else (np.nan, np.nan)
                for b in budgets
            ]
            ax.errorbar(range(len(budgets)), [m for m, _ in stats], yerr=[s for _, s in stats], marker="o", label=model)
        ax.set_xticks(range(len(budgets)), budgets)
        ax.set_title(f"{dataset}, H = {HORIZON}")
        ax.set_ylabel("test MSE")
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)
    return path
