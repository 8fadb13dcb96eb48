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

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.models import TrainingCaps, model_config
from benchmarks.report import command_markdown, pyplot, save_plot
from benchmarks.runner import Job
from benchmarks.stats import mean_std
from benchmarks.study import (
    Study,
    StudyOptions,
    datasets_argument,
    forecast_row,
    model_name,
)

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


@dataclass(frozen=True)
class BudgetStudy(Study):
    """Test MSE as the training budget grows, TimesCLIP beside baselines."""

    name = "budget"
    output_name = "budget"
    report_stem = "budget"
    coordinates = ("budget",)

    datasets: tuple[str, ...] = BUDGET_DATASETS
    models: tuple[str, ...] = BUDGET_MODELS
    budgets: tuple[str, ...] = ("2x4096", "2xall", "10xall-es")

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        datasets_argument(parser, cls.datasets)
        parser.add_argument("--models", nargs="+", type=model_name, default=cls.models, help="default: %(default)s")
        parser.add_argument("--budgets", nargs="+", choices=list(BUDGETS), default=cls.budgets, help="curve points")

    def jobs(self, options: StudyOptions) -> list[Job]:
        """One job per (dataset, model, budget point, seed).

        Raises
        ------
        ValueError
            For an unknown budget point.
        """
        unknown = [b for b in self.budgets if b not in BUDGETS]
        if unknown:
            raise ValueError(f"Unknown budget(s) {unknown}; choose from {list(BUDGETS)}.")
        jobs = []
        backbone, scale = options.timesclip_backbone(), options.scale or "official"
        for dataset in self.datasets:
            for model in self.models:
                base = model_config(model, dataset, HORIZON, scale=scale, backbone=backbone)
                for name in self.budgets:
                    point = BUDGETS[name]
                    config = base
                    if point.patience is not None and base.patience is not None:
                        config = replace(base, patience=min(base.patience, point.patience))
                    jobs.extend(
                        Job(
                            dataset,
                            HORIZON,
                            LOOKBACK,
                            config,
                            seed,
                            point.caps,
                            study=self.name,
                            coordinates={"budget": name},
                        )
                        for seed in options.seeds
                    )
        return jobs

    def table(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One row per finished job: dataset, model, budget, seed, mse, mae, epochs run, train windows and seconds."""
        rows = [
            forecast_row(
                record,
                {"model": record["model"], "budget": record["coordinates"]["budget"]},
                epochs=record.get("budget", {}).get("epochs_run"),
                train_windows=record.get("budget", {}).get("train_windows_per_epoch"),
                train_seconds=record.get("timing", {}).get("train_seconds"),
            )
            for record in records
        ]
        order = {b: k for k, b in enumerate(BUDGETS)}
        return sorted(rows, key=lambda r: (r["dataset"], r["model"], order.get(r["budget"], len(order)), r["seed"]))

    def markdown(
        self, rows: Sequence[dict[str, Any]], commands: Sequence[str] = (), options: StudyOptions | None = None
    ) -> str:
        """Per dataset: models x budget points, test MSE mean ± std (n seeds)."""
        cells = _cells(rows)
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
        lines += command_markdown(commands)
        for dataset in sorted({r["dataset"] for r in rows}):
            lines += [f"## {dataset}", "", "| model | " + " | ".join(budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
            for model in sorted({r["model"] for r in rows if r["dataset"] == dataset}):
                texts = []
                for budget in budgets:
                    values = cells.get((dataset, model, budget))
                    texts.append(
                        f"{mean_std(values)[0]:.4f} ± {mean_std(values)[1]:.4f} ({len(values)})" if values else "-"
                    )
                lines.append(f"| {model} | " + " | ".join(texts) + " |")
            lines.append("")
        return "\n".join(lines)

    def plot(self, rows: Sequence[dict[str, Any]], path: Path) -> Path:
        """Test MSE against the budget point, one panel per dataset, one line per model (bars: the seed spread)."""
        plt = pyplot()
        cells = _cells(rows)
        datasets = sorted({r["dataset"] for r in rows})
        budgets = [b for b in BUDGETS if any(r["budget"] == b for r in rows)]
        fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.4), squeeze=False)
        for ax, dataset in zip(axes[0], datasets):
            for model in sorted({r["model"] for r in rows if r["dataset"] == dataset}):
                stats = [mean_std(cells.get((dataset, model, b)) or [np.nan]) for b in budgets]
                ax.errorbar(
                    range(len(budgets)), [m for m, _ in stats], yerr=[s for _, s in stats], marker="o", label=model
                )
            ax.set_xticks(range(len(budgets)), budgets)
            ax.set_title(f"{dataset}, H = {HORIZON}")
            ax.set_ylabel("test MSE")
            ax.legend(fontsize=8)
        return save_plot(fig, path)


def _cells(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str], list[float]]:
    cells: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        cells.setdefault((row["dataset"], row["model"], row["budget"]), []).append(row["mse"])
    return cells
