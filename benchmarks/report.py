"""Aggregate result files into ``results.csv``, ``results.md`` and plots."""

from __future__ import annotations

import csv
import io
import logging
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.anchors import find_anchor
from benchmarks.models import DEFAULT_MODELS, MODEL_NAMES
from benchmarks.protocol import SCALER_DESCRIPTION
from benchmarks.registry import REGISTRY
from benchmarks.runner import load_results
from darts_timesclip._io import atomic_path, save_figure_atomic, write_text_atomic

logger = logging.getLogger(__name__)

CSV_COLUMNS = (
    "dataset",
    "horizon",
    "lookback",
    "model",
    "mse",
    "mae",
    "seed",
    "tier",
    "backbone",
    "pretrained",
    "n_test_windows",
    "train_seconds",
    "inference_seconds",
    "params_total",
    "params_trainable",
    "peak_memory_mb",
    "epochs_run",
    "epoch_limit",
    "max_samples_per_ts",
    "max_steps",
    "machine",
    "run_id",
)
_TIER_RANK = {"smoke": 0, "custom": 1, "quick": 2, "standard": 3, "full": 4}
_DATASET_ORDER = {name: i for i, name in enumerate(REGISTRY)}
_MODEL_ORDER = {name: i for i, name in enumerate(MODEL_NAMES)}


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """One result record as a ``results.csv`` row."""
    budget = record["budget"]
    return {
        "dataset": record["dataset"],
        "horizon": record["horizon"],
        "lookback": record["lookback"],
        "model": record["model"],
        "mse": record["metrics"]["mse"],
        "mae": record["metrics"]["mae"],
        "seed": record["seed"],
        "tier": record["tier"],
        "backbone": record["backbone"],
        "pretrained": record["pretrained"],
        "n_test_windows": record["metrics"]["n_test_windows"],
        "train_seconds": round(record["timing"]["train_seconds"], 2),
        "inference_seconds": round(record["timing"]["inference_seconds"], 2),
        "params_total": record["parameters"]["total"],
        "params_trainable": record["parameters"]["trainable"],
        "peak_memory_mb": _round(record["memory"]["peak_mb"], 1),
        "epochs_run": budget["epochs_run"],
        "epoch_limit": budget["epoch_limit"],
        "max_samples_per_ts": budget["max_samples_per_ts"],
        "max_steps": budget["max_steps"],
        "machine": record["machine"]["label"],
        "run_id": record["run_id"],
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _sort_key(row: dict[str, Any]) -> tuple:
    return (
        _DATASET_ORDER.get(row["dataset"], 99),
        row["horizon"],
        row["lookback"],
        _MODEL_ORDER.get(row["model"], 99),
        _TIER_RANK.get(row["tier"], 1),
        row.get("seed", 0),
    )


@dataclass(frozen=True)
class Group:
    """Results of one (dataset, horizon, lookback, model, tier), averaged over seeds."""

    dataset: str
    horizon: int
    lookback: int
    model: str
    tier: str
    rows: tuple[dict[str, Any], ...]

    @property
    def mse(self) -> float:
        return statistics.fmean(r["mse"] for r in self.rows)

    @property
    def mae(self) -> float:
        return statistics.fmean(r["mae"] for r in self.rows)

    def mean(self, column: str) -> float:
        return statistics.fmean(r[column] for r in self.rows)


def group_rows(rows: Sequence[dict[str, Any]]) -> list[Group]:
    """Group CSV rows by (dataset, horizon, lookback, model, tier), in table order."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=_sort_key):
        key = (row["dataset"], row["horizon"], row["lookback"], row["model"], row["tier"])
        groups.setdefault(key, []).append(row)
    return [Group(*key, rows=tuple(members)) for key, members in groups.items()]


def _gap(ours: float, published: float) -> str:
    return f"{100.0 * (ours - published) / published:+.1f}%"


def _unique(values: Sequence[Any]) -> str:
    return ", ".join(sorted({str(v) for v in values}))


def markdown_table(rows: Sequence[dict[str, Any]], commands: Sequence[str]) -> str:
    """``results.md``: our numbers beside the published ones, with the gap."""
    groups = group_rows(rows)
    backbones = sorted({(r["backbone"], r["pretrained"]) for r in rows if r["model"].startswith("timesclip")})
    backbone_text = (
        "; ".join(
            f"`{name}` ({'pretrained weights' if pretrained else 'random initialisation, not pretrained'})"
            for name, pretrained in backbones
        )
        or "no TimesCLIP run"
    )
    out = io.StringIO()
    out.write("# Benchmark results\n\n")
    out.write(
        f"**Metrics are on the standardised scale**: MSE and MAE after a {SCALER_DESCRIPTION}, "
        "averaged over every stride-1 test window, forecast step and variate "
        "(Time-Series-Library splits).\n\n"
    )
    out.write(f"- Machine: {_unique([r['machine'] for r in rows]) or 'n/a'}\n")
    out.write(f"- TimesCLIP backbone: {backbone_text}\n")
    out.write("- Baselines have no backbone (`n/a`).\n")
    out.write(
        "- Published: the paper's number for the same dataset, horizon, lookback and model "
        "(sources below); gap = (ours - published) / published.\n"
    )
    out.write(
        "- Budget: epochs run / epoch limit (the model's own epochs, capped by the tier), and the cap on "
        "training windows per epoch where there is one. Early stopping on the validation split.\n"
    )
    if commands:
        out.write("- Produced by:\n")
        for command in commands:
            out.write(f"  - `{command}`\n")
    out.write("\n")
    header = (
        "| dataset | H | L | model | tier | seeds | MSE | MAE | published MSE | published MAE "
        "| gap MSE | gap MAE | epochs run / limit | train windows cap | train s | params |\n"
    )
    out.write(header)
    out.write("|" + "---|" * (header.count("|") - 1) + "\n")
    sources: dict[str, None] = {}
    for g in groups:
        anchor = find_anchor(g.dataset, g.horizon, g.lookback, g.model)
        if anchor is not None:
            sources[anchor.source] = None
        pub_mse = f"{anchor.mse:.3f}" if anchor else "-"
        pub_mae = f"{anchor.mae:.3f}" if anchor else "-"
        gap_mse = _gap(g.mse, anchor.mse) if anchor else "-"
        gap_mae = _gap(g.mae, anchor.mae) if anchor else "-"
        epochs = _unique([f"{r['epochs_run']} / {r['epoch_limit']}" for r in g.rows])
        cap = _unique([r["max_samples_per_ts"] or "all" for r in g.rows])
        out.write(
            f"| {g.dataset} | {g.horizon} | {g.lookback} | {g.model} | {g.tier} | {len(g.rows)} "
            f"| {g.mse:.3f} | {g.mae:.3f} | {pub_mse} | {pub_mae} | {gap_mse} | {gap_mae} "
            f"| {epochs} | {cap} | {g.mean('train_seconds'):.0f} | {int(g.mean('params_total')):,} |\n"
        )
    if sources:
        out.write("\nSources of the published numbers: " + "; ".join(sources) + ".\n")
    ranks = rank_summary(groups)
    if ranks:
        out.write("\n" + ranks)
    return out.getvalue()


def mse_by_cell(groups: Sequence[Group], models: Sequence[str]) -> dict[tuple[str, int, int], dict[str, float]]:
    """Per cell (dataset, H, L), the MSE of each of ``models`` that ran there (its largest-budget tier's mean over
    seeds; quick and standard share the budget at a cell both ran)."""
    by_cell: dict[tuple[str, int, int], dict[str, float]] = {}
    for g in _best_tier_groups(groups):
        if g.model in models:
            by_cell.setdefault((g.dataset, g.horizon, g.lookback), {})[g.model] = g.mse
    return by_cell


def average_ranks(
    by_cell: dict[tuple[str, int, int], dict[str, float]], models: Sequence[str]
) -> tuple[list[tuple[str, int, int]], dict[str, tuple[float, int]]]:
    """Average MSE rank of ``models`` over the cells of :func:`mse_by_cell` where every one of them ran.

    Tied MSEs share the mean of their ranks.

    Returns
    -------
    cells, ranks
        The cells compared, and per model ``(average rank, number of cells where it ranked first)``.
    """
    cells = sorted(
        (c for c, mses in by_cell.items() if set(models) <= set(mses)),
        key=lambda c: (_DATASET_ORDER.get(c[0], 99), c[1], c[2]),
    )
    if not cells:
        return [], {}
    totals = {m: [0.0, 0] for m in models}
    for cell in cells:
        mses = {m: by_cell[cell][m] for m in models}
        for model in models:
            below = sum(v < mses[model] for v in mses.values())
            tied = sum(v == mses[model] for v in mses.values())
            rank = below + (tied + 1) / 2
            totals[model][0] += rank
            totals[model][1] += rank == 1
    return cells, {m: (total / len(cells), wins) for m, (total, wins) in totals.items()}


def rank_summary(groups: Sequence[Group], models: Sequence[str] = DEFAULT_MODELS) -> str:
    """Markdown: each model's average MSE rank over the cells where all of ``models`` ran ("" if none).

    Where some of ``models`` are missing from some cells, a second table ranks the models that ran in every cell
    where any of them ran, over all those cells.
    """
    by_cell = mse_by_cell(groups, models)
    everywhere = [m for m in models if by_cell and all(m in mses for mses in by_cell.values())]
    sections = [_rank_table(by_cell, models)]
    if 2 <= len(everywhere) < len(models):
        sections.append(_rank_table(by_cell, everywhere))
    body = "\n".join(section for section in sections if section)
    return f"## Average MSE rank\n\n{body}" if body else ""


def _rank_table(by_cell: dict[tuple[str, int, int], dict[str, float]], models: Sequence[str]) -> str:
    cells, ranks = average_ranks(by_cell, models)
    if not cells:
        return ""
    lines = [
        f"Over the {len(cells)} cell(s) (dataset, H, L) where all of {', '.join(models)} ran "
        "(1 = lowest MSE; one seed per cell unless the table above says otherwise, so close ranks are not a finding):",
        "",
        "| model | average rank | lowest MSE in |",
        "|---|---|---|",
    ]
    for model in sorted(models, key=lambda m: ranks[m][0]):
        rank, wins = ranks[model]
        lines.append(f"| {model} | {rank:.2f} | {wins} of {len(cells)} |")
    return "\n".join([*lines, ""])


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Write ``results.csv`` (one row per job)."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in sorted(rows, key=_sort_key):
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS})


def _best_tier_groups(groups: Sequence[Group]) -> list[Group]:
    """Per (dataset, horizon, lookback, model), the group from the largest-budget tier."""
    chosen: dict[tuple, Group] = {}
    for g in groups:
        key = (g.dataset, g.horizon, g.lookback, g.model)
        if key not in chosen or _TIER_RANK.get(g.tier, 1) > _TIER_RANK.get(chosen[key].tier, 1):
            chosen[key] = g
    return list(chosen.values())


def plot_mse_by_horizon(groups: Sequence[Group], plot_dir: Path) -> list[Path]:
    """One bar chart per dataset and lookback: MSE by horizon and model, published marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    by_dataset: dict[tuple[str, int], list[Group]] = {}
    for g in _best_tier_groups(groups):
        by_dataset.setdefault((g.dataset, g.lookback), []).append(g)
    for (dataset, lookback), members in by_dataset.items():
        horizons = sorted({g.horizon for g in members})
        models = sorted({g.model for g in members}, key=lambda m: _MODEL_ORDER.get(m, 99))
        width = 0.8 / len(models)
        fig, ax = plt.subplots(figsize=(3.4 + 1.2 * len(horizons) * max(1, len(models) / 4), 3.0))
        for j, model in enumerate(models):
            for i, horizon in enumerate(horizons):
                match = [g for g in members if g.model == model and g.horizon == horizon]
                if not match:
                    continue
                x = i + (j - (len(models) - 1) / 2) * width
                ax.bar(x, match[0].mse, width, color=f"C{j}", label=model if i == 0 else None)
                anchor = find_anchor(dataset, horizon, lookback, model)
                if anchor is not None:
                    ax.plot(x, anchor.mse, marker="_", color="black", markersize=14, mew=2)
        ax.plot([], [], marker="_", color="black", linestyle="none", markersize=14, mew=2, label="published")
        ax.set_xticks(range(len(horizons)), [f"H={h}" for h in horizons])
        ax.set_ylabel("test MSE (standardised)")
        ax.set_title(f"{dataset}, L={lookback}", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        path = plot_dir / f"mse_{dataset}_l{lookback}.png"
        save_figure_atomic(fig, path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_forecasts(records: Sequence[dict[str, Any]], plot_dir: Path) -> list[Path]:
    """Forecast vs truth of one test window (the first; last variate) per model and setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen: dict[tuple, dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: (_TIER_RANK.get(r["tier"], 1), -r["seed"])):
        if record.get("example_window"):
            key = (record["dataset"], record["horizon"], record["lookback"], record["model"])
            chosen[key] = record  # the largest tier wins; the smallest seed within it
    by_setting: dict[tuple, list[dict[str, Any]]] = {}
    for (dataset, horizon, lookback, _), record in chosen.items():
        by_setting.setdefault((dataset, horizon, lookback), []).append(record)
    paths = []
    for (dataset, horizon, lookback), members in by_setting.items():
        members.sort(key=lambda r: _MODEL_ORDER.get(r["model"], 99))
        cols = min(3, len(members))
        rows = math.ceil(len(members) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.2 * rows), squeeze=False, sharey=True)
        for ax, record in zip(axes.flat, members, strict=False):
            ex = record["example_window"]
            n_ctx = len(ex["context"])
            future = range(n_ctx, n_ctx + len(ex["truth"]))
            ax.plot(range(n_ctx), ex["context"], color="0.6", lw=0.8)
            ax.plot(future, ex["truth"], color="black", lw=0.8, label="truth")
            ax.plot(future, ex["forecast"], color="C3", lw=1.0, label="forecast")
            ax.set_title(f"{record['model']} (MSE {record['metrics']['mse']:.3f})", fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(members) :]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        variate = members[0]["example_window"]["variate"]
        fig.suptitle(
            f"{dataset}, H={horizon}, L={lookback}: test window 0, variate {variate} (standardised)",
            fontsize=9,
        )
        fig.tight_layout()
        path = plot_dir / f"forecast_{dataset}_h{horizon}_l{lookback}.png"
        save_figure_atomic(fig, path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


@dataclass(frozen=True)
class ReportFiles:
    """Files ``write_report`` produced."""

    csv: Path
    markdown: Path
    plots: tuple[Path, ...]


def write_report(output_dir: Path, plots: bool = True) -> ReportFiles:
    """Aggregate ``<output_dir>/runs/*.json`` into the CSV, the Markdown table and plots.

    Parameters
    ----------
    output_dir
        The results directory of a sweep.
    plots
        Also draw the PNG plots into ``<output_dir>/plots``.

    Returns
    -------
    ReportFiles
        Paths written.
    """
    records = load_results(output_dir)
    rows = [flatten(r) for r in records]
    csv_path = output_dir / "results.csv"
    md_path = output_dir / "results.md"
    write_csv(rows, csv_path)
    commands = sorted({r["command"] for r in records if r.get("command")})
    write_text_atomic(md_path, markdown_table(rows, commands))
    plot_paths: list[Path] = []
    if plots and records:
        plot_dir = output_dir / "plots"
        plot_dir.mkdir(parents=True, exist_ok=True)
        plot_paths += plot_mse_by_horizon(group_rows(rows), plot_dir)
        plot_paths += plot_forecasts(records, plot_dir)
    logger.info("Report of %d result(s): %s, %s, %d plot(s)", len(rows), csv_path, md_path, len(plot_paths))
    return ReportFiles(csv=csv_path, markdown=md_path, plots=tuple(plot_paths))
