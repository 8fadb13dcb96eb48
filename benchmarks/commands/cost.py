"""``python -m benchmarks cost``: test MSE against training seconds, from the run records that exist.

It trains nothing. It reads every finished run record under ``--output`` (every ``runs/`` directory below it: the
suite's tiers, the budget study, the transfer study...) and keeps the point forecasts of the compared models
(``--models``; TimesCLIP with random weights only: a pretrained backbone is another model), then, per dataset,
horizon, model, budget and machine, averages them and writes:

- ``<results>/cost/mse_vs_seconds_<dataset>_h<H>.png``: test MSE against training seconds (log scale), one marker
  per model, the Pareto front (:func:`pareto_front`) ringed and joined;
- ``<results>/cost.csv`` and ``cost.md``: MSE, training seconds, epochs run, best epoch, the seconds to reach the
  best validation loss (:func:`seconds_to_best`; estimated where a record has no per-epoch history) and whether
  the point is on the front.

A budget is what bounded the training: the epoch limit, the cap on training windows per epoch and the early-stopping
patience (where it could stop the training). Records of the same model and budget on the same machine are one point:
the MSE is the mean over seeds (a job recorded by two studies counts once per seed), the seconds the mean over
records. Times measured on different machines are different points.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.models import DEFAULT_MODELS
from benchmarks.registry import REGISTRY
from benchmarks.runner import RUNS_DIR, load_results
from benchmarks.stats import mean_over_seeds
from benchmarks.studies.tune import TUNED_SUFFIX
from benchmarks.study import RESULTS_DIR, Command, model_name, positive_int

COST_STEM = "cost"
PLOT_DIR = "cost"
ESTIMATE_MARK = "~"
FRONT_MARK = "*"
TIMESCLIP_NOTE = "TimesCLIP: compact backbone, random weights"
MARKERS = {"timesclip": "o", "patchtst": "s", "itransformer": "^", "nlinear": "D", "dlinear": "v"}
COLUMNS = (
    "dataset",
    "horizon",
    "lookback",
    "model",
    "budget",
    "sources",
    "machine",
    "runs",
    "seeds",
    "mse",
    "train_seconds",
    "epochs_run",
    "best_epoch",
    "seconds_to_best",
    "seconds_to_best_estimated",
    "pareto",
)
_DATASET_ORDER = {name: i for i, name in enumerate(REGISTRY)}


# --------------------------------------------------------------------------------------------- pure functions
def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """Which points no other point beats: for each ``(seconds, mse)``, whether it is on the Pareto front.

    A point is off the front if another has no more seconds and no higher MSE, and fewer seconds or a lower MSE.
    Equal points are all on the front (neither beats the other); a point beaten in one dimension only stays on it.

    Parameters
    ----------
    points
        ``(seconds, mse)`` pairs.

    Returns
    -------
    list of bool
        ``True`` for the points on the front, in the order given.
    """
    return [
        not any(s <= seconds and m <= mse and (s < seconds or m < mse) for j, (s, m) in enumerate(points) if j != i)
        for i, (seconds, mse) in enumerate(points)
    ]


def seconds_to_best(record: dict[str, Any]) -> tuple[float | None, bool]:
    """The training seconds a run took to reach its best (final) validation loss, and whether that is an estimate.

    With a per-epoch ``history``: its ``seconds`` at the best epoch. Without (records written before it was kept):
    ``train_seconds * (best_epoch + 1) / epochs_run`` (the record's ``best_epoch`` counts from 0), every epoch
    taken to last as long.

    Parameters
    ----------
    record
        A run record.

    Returns
    -------
    tuple
        ``(seconds, estimated)``; ``(None, False)`` where the record has no best epoch or no epochs.

    Raises
    ------
    ValueError
        If the record's history has no entry for its best epoch.
    """
    budget = record.get("budget", {})
    best, epochs = budget.get("best_epoch"), budget.get("epochs_run")
    if best is None or not epochs:
        return None, False
    history = record.get("history")
    if history:
        for entry in history:
            if entry["epoch"] == best + 1:
                return float(entry["seconds"]), False
        raise ValueError(f"Run `{record.get('run_id')}`: its history has no epoch {best + 1} (its best).")
    return float(record["timing"]["train_seconds"]) * (best + 1) / epochs, True


def budget_label(record: dict[str, Any]) -> str:
    """What bounded a run's training: ``"2 ep x 4096"``, ``"10 ep x all, patience 3"``, ``"... , 500 steps"``."""
    budget = record["budget"]
    limit, cap = budget.get("epoch_limit"), budget.get("max_samples_per_ts")
    label = f"{limit if limit is not None else '?'} ep x {cap if cap else 'all'}"
    if str(record.get("model", "")).endswith(TUNED_SUFFIX):
        label = f"tuned, {label}"
    if budget.get("max_steps"):
        label += f", {budget['max_steps']} steps"
    patience = record.get("model_config", {}).get("patience")
    if patience is not None and (limit is None or patience < limit - 1):  # else it cannot stop the training
        label += f", patience {patience}"
    return label


def base_model(record: dict[str, Any]) -> str:
    """The model a record trained: ``timesclip`` for ``timesclip-tuned`` (a budget of its model)."""
    return str(record.get("model", "")).removesuffix(TUNED_SUFFIX)


def machine_label(record: dict[str, Any]) -> str:
    """The machine a record names (``"n/a"`` where none)."""
    machine = record.get("machine")
    return str(machine.get("label", "n/a") if isinstance(machine, dict) else machine or "n/a")


# --------------------------------------------------------------------------------------------- records and rows
def is_point_forecast(record: dict[str, Any]) -> bool:
    """Whether a record is a forecasting run scored by test MSE with its training seconds, not a likelihood's."""
    return (
        "dataset" in record
        and isinstance(record.get("metrics", {}).get("mse"), float | int)
        and isinstance(record.get("timing", {}).get("train_seconds"), float | int)
        and "budget" in record
        and not record.get("coordinates", {}).get("likelihood")
        and not record.get("model_config", {}).get("likelihood")
    )


def cost_records(root: Path, models: Sequence[str] = DEFAULT_MODELS) -> tuple[list[dict[str, Any]], int]:
    """The point-forecast run records of ``models`` under ``root`` (every ``runs/`` directory below it, in path
    order), TimesCLIP with random weights only; and how many finished records were left out.

    Each record gets ``source``: the study and budget its tier names (``budget:2xall``), or ``<tier> tier``. A model
    trained with its searched configuration (``<model>-tuned``) is a budget of its model (``tuned, ...``).
    """
    kept, left_out = [], 0
    for runs in sorted(path for path in root.rglob(RUNS_DIR) if path.is_dir()):
        for record in load_results(runs.parent):
            if is_point_forecast(record) and base_model(record) in models and not record.get("pretrained"):
                tier = str(record.get("tier") or "custom")
                source = tier if ":" in tier else f"{tier} tier"
                kept.append({**record, "source": source})
            else:
                left_out += 1
    return kept, left_out


@dataclass(frozen=True)
class Point:
    """The runs of one model and budget on one machine, at one dataset, horizon and lookback."""

    dataset: str
    horizon: int
    lookback: int
    model: str
    budget: str
    machine: str
    records: tuple[dict[str, Any], ...]

    @property
    def mse(self) -> float:
        """Mean test MSE over seeds (each seed's records averaged first)."""
        return mean_over_seeds((record["seed"], record["metrics"]["mse"]) for record in self.records)

    @property
    def train_seconds(self) -> float:
        """Mean training seconds over the records."""
        return statistics.fmean(float(r["timing"]["train_seconds"]) for r in self.records)


def cost_points(records: Iterable[dict[str, Any]]) -> list[Point]:
    """Group records by (dataset, horizon, lookback, model, budget, machine), in table order."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for record in records:
        key = (
            record["dataset"],
            record["horizon"],
            record["lookback"],
            base_model(record),
            budget_label(record),
            machine_label(record),
        )
        groups.setdefault(key, []).append(record)
    points = [Point(*key, records=tuple(members)) for key, members in groups.items()]
    return sorted(points, key=lambda p: (_DATASET_ORDER.get(p.dataset, 99), p.horizon, p.lookback, p.train_seconds))


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def cost_rows(points: Sequence[Point]) -> list[dict[str, Any]]:
    """The table's rows: one per point, with whether it is on its (dataset, horizon, lookback)'s Pareto front."""
    cells: dict[tuple, list[Point]] = {}
    for point in points:
        cells.setdefault((point.dataset, point.horizon, point.lookback), []).append(point)
    front: dict[int, bool] = {}
    for members in cells.values():
        for point, on in zip(members, pareto_front([(p.train_seconds, p.mse) for p in members]), strict=True):
            front[id(point)] = on
    rows = []
    for point in points:
        to_best = [seconds_to_best(r) for r in point.records]
        best = [r["budget"].get("best_epoch") for r in point.records]
        rows.append(
            {
                "dataset": point.dataset,
                "horizon": point.horizon,
                "lookback": point.lookback,
                "model": point.model,
                "budget": point.budget,
                "sources": "; ".join(sorted({r["source"] for r in point.records})),
                "machine": point.machine,
                "runs": len(point.records),
                "seeds": len({r["seed"] for r in point.records}),
                "mse": round(point.mse, 6),
                "train_seconds": round(point.train_seconds, 2),
                "epochs_run": _round(_mean([r["budget"].get("epochs_run") for r in point.records]), 2),
                "best_epoch": _round(_mean([None if b is None else b + 1 for b in best]), 2),
                "seconds_to_best": _round(_mean([seconds for seconds, _ in to_best]), 2),
                "seconds_to_best_estimated": any(estimated for _, estimated in to_best),
                "pareto": front[id(point)],
            }
        )
    return rows


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# --------------------------------------------------------------------------------------------- report
def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.{digits}f}"


def _seconds(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def cost_markdown(rows: Sequence[dict[str, Any]], command: str, left_out: int, plots: Sequence[Path] = ()) -> str:
    """``cost.md``: per dataset and horizon, the plot and the table."""
    machines = sorted({row["machine"] for row in rows})
    lines = [
        "# Accuracy against training cost",
        "",
        f"Test MSE (standardised scale) against training seconds, from the run records under `benchmarks/results` "
        f"(`{command}`; it trains nothing). {TIMESCLIP_NOTE}. Machines: {'; '.join(machines)}.",
        "",
        f"- One row per dataset, horizon, model, budget and machine: MSE the mean over seeds, seconds the mean over "
        f"runs (`runs (seeds)`; a job that two studies recorded is two runs of one seed). {left_out} other records "
        "(other models, pretrained TimesCLIP, probabilistic forecasts, other kinds of job) are left out.",
        "- Budget: epoch limit x training windows per epoch (`all`: uncapped), and the early-stopping patience "
        "where it could end the training.",
        "- Best epoch: the epoch (from 1) of the lowest validation loss, whose weights are tested; s to best: the "
        f"training seconds at its end. `{ESTIMATE_MARK}` marks an estimate, train s x best epoch / epochs run, "
        "for runs recorded without a per-epoch history (every epoch taken to last as long).",
        f"- Front: `{FRONT_MARK}` where no other row of the same dataset and horizon has a lower MSE in fewer "
        "seconds (fewer or as many seconds and a lower MSE, or fewer seconds and as low an MSE); times of different "
        "machines and loads are compared as they were measured.",
        "",
    ]
    cells: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        cells.setdefault((row["dataset"], row["horizon"], row["lookback"]), []).append(row)
    by_name = {path.name: path for path in plots}
    for (dataset, horizon, lookback), members in cells.items():
        lines += [f"## {dataset}, H = {horizon}, L = {lookback}", ""]
        plot = by_name.get(plot_name(dataset, horizon))
        if plot is not None:
            lines += [f"![{dataset} H={horizon}: test MSE against training seconds]({PLOT_DIR}/{plot.name})", ""]
        lines += [
            "| model | budget | source | machine | runs (seeds) | MSE | train s | epochs run | best epoch "
            "| s to best | front |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in members:
            mark = ESTIMATE_MARK if row["seconds_to_best_estimated"] else ""
            to_best = "-" if row["seconds_to_best"] is None else mark + _seconds(row["seconds_to_best"])
            lines.append(
                f"| {row['model']} | {row['budget']} | {row['sources']} | {row['machine']} "
                f"| {row['runs']} ({row['seeds']}) | {row['mse']:.4f} | {_seconds(row['train_seconds'])} "
                f"| {_number(row['epochs_run'])} | {_number(row['best_epoch'])} | {to_best} "
                f"| {FRONT_MARK if row['pareto'] else ''} |"
            )
        front = [
            f"{r['model']} ({r['budget']}; {_seconds(r['train_seconds'])} s, MSE {r['mse']:.4f})"
            for r in sorted(members, key=lambda r: r["train_seconds"])
            if r["pareto"]
        ]
        lines += ["", f"On the front, fastest first: {', '.join(front)}.", ""]
    return "\n".join(lines)


def plot_name(dataset: str, horizon: int) -> str:
    """The file name of a dataset's and horizon's plot."""
    return f"mse_vs_seconds_{dataset}_h{horizon}.png"


def plot_cost(rows: Sequence[dict[str, Any]], dataset: str, horizon: int, path: Path) -> Path:
    """Draw one dataset's and horizon's test MSE against training seconds, the Pareto front ringed and joined."""
    from benchmarks.report import pyplot
    from darts_timesclip._io import save_figure_atomic

    plt = pyplot()
    members = [row for row in rows if row["dataset"] == dataset and row["horizon"] == horizon]
    machines = sorted({row["machine"] for row in members}, key=lambda m: -sum(r["machine"] == m for r in members))
    models = list(dict.fromkeys(row["model"] for row in sorted(members, key=lambda r: r["model"])))
    fig, ax = plt.subplots(figsize=(8.6, 5.4))
    for i, model in enumerate(models):
        marker = MARKERS.get(model, "PXp*h8"[i % 6])
        for row in (r for r in members if r["model"] == model):
            filled = row["machine"] == machines[0]
            ax.scatter(
                row["train_seconds"],
                row["mse"],
                marker=marker,
                s=46,
                color=f"C{i}" if filled else "none",
                edgecolors=f"C{i}",
                linewidths=1.2,
                zorder=3,
            )
            ax.annotate(row["budget"], (row["train_seconds"], row["mse"]), fontsize=6, xytext=(4, 3),
                        textcoords="offset points", color="0.3")  # fmt: skip
        ax.scatter([], [], marker=marker, color=f"C{i}", label=model)
    front = sorted((r["train_seconds"], r["mse"]) for r in members if r["pareto"])
    ax.plot(*zip(*front, strict=True), color="black", lw=1.0, ls="--", zorder=2, label="Pareto front")
    ax.scatter(*zip(*front, strict=True), s=150, facecolors="none", edgecolors="black", linewidths=1.0, zorder=2)
    for machine in machines[1:]:
        ax.scatter([], [], marker="o", color="none", edgecolors="0.3", label=f"hollow: {machine}")
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (log scale)")
    ax.set_ylabel("test MSE (standardised)")
    ax.set_title(f"{dataset}, H={horizon}: test MSE against training seconds", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(True, which="both", lw=0.3, color="0.85")
    machine_text = "Machine: " + (
        machines[0] if len(machines) == 1 else f"{machines[0]} (filled); {', '.join(machines[1:])} (hollow)"
    )
    fig.text(0.01, 0.01, f"{machine_text}\n{TIMESCLIP_NOTE}", fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # room for the machine and the backbone below the axes
    save_figure_atomic(fig, path, dpi=100)
    plt.close(fig)
    return path


def write_cost_report(
    root: Path,
    results: Path,
    models: Sequence[str] = DEFAULT_MODELS,
    horizons: Sequence[int] = (),
    lookback: int = 96,
    plots: bool = True,
    command: str = "python -m benchmarks cost",
) -> list[Path]:
    """Read the run records under ``root`` and write ``<results>/cost.csv``, ``cost.md`` and the plots.

    Raises
    ------
    ValueError
        If no point-forecast record of ``models`` is found.
    """
    from benchmarks.report import csv_text, write_report_text

    records, left_out = cost_records(root, models)
    records = [r for r in records if r["lookback"] == lookback and (not horizons or r["horizon"] in horizons)]
    rows = cost_rows(cost_points(records))
    if not rows:
        raise ValueError(f"No finished point-forecast run of {', '.join(models)} under `{root}` (L = {lookback}).")
    plot_paths = []
    if plots:
        for dataset, horizon in dict.fromkeys((row["dataset"], row["horizon"]) for row in rows):
            path = results / PLOT_DIR / plot_name(dataset, horizon)
            path.parent.mkdir(parents=True, exist_ok=True)
            plot_paths.append(plot_cost(rows, dataset, horizon, path))
    results.mkdir(parents=True, exist_ok=True)
    files = [
        write_report_text(results / f"{COST_STEM}.csv", csv_text(rows, COLUMNS)),
        write_report_text(results / f"{COST_STEM}.md", cost_markdown(rows, command, left_out, plot_paths)),
    ]
    return files + plot_paths


class Cost(Command):
    """Test MSE against training seconds from the run records that exist: plots, Pareto front, table."""

    name = "cost"
    flags = ("output", "results", "no_plots", "verbose")
    defaults = {"output": RESULTS_DIR, "results": RESULTS_DIR}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--models", nargs="+", type=model_name, default=DEFAULT_MODELS, help="default: %(default)s")
        parser.add_argument("--horizons", nargs="+", type=positive_int, help="default: every horizon that ran")
        parser.add_argument("--lookback", type=positive_int, default=96, help="input length L (default: 96)")

    @classmethod
    def trains(cls, args: argparse.Namespace) -> bool:
        return False

    @classmethod
    def invoke(cls, args: argparse.Namespace, argv: Sequence[str]) -> int:
        from benchmarks.runner import command_line

        files = write_cost_report(
            args.output,
            args.results,
            models=tuple(args.models),
            horizons=tuple(args.horizons or ()),
            lookback=args.lookback,
            plots=not args.no_plots,
            command=command_line(argv),
        )
        print("wrote " + ", ".join(str(f) for f in files))
        return 0
