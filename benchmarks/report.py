"""Tables and plots: the suite's ``results.csv``, ``results.md`` and plots, and what every study's report shares.

Every file a report writes passes :func:`portable_paths`: no absolute path of the machine that ran the jobs (a
``--data-dir``, a backbone directory) reaches a committed table.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from benchmarks.anchors import Anchor, find_anchor
from benchmarks.models import DEFAULT_MODELS, MODEL_NAMES
from benchmarks.protocol import SCALER_DESCRIPTION
from benchmarks.registry import REGISTRY, default_project_data_dir
from benchmarks.runner import load_results
from benchmarks.stats import mean_over_seeds
from darts_timesclip._io import save_figure_atomic, write_text_atomic

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


#: The repository root (it holds ``benchmarks/``).
REPO_ROOT = Path(__file__).resolve().parent.parent

# an absolute path of two or more parts, not inside a word or a relative path ("t/ha", "windows/s", "../x" stay)
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/-])/(?:[\w.@+-]+/)+[\w.@+-]*")


def portable_path(path: str, root: Path = REPO_ROOT) -> str:
    """How a report shows a recorded absolute path: relative, the same on every machine.

    - inside a checkout of this repository (a ``benchmarks`` directory in it, e.g. a study's backbone under
      ``.../benchmarks/results/transfer/backbones``): from ``benchmarks/`` on, whichever checkout recorded it;
    - the project's data directory beside a checkout (``../shared/data``, the registry's default): as that;
    - inside ``root`` or beside it: relative to ``root`` (``outputs/x``, ``../other/x``);
    - anything else: ``…/`` and its last two parts.

    Parameters
    ----------
    path
        An absolute POSIX path (other text is returned unchanged).
    root
        The repository root. Default: this checkout's.

    Returns
    -------
    str
        The path as the report shows it.
    """
    pure = PurePosixPath(path)
    if not pure.is_absolute():
        return path
    parts = pure.parts
    if "benchmarks" in parts:
        last = len(parts) - 1 - parts[::-1].index("benchmarks")
        return "/".join(parts[last:])
    data = default_project_data_dir().relative_to(root.parent).parts  # ("shared", "data")
    for start in range(1, len(parts) - len(data) + 1):
        if parts[start : start + len(data)] == data:
            return "/".join(("..", *parts[start:]))
    for base, prefix in ((root, ()), (root.parent, ("..",))):
        try:
            return "/".join((*prefix, *pure.relative_to(base.as_posix()).parts)) or "."
        except ValueError:
            continue
    return "/".join(("…", *parts[-2:]))


def portable_paths(text: str, root: Path = REPO_ROOT) -> str:
    """``text`` with every absolute path in it replaced by :func:`portable_path`'s form."""
    return _ABSOLUTE_PATH.sub(lambda match: portable_path(match.group(0), root), text)


def write_report_text(path: Path, text: str) -> Path:
    """Write a report file atomically, its paths made portable (:func:`portable_paths`)."""
    write_text_atomic(path, portable_paths(text))
    return path


def csv_text(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, line_end: str = "\r\n") -> str:
    """CSV of ``rows`` (columns: ``columns``, else the first row's keys); ``None`` is written empty. Lines end in
    ``line_end`` (the csv module's ``\\r\\n`` by default, as the committed tables have them)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns or rows[0]), lineterminator=line_end)
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()


def commands_that_ran(records: Iterable[dict[str, Any]]) -> list[str]:
    """The distinct commands that made ``records`` (a study resumed piece by piece has several), sorted."""
    return sorted({str(r["command"]) for r in records if r.get("command")})


def command_markdown(commands: Sequence[str]) -> list[str]:
    """A report's provenance lines: ``Command: `...` `` for one command; for several (a study run piece by piece), a
    list with one command per line."""
    commands = [c for c in commands if c.strip()]
    if not commands:
        return []
    if len(commands) == 1:
        return [f"Command: `{commands[0]}`", ""]
    lines = [
        f"Commands: the {len(commands)} below made these run files (a study run piece by piece; each skips the jobs "
        "that have finished).",
        "",
    ]
    return [*lines, *(f"- `{c}`" for c in commands), ""]


def write_study_files(
    results_dir: Path, stem: str, rows: Sequence[dict[str, Any]], markdown: str, plot: Callable[[Path], Path] | None
) -> list[Path]:
    """Write a study's ``<stem>.csv`` (one line per row), ``<stem>.md`` and, with ``plot``, ``<stem>.png``."""
    results_dir.mkdir(parents=True, exist_ok=True)
    files = [
        write_report_text(results_dir / f"{stem}.csv", csv_text(rows)),
        write_report_text(results_dir / f"{stem}.md", markdown),
    ]
    return files + ([plot(results_dir / f"{stem}.png")] if plot is not None else [])


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (files only, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_plot(fig: Any, path: Path, dpi: int = 110) -> Path:
    """Lay a figure out, write it atomically to ``path`` and close it."""
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=dpi)
    pyplot().close(fig)
    return path


OWN_MODEL = " (own)"
"""What the tables append to the name of a model of one's own (``run --model``): a factory named ``dlinear`` is
shown as ``dlinear (own)``, beside the published DLinear numbers and apart from the suite's ``dlinear``."""


def table_model_name(record: dict[str, Any]) -> str:
    """A record's model as the tables name it (see :data:`OWN_MODEL`)."""
    own = record.get("model_config", {}).get("family") == "external"
    return record["model"] + (OWN_MODEL if own else "")


def anchor_for(dataset: str, horizon: int, lookback: int, model: str) -> Anchor | None:
    """The published result for a table's model (a model of one's own by the name it was given)."""
    return find_anchor(dataset, horizon, lookback, model.removesuffix(OWN_MODEL))


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """One result record as a ``results.csv`` row."""
    budget = record["budget"]
    return {
        "dataset": record["dataset"],
        "horizon": record["horizon"],
        "lookback": record["lookback"],
        "model": table_model_name(record),
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
        """Mean test MSE over seeds."""
        return self.mean("mse")

    @property
    def mae(self) -> float:
        """Mean test MAE over seeds."""
        return self.mean("mae")

    def mean(self, column: str) -> float:
        """Mean of a column over seeds (each seed's rows averaged first)."""
        return mean_over_seeds((r["seed"], r[column]) for r in self.rows)


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
        anchor = anchor_for(g.dataset, g.horizon, g.lookback, g.model)
        if anchor is not None:
            sources[anchor.source] = None
        pub_mse = f"{anchor.mse:.3f}" if anchor else "-"
        pub_mae = f"{anchor.mae:.3f}" if anchor else "-"
        gap_mse = _gap(g.mse, anchor.mse) if anchor else "-"
        gap_mae = _gap(g.mae, anchor.mae) if anchor else "-"
        epochs = _unique(
            ["-" if r["epochs_run"] is None else f"{r['epochs_run']} / {r['epoch_limit']}" for r in g.rows]
        )
        cap = _unique([r["max_samples_per_ts"] or "all" for r in g.rows])
        params = "-" if any(r["params_total"] is None for r in g.rows) else f"{int(g.mean('params_total')):,}"
        out.write(
            f"| {g.dataset} | {g.horizon} | {g.lookback} | {g.model} | {g.tier} | {len(g.rows)} "
            f"| {g.mse:.3f} | {g.mae:.3f} | {pub_mse} | {pub_mae} | {gap_mse} | {gap_mae} "
            f"| {epochs} | {cap} | {g.mean('train_seconds'):.0f} | {params} |\n"
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
    write_report_text(
        path, csv_text([{k: row[k] for k in CSV_COLUMNS} for row in sorted(rows, key=_sort_key)], CSV_COLUMNS)
    )


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
    plt = pyplot()
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
                anchor = anchor_for(dataset, horizon, lookback, model)
                if anchor is not None:
                    ax.plot(x, anchor.mse, marker="_", color="black", markersize=14, mew=2)
        ax.plot([], [], marker="_", color="black", linestyle="none", markersize=14, mew=2, label="published")
        ax.set_xticks(range(len(horizons)), [f"H={h}" for h in horizons])
        ax.set_ylabel("test MSE (standardised)")
        ax.set_title(f"{dataset}, L={lookback}", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        paths.append(save_plot(fig, plot_dir / f"mse_{dataset}_l{lookback}.png", dpi=80))
    return paths


def plot_forecasts(records: Sequence[dict[str, Any]], plot_dir: Path) -> list[Path]:
    """Forecast vs truth of one test window (the first; last variate) per model and setting."""
    plt = pyplot()
    chosen: dict[tuple, dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: (_TIER_RANK.get(r["tier"], 1), -r["seed"])):
        if record.get("example_window"):
            key = (record["dataset"], record["horizon"], record["lookback"], table_model_name(record))
            chosen[key] = record  # the largest tier wins; the smallest seed within it
    by_setting: dict[tuple, list[dict[str, Any]]] = {}
    for (dataset, horizon, lookback, _), record in chosen.items():
        by_setting.setdefault((dataset, horizon, lookback), []).append(record)
    paths = []
    for (dataset, horizon, lookback), members in by_setting.items():
        members.sort(key=lambda r: (_MODEL_ORDER.get(r["model"], 99), table_model_name(r)))
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
            ax.set_title(f"{table_model_name(record)} (MSE {record['metrics']['mse']:.3f})", fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(members) :]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=7)
        variate = members[0]["example_window"]["variate"]
        fig.suptitle(
            f"{dataset}, H={horizon}, L={lookback}: test window 0, variate {variate} (standardised)",
            fontsize=9,
        )
        paths.append(save_plot(fig, plot_dir / f"forecast_{dataset}_h{horizon}_l{lookback}.png", dpi=80))
    return paths


@dataclass(frozen=True)
class ReportFiles:
    """Files ``write_report`` produced."""

    csv: Path
    markdown: Path
    plots: tuple[Path, ...]


def write_report(output_dir: Path, plots: bool = True, results_dir: Path | None = None) -> ReportFiles:
    """Aggregate ``<output_dir>/runs/*.json`` into the CSV, the Markdown table and plots.

    Parameters
    ----------
    output_dir
        The results directory of a sweep.
    plots
        Also draw the PNG plots into ``<results_dir>/plots``.
    results_dir
        Where the files go. Default: ``None``, ``output_dir``.

    Returns
    -------
    ReportFiles
        Paths written.
    """
    results_dir = output_dir if results_dir is None else results_dir
    records = load_results(output_dir)
    rows = [flatten(r) for r in records]
    csv_path = results_dir / "results.csv"
    md_path = results_dir / "results.md"
    results_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, csv_path)
    write_report_text(md_path, markdown_table(rows, commands_that_ran(records)))
    plot_paths: list[Path] = []
    if plots and records:
        plot_dir = results_dir / "plots"
        plot_dir.mkdir(parents=True, exist_ok=True)
        plot_paths += plot_mse_by_horizon(group_rows(rows), plot_dir)
        plot_paths += plot_forecasts(records, plot_dir)
    logger.info("Report of %d result(s): %s, %s, %d plot(s)", len(rows), csv_path, md_path, len(plot_paths))
    return ReportFiles(csv=csv_path, markdown=md_path, plots=tuple(plot_paths))
