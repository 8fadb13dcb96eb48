"""Which view helps? ``python -m benchmarks ablate``: TimesCLIP's configurations side by side, with seed spread.

Every configuration of :data:`benchmarks.models.TIMESCLIP_CONFIGURATIONS` (``full``, the paper's model, and each with
one change: ``no-alignment``, ``language-only``, ``gasf``, ...) is the suite's TimesCLIP (the paper's training setup,
the ``compact`` backbone with random weights unless ``--backbone`` says otherwise), trained under the standard tier's
CPU budget (2 epochs over the most recent 4,096 windows; ``--max-epochs`` / ``--max-samples-per-ts`` replace it) on
the suite's protocol (L = 96, chronological splits, train-split scaling). The model of configuration ``c`` is named
``timesclip-c``.

Each (dataset, configuration, seed) is one benchmark job (one result file under ``<output>/runs``, resumable).
The report (``ablations.csv``, ``ablations.md``, ``ablations.png``) gives mean ± standard deviation over seeds, the
difference to ``full`` and whether it exceeds the seed spread (:func:`benchmarks.stats.seed_verdict`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.models import TIMESCLIP_CONFIGURATIONS, TrainingCaps, model_config
from benchmarks.report import command_markdown, pyplot, save_plot
from benchmarks.runner import Job
from benchmarks.stats import mean_std, seed_verdict
from benchmarks.study import (
    CAPS_FLAGS,
    SWEEP_FLAGS,
    TRAINING_FLAGS,
    Study,
    StudyOptions,
    datasets_argument,
    forecast_row,
)
from benchmarks.tiers import get_tier

ABLATION_DATASETS = ("ETTh1", "ETTh2", "ETTm1", "weather", "exchange_rate")
HORIZON = LOOKBACK = 96
ABLATION_SEEDS = (2021, 2022, 2023)
ORDER = {c: k for k, c in enumerate(TIMESCLIP_CONFIGURATIONS)}


def ablation_caps() -> TrainingCaps:
    """The standard tier's budget for TimesCLIP."""
    return get_tier("standard").caps["timesclip"]


def _cells(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[float]]:
    cells: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        cells.setdefault((row["dataset"], row["variant"]), []).append(row["mse"])
    return cells


@dataclass(frozen=True)
class AblateStudy(Study):
    """TimesCLIP's configurations side by side over seeds, then their report."""

    name = "ablate"
    flags = (*SWEEP_FLAGS, *CAPS_FLAGS, *TRAINING_FLAGS)
    defaults = {"seeds": ABLATION_SEEDS}
    output_name = "ablations"
    report_stem = "ablations"
    coordinates = ("configuration",)

    datasets: tuple[str, ...] = ABLATION_DATASETS
    configurations: tuple[str, ...] = tuple(TIMESCLIP_CONFIGURATIONS)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        datasets_argument(parser, cls.datasets)
        parser.add_argument(
            "--configurations",
            "--variants",
            nargs="+",
            choices=list(TIMESCLIP_CONFIGURATIONS),
            default=cls.configurations,
            help="configurations to run (default: all)",
        )

    def jobs(self, options: StudyOptions) -> list[Job]:
        """One job per (dataset, configuration, seed); the model of configuration ``c`` is ``timesclip-c``.

        Raises
        ------
        ValueError
            For an unknown configuration, or ``periodic`` on a dataset whose frequency has no natural period.
        """
        unknown = [c for c in self.configurations if c not in TIMESCLIP_CONFIGURATIONS]
        if unknown:
            raise ValueError(f"Unknown configuration(s) {unknown}; choose from {list(TIMESCLIP_CONFIGURATIONS)}.")
        caps = ablation_caps().override(options.caps)
        backbone, scale = options.timesclip_backbone(), options.scale or "official"
        return [
            Job(dataset, HORIZON, LOOKBACK, config, seed, caps, study=self.name, coordinates={"configuration": c})
            for dataset in self.datasets
            for c in self.configurations
            for config in [model_config(f"timesclip-{c}", dataset, HORIZON, scale=scale, backbone=backbone)]
            for seed in options.seeds
        ]

    def table(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One row per finished job: dataset, horizon, variant (its configuration), seed, mse, mae, train seconds,
        backbone."""
        rows = [
            forecast_row(
                record,
                {"variant": record["coordinates"]["configuration"]},
                train_seconds=record.get("timing", {}).get("train_seconds"),
                backbone=record.get("backbone", ""),
            )
            for record in records
        ]
        return sorted(rows, key=lambda r: (r["dataset"], ORDER.get(r["variant"], len(ORDER)), r["seed"]))

    def markdown(
        self, rows: Sequence[dict[str, Any]], commands: Sequence[str] = (), options: StudyOptions | None = None
    ) -> str:
        """Per dataset: MSE mean ± std (n seeds), difference to ``full`` and its verdict; then a summary per
        configuration."""
        cells = _cells(rows)
        datasets = sorted({r["dataset"] for r in rows})
        variants = [v for v in TIMESCLIP_CONFIGURATIONS if any(r["variant"] == v for r in rows)]
        backbones = sorted({str(r["backbone"]) for r in rows})
        lines = [
            "# Ablations: which view and which variant helps",
            "",
            f"H = {HORIZON}, L = {LOOKBACK}, the standard tier's CPU budget for TimesCLIP (2 epochs over the most "
            f"recent 4,096 windows); backbone {', '.join(f'`{b}`' for b in backbones)} with random weights. Test MSE "
            "on the scaled series, mean ± standard deviation over seeds (n in brackets). `Δ` is the variant's mean "
            "minus `full`'s (negative: better). The verdict counts a difference only when both rows have at least two "
            "seeds and it exceeds the larger of their standard deviations.",
            "",
        ]
        lines += command_markdown(commands)
        for dataset in datasets:
            full = cells.get((dataset, "full"), [])
            lines += [f"## {dataset}", "", "| configuration | MSE | Δ to full | verdict |", "|---|---|---|---|"]
            for variant in variants:
                values = cells.get((dataset, variant))
                if not values:
                    lines.append(f"| {variant} | - | - | not run |")
                    continue
                mean, std = mean_std(values)
                if variant == "full" or not full:
                    delta, verdict = "", "reference" if variant == "full" else "no `full` rows"
                else:
                    delta = f"{mean - mean_std(full)[0]:+.4f}"
                    verdict = seed_verdict(values, full)
                lines.append(f"| {variant} | {mean:.4f} ± {std:.4f} ({len(values)}) | {delta} | {verdict} |")
            lines.append("")
        lines += _relative_matrix(cells, datasets, variants)
        lines += ["## Summary", "", "| configuration | better than full | worse | within spread | not judged |"]
        lines.append("|---|---|---|---|---|")
        for variant in (v for v in variants if v != "full"):
            counts = {"better": 0, "worse": 0, "within spread": 0, "one seed": 0}
            for dataset in datasets:
                values, full = cells.get((dataset, variant)), cells.get((dataset, "full"))
                if values and full:
                    counts[seed_verdict(values, full)] += 1
            lines.append(
                f"| {variant} | {counts['better']} | {counts['worse']} | {counts['within spread']} "
                f"| {counts['one seed']} |"
            )
        return "\n".join([*lines, ""])

    def plot(self, rows: Sequence[dict[str, Any]], path: Path) -> Path:
        """MSE relative to ``full`` per dataset (mean over seeds, bars: one standard deviation of the variant)."""
        plt = pyplot()
        cells = _cells(rows)
        datasets = sorted({r["dataset"] for r in rows if cells.get((r["dataset"], "full"))})
        variants = [v for v in TIMESCLIP_CONFIGURATIONS if v != "full" and any(r["variant"] == v for r in rows)]
        fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(variants) + 2), 3.8))
        width = 0.8 / max(1, len(datasets))
        for k, dataset in enumerate(datasets):
            full = mean_std(cells[(dataset, "full")])[0]
            stats = [mean_std(cells.get((dataset, v)) or [np.nan]) for v in variants]
            x = np.arange(len(variants)) + (k - (len(datasets) - 1) / 2) * width
            ax.bar(x, [m / full for m, _ in stats], width, yerr=[s / full for _, s in stats], label=dataset, capsize=2)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(variants)), variants, rotation=30, ha="right")
        ax.set_ylabel("test MSE / full's")
        ax.set_title(f"TimesCLIP ablations (H = {HORIZON}); below 1 is better than full")
        ax.legend(fontsize=8)
        return save_plot(fig, path)


def _relative_matrix(
    cells: dict[tuple[str, str], list[float]], datasets: Sequence[str], variants: Sequence[str]
) -> list[str]:
    """Every configuration against ``full`` on every dataset, in one table: the relative difference of the mean MSE
    and, where it exceeds the seed spread, the verdict in bold."""
    lines = [
        "## Relative to full",
        "",
        "Mean MSE relative to `full` on the same dataset (negative: better); **better** / **worse** only where the "
        "difference exceeds the seed spread; `-`: not run.",
        "",
        "| configuration | " + " | ".join(datasets) + " |",
        "|---" * (len(datasets) + 1) + "|",
    ]
    for variant in (v for v in variants if v != "full"):
        texts = []
        for dataset in datasets:
            values, full = cells.get((dataset, variant)), cells.get((dataset, "full"))
            if not values or not full:
                texts.append("-")
                continue
            relative = mean_std(values)[0] / mean_std(full)[0] - 1.0
            verdict = seed_verdict(values, full)
            note = {"better": " **better**", "worse": " **worse**", "one seed": " (one seed)"}.get(verdict, "")
            texts.append(f"{relative:+.1%}{note}")
        lines.append(f"| {variant} | " + " | ".join(texts) + " |")
    return [*lines, ""]
