"""Which view helps? ``python -m benchmarks ablate``: TimesCLIP's views and variants side by side, with seed spread.

Every configuration is the suite's ``timesclip`` (the paper's training setup, the ``compact`` backbone with random
weights unless ``--backbone`` says otherwise) with one change, trained under the standard tier's CPU budget (2 epochs
over the most recent 4,096 windows) on the suite's protocol (L = 96, chronological splits, train-split scaling):

============================  =====================================================================================
``full``                      both views, per-variate alignment (weight 0.1), variate selection, line charts
``no-alignment``              no contrastive loss
``no-variate-selection``      no cross-variate attention (the generator reads each variate's own tokens)
``language-only``             numeric view alone (no vision tower, hence no alignment)
``vision-only``               image view alone (no numeric tower, hence no alignment)
``sample-alignment``          one ``[B, B]`` similarity over a window's pooled variates
``hybrid-alignment``          0.5 x per-variate + 0.5 x whole-window alignment
``auto-weight``               learnt uncertainty weighting of the two losses instead of 0.1
``gasf``                      Gramian angular summation field images instead of line charts
``periodic``                  VisionTS-style grid of the window folded by the dataset's natural period
============================  =====================================================================================

Each (dataset, configuration, seed) is one benchmark job (one result file under ``<output>/runs``, resumable).
The report (``ablations.csv``, ``ablations.md``, ``ablations.png``) gives mean ± standard deviation over seeds, the
difference to ``full`` and whether it exceeds the seed spread (:func:`benchmarks.stats.seed_verdict`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.models import TrainingCaps, model_config
from benchmarks.registry import get_spec
from benchmarks.runner import Job, command_markdown, load_results, write_study_files
from benchmarks.stats import mean_std, seed_verdict
from benchmarks.tiers import get_tier
from darts_timesclip._io import save_figure_atomic

logger = logging.getLogger(__name__)

ABLATION_DATASETS = ("ETTh1", "ETTh2", "ETTm1", "weather", "exchange_rate")
HORIZON = LOOKBACK = 96
ABLATION_SEEDS = (2021, 2022, 2023)

ABLATIONS: dict[str, dict[str, Any]] = {
    "full": {},
    "no-alignment": {"use_alignment": False},
    "no-variate-selection": {"use_variate_selection": False},
    "language-only": {"use_vision": False, "use_alignment": False},
    "vision-only": {"use_numeric": False, "use_alignment": False},
    "sample-alignment": {"alignment": "sample"},
    "hybrid-alignment": {"alignment": "hybrid", "alignment_mix": 0.5},
    "auto-weight": {"alignment_weight": "auto"},
    "gasf": {"image_encoding": "gasf"},
    "periodic": {"image_encoding": "periodic"},
}
"""Configuration name -> the ``TimesCLIPModel`` arguments it changes from ``full``."""


def ablation_caps() -> TrainingCaps:
    """The standard tier's budget for TimesCLIP."""
    return get_tier("standard").caps["timesclip"]


def ablation_jobs(
    datasets: Sequence[str],
    seeds: Sequence[int] = ABLATION_SEEDS,
    variants: Sequence[str] = tuple(ABLATIONS),
    *,
    scale: str = "official",
    backbone: str = "compact",
    caps: TrainingCaps | None = None,
) -> list[Job]:
    """The study's jobs; ``Job.tier`` is ``ablate:<variant>`` and the model is named ``timesclip-<variant>``.

    Raises
    ------
    ValueError
        For an unknown variant, or ``periodic`` on a dataset whose frequency has no natural period.
    """
    from darts_timesclip.network.image_encodings import period_from_freq

    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown:
        raise ValueError(f"Unknown ablation(s) {unknown}; choose from {list(ABLATIONS)}.")
    caps = caps or ablation_caps()
    jobs = []
    for dataset in datasets:
        base = model_config("timesclip", dataset, HORIZON, scale=scale, backbone=backbone)
        for variant in variants:
            changes = dict(ABLATIONS[variant])
            if changes.get("image_encoding") == "periodic":
                freq = get_spec(dataset).freq
                period = period_from_freq(freq)
                if period is None:
                    raise ValueError(f"Ablation `periodic` needs a period; `{dataset}`'s frequency `{freq}` has none.")
                changes["period"] = period  # the suite's series are integer-indexed, so it is given, not derived
            config = replace(base, name=f"timesclip-{variant}", architecture={**base.architecture, **changes})
            jobs.extend(Job(dataset, HORIZON, LOOKBACK, config, seed, caps, tier=f"ablate:{variant}") for seed in seeds)
    return jobs


def ablation_table(output_dir: Path) -> list[dict[str, Any]]:
    """One row per finished ablation job: dataset, horizon, variant, seed, mse, mae, train_seconds, backbone."""
    rows = []
    for record in load_results(output_dir):
        tier = str(record.get("tier", ""))
        if not tier.startswith("ablate:"):
            continue
        rows.append(
            {
                "dataset": record["dataset"],
                "horizon": record["horizon"],
                "variant": tier.split(":", 1)[1],
                "seed": record["seed"],
                "mse": record["metrics"]["mse"],
                "mae": record["metrics"]["mae"],
                "train_seconds": record.get("timing", {}).get("train_seconds"),
                "backbone": record.get("backbone", ""),
            }
        )
    order = {v: k for k, v in enumerate(ABLATIONS)}
    return sorted(rows, key=lambda r: (r["dataset"], order.get(r["variant"], len(order)), r["seed"]))


def _cells(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], list[float]]:
    cells: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        cells.setdefault((row["dataset"], row["variant"]), []).append(row["mse"])
    return cells


def ablation_markdown(rows: Sequence[dict[str, Any]], command: str = "") -> str:
    """Per dataset: MSE mean ± std (n seeds), difference to ``full`` and its verdict; then a summary per variant."""
    cells = _cells(rows)
    datasets = sorted({r["dataset"] for r in rows})
    variants = [v for v in ABLATIONS if any(r["variant"] == v for r in rows)]
    backbones = sorted({str(r["backbone"]) for r in rows})
    lines = [
        "# Ablations: which view and which variant helps",
        "",
        f"H = {HORIZON}, L = {LOOKBACK}, the standard tier's CPU budget for TimesCLIP (2 epochs over the most recent "
        f"4,096 windows); backbone {', '.join(f'`{b}`' for b in backbones)} with random weights. Test MSE on the "
        "scaled series, mean ± standard deviation over seeds (n in brackets). `Δ` is the variant's mean minus "
        "`full`'s (negative: better). The verdict counts a difference only when both rows have at least two seeds "
        "and it exceeds the larger of their standard deviations.",
        "",
    ]
    lines += command_markdown(command)
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
            f"| {variant} | {counts['better']} | {counts['worse']} | {counts['within spread']} | {counts['one seed']} |"
        )
    return "\n".join([*lines, ""])


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


def write_ablation_report(output_dir: Path, results_dir: Path, plots: bool = True, command: str = "") -> list[Path]:
    """Write ``ablations.csv``, ``ablations.md`` (and ``ablations.png``) into ``results_dir``.

    Raises
    ------
    ValueError
        If ``output_dir`` holds no finished ablation job.
    """
    rows = ablation_table(output_dir)
    if not rows:
        raise ValueError(f"No finished ablation job under `{output_dir}`; run `python -m benchmarks ablate` first.")
    plot = (lambda path: _plot(rows, path)) if plots else None
    return write_study_files(results_dir, "ablations", rows, ablation_markdown(rows, command), plot)


def _plot(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """MSE relative to ``full`` per dataset (mean over seeds, bars: one standard deviation of the variant)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = _cells(rows)
    datasets = sorted({r["dataset"] for r in rows if cells.get((r["dataset"], "full"))})
    variants = [v for v in ABLATIONS if v != "full" and any(r["variant"] == v for r in rows)]
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
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
    plt.close(fig)
    return path
