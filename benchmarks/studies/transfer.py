"""Does self-pretraining help? ``python -m benchmarks transfer``: pretrained against random-init TimesCLIP.

For each target dataset (H = 96, L = 96, the suite's protocol):

- ``pretrained-others``: a backbone pretrained (``darts_timesclip.pretraining``) on the **train splits of the
  other** datasets plus synthetic series; never on any validation or test row, nor on the target at all;
- ``pretrained-synthetic``: one backbone pretrained on synthetic series only;
- ``random``: the ``compact`` preset's random initialisation;

each fine-tuned at two budgets: ``quick`` (the quick tier's: 2 epochs over the most recent 4,096 windows) and
``few-shot`` (10 epochs over the most recent 10% of the target's train windows), beside NLinear trained on the same
windows. Every fine-tune is a benchmark job (one result file, resumable). The backbones are pretrained first (not by
``--dry-run``, which therefore lists pretrained jobs under the run ids of backbones not there yet), under
``<output>/backbones``, and resume too (their weights are not committed; a summary of each, read from its
``pretraining.json``, is kept in ``<output>/backbones.json``, which is). The report is ``pretraining.csv``,
``pretraining.md`` and a plot.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.models import TrainingCaps, model_config, stable_hash
from benchmarks.registry import find_file, get_spec, read_dataset
from benchmarks.report import command_markdown, pyplot, save_plot
from benchmarks.runner import Job, write_json_atomic
from benchmarks.stats import mean_std, seed_verdict
from benchmarks.study import (
    DEFAULT_SEED,
    Study,
    StudyOptions,
    dataset_name,
    forecast_row,
    positive_int,
)
from benchmarks.tiers import get_tier
from darts_timesclip.pretraining.options import DEFAULT_OBJECTIVE, OBJECTIVES

logger = logging.getLogger(__name__)

TRANSFER_DATASETS = ("ETTh1", "ETTh2", "ETTm1", "ETTm2", "weather", "exchange_rate")
INITS = ("random", "pretrained-others", "pretrained-synthetic")
BUDGETS = ("quick", "few-shot")
HORIZON = LOOKBACK = 96
FEW_SHOT_SHARE = 0.1
FEW_SHOT_EPOCHS = 10
BACKBONE_INDEX = "backbones.json"


@dataclass(frozen=True)
class PretrainSettings:
    """How the backbones of the study are pretrained (part of each backbone's directory name).

    ``corpus`` names the datasets whose train splits a ``pretrained-others`` backbone reads (all but the target).
    """

    corpus: tuple[str, ...] = TRANSFER_DATASETS
    backbone: str = "compact"
    steps: int = 1000
    batch_size: int = 64
    synthetic: int = 1000
    objective: str = DEFAULT_OBJECTIVE
    seed: int = 0

    def tag(self) -> str:
        return stable_hash(asdict(self), length=8)


def budget_caps(budget: str, dataset: str) -> TrainingCaps:
    """The fine-tuning budget on ``dataset``: the quick tier's, or the few-shot share of its train windows."""
    if budget == "quick":
        return get_tier("quick").caps_for("timesclip")
    if budget == "few-shot":
        n_train = get_spec(dataset).split_borders(LOOKBACK).n_windows("train", LOOKBACK, HORIZON)
        return TrainingCaps(max_epochs=FEW_SHOT_EPOCHS, max_samples_per_ts=max(1, int(FEW_SHOT_SHARE * n_train)))
    raise ValueError(f"Unknown budget `{budget}`; choose from {BUDGETS}.")


def backbone_dir(output_dir: Path, init: str, target: str, settings: PretrainSettings) -> Path:
    """Where the backbone of ``init`` for ``target`` lives (``pretrained-synthetic`` is shared by all targets)."""
    name = "synthetic" if init == "pretrained-synthetic" else f"others-than-{target}"
    return output_dir / "backbones" / f"{name}-{settings.backbone}-{settings.tag()}"


def pretraining_series(target: str, data_dir: Path | None, datasets: Sequence[str]) -> list[Any]:
    """Train splits of every dataset in ``datasets`` but ``target`` whose file is found, as ``TimeSeries``."""
    from darts import TimeSeries

    out = []
    for name in datasets:
        if name == target:
            continue
        spec = get_spec(name)
        try:
            find_file(spec, data_dir)
        except FileNotFoundError:
            logger.warning("Pretraining for %s without %s: its file is not found.", target, name)
            continue
        loaded = read_dataset(spec, data_dir)
        start, end = spec.split_borders(LOOKBACK, n_rows=loaded.values.shape[0]).train
        values = np.asarray(loaded.values[start:end], dtype=np.float32)  # train rows only
        out.append(TimeSeries.from_values(values, columns=[f"{name}:{c}" for c in loaded.columns]))
    return out


def ensure_backbone(
    init: str, target: str, output_dir: Path, settings: PretrainSettings, data_dir: Path | None
) -> Path:
    """Pretrain (or resume, or reuse) the backbone of ``init`` for ``target``."""
    from darts_timesclip.pretraining import pretrain_backbone

    path = backbone_dir(output_dir, init, target, settings)
    series = None if init == "pretrained-synthetic" else pretraining_series(target, data_dir, settings.corpus)
    if init == "pretrained-others" and not series:
        raise ValueError(f"No other dataset's file was found to pretrain a backbone for `{target}`.")
    pretrain_backbone(
        series,
        path,
        settings.backbone,
        synthetic=settings.synthetic,
        max_steps=settings.steps,
        batch_size=settings.batch_size,
        objective=settings.objective,
        seed=settings.seed,
        command=f"benchmarks transfer: {init} for {target}",
    )
    return path


def backbone_summary(record: dict[str, Any]) -> dict[str, Any]:
    """What the report says of a backbone, from its ``pretraining.json``."""
    run, corpus, final = record.get("run", {}), record.get("corpus", {}), record.get("final_losses", {})
    return {
        "objective": run.get("objective", ""),
        "corpus": "; ".join(corpus.get("sources", [])),
        "n_series": corpus.get("n_series"),
        "n_points": corpus.get("n_points"),
        "steps": record.get("steps"),
        "batch_size": run.get("batch_size"),
        "train_seconds": record.get("train_seconds"),
        "windows_per_second": record.get("windows_per_second"),
        "device": _device_label(record),
        "final_contrastive_loss": final.get("contrastive"),
    }


def _device_label(record: dict[str, Any]) -> str:
    """``"cpu (AMD EPYC, 2 threads)"``; only ``"cpu"`` for backbones pretrained before the processor was recorded."""
    device, name = record.get("device", ""), record.get("device_name")
    return f"{device} ({name})" if name else device


def index_backbones(output_dir: Path, write: bool = True) -> dict[str, dict[str, Any]]:
    """The summaries of the study's finished backbones, by directory name, kept in ``<output>/backbones.json``.

    Every backbone directory on disk that has finished pretraining (it holds ``pretraining.json``) refreshes its
    entry; entries of backbones not on disk (a fresh clone has the index, not the weights) are kept. With
    ``write=False`` (the report) the refreshed index is returned, not written.
    """
    path = output_dir / BACKBONE_INDEX
    index = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    found = {
        record.parent.name: backbone_summary(json.loads(record.read_text(encoding="utf-8")))
        for record in sorted((output_dir / "backbones").glob("*/pretraining.json"))
    }
    if any(index.get(name) != summary for name, summary in found.items()):
        index.update(found)
        if write:
            write_json_atomic(path, index)
    return index


@dataclass(frozen=True)
class TransferStudy(Study):
    """Self-pretrained against random-init TimesCLIP (leave-one-dataset-out), then its report."""

    name = "transfer"
    defaults = {"seeds": (DEFAULT_SEED, DEFAULT_SEED + 1)}
    output_name = "transfer"
    report_stem = "pretraining"
    coordinates = ("init", "budget", "objective")

    datasets: tuple[str, ...] = TRANSFER_DATASETS
    corpus: tuple[str, ...] = TRANSFER_DATASETS
    budgets: tuple[str, ...] = BUDGETS
    inits: tuple[str, ...] = INITS
    pretrain_steps: int = PretrainSettings.steps
    pretrain_batch_size: int = PretrainSettings.batch_size
    synthetic: int = PretrainSettings.synthetic
    objective: str = DEFAULT_OBJECTIVE
    nlinear: bool = True

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--datasets", nargs="+", type=dataset_name, default=cls.datasets, help="targets")
        parser.add_argument(
            "--corpus",
            nargs="+",
            type=dataset_name,
            default=cls.corpus,
            help="datasets whose train splits are pretrained on (never the target's)",
        )
        parser.add_argument("--budgets", nargs="+", choices=BUDGETS, default=cls.budgets)
        parser.add_argument("--inits", nargs="+", choices=INITS, default=cls.inits)
        parser.add_argument("--pretrain-steps", type=positive_int, default=cls.pretrain_steps)
        parser.add_argument("--pretrain-batch-size", type=positive_int, default=cls.pretrain_batch_size)
        parser.add_argument("--synthetic", type=int, default=cls.synthetic, help="synthetic series per corpus")
        parser.add_argument(
            "--objective",
            default=cls.objective,
            choices=OBJECTIVES,
            help="pretraining objective besides the contrastive loss (default: %(default)s); the report keeps "
            "them apart",
        )
        parser.add_argument("--no-nlinear", dest="nlinear", action="store_false", help="leave the NLinear rows out")

    def pretrain_settings(self, options: StudyOptions) -> PretrainSettings:
        """How this invocation's backbones are pretrained (``--backbone`` names the architecture pretrained)."""
        return PretrainSettings(
            corpus=self.corpus,
            backbone=options.backbone,
            steps=self.pretrain_steps,
            batch_size=self.pretrain_batch_size,
            synthetic=self.synthetic,
            objective=self.objective,
        )

    def prepare(self, options: StudyOptions) -> None:
        """Pretrain (or resume, or reuse) every backbone the jobs fine-tune, then refresh ``backbones.json``."""
        settings = self.pretrain_settings(options)
        for init in (i for i in self.inits if i != "random"):
            for target in self.datasets:
                logger.info("Backbone `%s` for %s ...", init, target)
                ensure_backbone(init, target, options.output, settings, options.data_dir)
        index_backbones(options.output)

    def jobs(self, options: StudyOptions) -> list[Job]:
        """The fine-tuning jobs, target by target: each init (and NLinear on the same windows) at each budget."""
        settings = self.pretrain_settings(options)
        scale = options.scale or "official"
        jobs = []
        for target in self.datasets:
            for budget in self.budgets:
                caps = budget_caps(budget, target)
                configs = []
                for init in self.inits:
                    if init == "random":
                        random_backbone = options.timesclip_backbone()
                        config = model_config("timesclip", target, HORIZON, scale=scale, backbone=random_backbone)
                        configs.append((init, "", config, caps))
                        continue
                    path = str(backbone_dir(options.output, init, target, settings))
                    config = model_config("timesclip", target, HORIZON, scale=scale, backbone=path, pretrained=True)
                    configs.append((init, self.objective, replace(config, backbone=path), caps))  # tiny keeps it too
                if self.nlinear:  # the same windows; NLinear keeps its own epochs
                    config = model_config("nlinear", target, HORIZON, scale=scale)
                    configs.append(("nlinear", "", config, TrainingCaps(max_samples_per_ts=caps.max_samples_per_ts)))
                for init, objective, config, job_caps in configs:
                    coordinates = {"init": init, "budget": budget, "objective": objective}
                    jobs.extend(
                        Job(target, HORIZON, LOOKBACK, config, seed, job_caps, study=self.name, coordinates=coordinates)
                        for seed in options.seeds
                    )
        return jobs

    def table(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One row per finished job: dataset, horizon, init, objective, budget, seed, mse, mae (+ model, backbone)."""
        rows = []
        for record in records:
            coordinates = record["coordinates"]
            init = coordinates["init"]
            # a pretrained record that names no objective (written before it was recorded) had the default one
            objective = coordinates.get("objective") or (DEFAULT_OBJECTIVE if init.startswith("pretrained") else "")
            labels = {"init": init, "objective": objective, "budget": coordinates["budget"]}
            train_seconds = record.get("timing", {}).get("train_seconds")
            rows.append(
                forecast_row(
                    record,
                    labels,
                    model=record["model"],
                    backbone=record.get("backbone", ""),
                    train_seconds=train_seconds,
                )
            )
        return sorted(rows, key=lambda r: (r["dataset"], r["budget"], r["init"], r["objective"], r["seed"]))

    def markdown(
        self, rows: Sequence[dict[str, Any]], commands: Sequence[str] = (), options: StudyOptions | None = None
    ) -> str:
        """The table and its verdict (:func:`transfer_markdown`), with the backbones the rows used."""
        if options is None:
            return transfer_markdown(rows, commands)
        return transfer_markdown(rows, commands, options.backbone, index_backbones(options.output, write=False))

    def plot(self, rows: Sequence[dict[str, Any]], path: Path) -> Path:
        """Test MSE per dataset and row (init), one panel per budget (bars: the seed spread)."""
        plt = pyplot()
        budgets = [b for b in BUDGETS if any(r["budget"] == b for r in rows)]
        datasets = sorted({r["dataset"] for r in rows})
        inits = row_labels(rows)
        fig, axes = plt.subplots(1, len(budgets), figsize=(6 * len(budgets), 3.6), squeeze=False)
        width = 0.8 / len(inits)
        for ax, budget in zip(axes[0], budgets):
            for k, init in enumerate(inits):
                stats = [
                    mean_std(
                        [r["mse"] for r in rows if (r["dataset"], r["budget"], row_label(r)) == (d, budget, init)]
                        or [np.nan]
                    )
                    for d in datasets
                ]
                x = np.arange(len(datasets)) + (k - (len(inits) - 1) / 2) * width
                ax.bar(x, [m for m, _ in stats], width, yerr=[s for _, s in stats], label=init, capsize=2)
            ax.set_xticks(np.arange(len(datasets)), datasets, rotation=20)
            ax.set_title(f"budget: {budget}")
            ax.set_ylabel("test MSE (standardised)")
        axes[0][0].legend(fontsize=8)
        return save_plot(fig, path)


ROW_ORDER = ("random", "pretrained-others", "pretrained-synthetic", "nlinear")


def row_label(row: dict[str, Any]) -> str:
    """The report's name of a row's configuration: its init, and its pretraining objective where not the default."""
    objective = row.get("objective", "")
    return row["init"] if objective in ("", DEFAULT_OBJECTIVE) else f"{row['init']} ({objective})"


def row_labels(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The distinct row labels of ``rows`` in report order: by init (``ROW_ORDER``), the default objective first."""

    def order(config: tuple[str, str]) -> tuple[int, str, bool, str]:
        init, objective = config
        rank = ROW_ORDER.index(init) if init in ROW_ORDER else len(ROW_ORDER)
        return rank, init, objective not in ("", DEFAULT_OBJECTIVE), objective

    configs = sorted({(r["init"], r.get("objective", "")) for r in rows}, key=order)
    return list(dict.fromkeys(row_label({"init": i, "objective": o}) for i, o in configs))


def transfer_markdown(
    rows: Sequence[dict[str, Any]],
    commands: Sequence[str] = (),
    architecture: str = "compact",
    backbones: dict[str, dict[str, Any]] | None = None,
) -> str:
    """The table (mean ± std over seeds) and the verdict, computed from ``rows``; then the pretrained backbones the
    rows used, where ``backbones`` (:func:`index_backbones`) knows them."""
    cells: dict[tuple[str, str, str], list[float]] = {}
    for row in rows:
        cells.setdefault((row["dataset"], row["budget"], row_label(row)), []).append(row["mse"])
    datasets = sorted(
        {r["dataset"] for r in rows}, key=lambda d: TRANSFER_DATASETS.index(d) if d in TRANSFER_DATASETS else 99
    )
    budgets = [b for b in BUDGETS if any(r["budget"] == b for r in rows)]
    inits = row_labels(rows)
    variants = {row_label(r): r["init"] for r in rows if r.get("objective", "") not in ("", DEFAULT_OBJECTIVE)}
    lines = [
        "# Self-pretraining: what it buys",
        "",
        "MSE at H = 96, L = 96 on the standardised scale (train-split StandardScaler), every test window at stride 1;",
        f"mean ± standard deviation over seeds (n seeds in brackets). TimesCLIP uses the `{architecture}` "
        "architecture; `random` is its random initialisation, the `pretrained-*` rows start from backbones made by "
        "`darts_timesclip.pretraining` (never on the target's rows; pretrained with contrastive + "
        f"{DEFAULT_OBJECTIVE} objectives unless the row names another). Budgets: `quick` = 2 epochs over the most "
        f"recent 4,096 train windows; `few-shot` = {FEW_SHOT_EPOCHS} epochs over the most recent "
        f"{int(FEW_SHOT_SHARE * 100)}% of them. NLinear trains on the same windows.",
        "",
    ]
    lines += command_markdown(commands)
    for budget in budgets:
        lines += [
            f"## Budget: {budget}",
            "",
            "| dataset | " + " | ".join(inits) + " |",
            "|---" * (len(inits) + 1) + "|",
        ]
        for dataset in datasets:
            entries = []
            for init in inits:
                values = cells.get((dataset, budget, init))
                if not values:
                    entries.append("-")
                    continue
                mean, std = mean_std(values)
                entries.append(f"{mean:.3f} ± {std:.3f} ({len(values)})")
            lines.append(f"| {dataset} | " + " | ".join(entries) + " |")
        lines.append("")
        lines += _verdict(cells, datasets, budget, inits, variants)
    lines += _backbone_lines(rows, backbones or {})
    return "\n".join(lines) + "\n"


def _backbone_lines(rows: Sequence[dict[str, Any]], backbones: dict[str, dict[str, Any]]) -> list[str]:
    used = sorted({Path(r["backbone"]).name for r in rows if r["init"].startswith("pretrained") and r.get("backbone")})
    known = [name for name in used if name in backbones]
    if not known:
        return []
    lines = [
        "## The pretrained backbones",
        "",
        "As each backbone's `pretraining.json` records them (the weights are not committed). Seconds are wall-clock "
        "on the machine named; a backbone pretrained beside other jobs is slower than one pretrained alone.",
        "",
        "| backbone | objective | corpus | series | points | steps x batch | seconds | windows/s | device "
        "| final contrastive loss |",
        "|---" * 10 + "|",
    ]
    for name in known:
        b = backbones[name]
        loss = b.get("final_contrastive_loss")
        lines.append(
            f"| `{name}` | {b['objective']} | {b['corpus']} | {b['n_series']:,} | {b['n_points']:,} | "
            f"{b['steps']} x {b['batch_size']} | {b['train_seconds']:.0f} | {b['windows_per_second']:.0f} | "
            f"{b['device']} | {'-' if loss is None else f'{loss:.3f}'} |"
        )
    missing = len(used) - len(known)
    if missing:
        lines.append(f"\n{missing} backbone(s) used by these rows are not in the index.")
    return [*lines, ""]


def _compare(cells: dict, datasets: Sequence[str], budget: str, label: str, reference: str) -> str:
    """One verdict line: ``label`` against ``reference`` on every dataset where both ran."""
    counts = dict.fromkeys(("better", "worse", "within spread", "one seed"), 0)
    for dataset in datasets:
        a, b = cells.get((dataset, budget, label)), cells.get((dataset, budget, reference))
        if a and b:
            counts[seed_verdict(a, b)] += 1
    single = counts["one seed"]
    return (
        f"- `{label}` against `{reference}`: better on {counts['better']}, worse on {counts['worse']}, within the "
        f"seed spread on {counts['within spread']} dataset(s)"
        + (f"; {single} with a single seed, not judged." if single else ".")
    )


def _verdict(
    cells: dict, datasets: Sequence[str], budget: str, inits: Sequence[str], variants: dict[str, str]
) -> list[str]:
    """Wins of each pretrained row over random, of each objective over the default one, and average ranks.

    A difference counts only where both rows have at least two seeds and it exceeds the larger of their standard
    deviations; otherwise the dataset is "within the seed spread" (or "one seed", which cannot be judged). The
    average rank is taken over the main rows (every init with the default objective) on the datasets where all of
    them ran, so that an objective ablation run on fewer datasets does not shrink it. ``variants`` maps the label of
    each row pretrained with another objective than the default to the label of its init's default row.
    """
    out = [_compare(cells, datasets, budget, init, "random") for init in inits if init.startswith("pretrained")]
    out += [_compare(cells, datasets, budget, label, variants[label]) for label in inits if label in variants]
    main_rows = [i for i in inits if i not in variants]
    variants_here = any(cells.get((dataset, budget, label)) for label in variants for dataset in datasets)
    ranks: dict[str, list[int]] = {}
    for dataset in datasets:
        means = {i: mean_std(cells[(dataset, budget, i)])[0] for i in main_rows if cells.get((dataset, budget, i))}
        if len(means) == len(main_rows):
            for rank, init in enumerate(sorted(means, key=means.get), start=1):
                ranks.setdefault(init, []).append(rank)
    if ranks:
        n = len(next(iter(ranks.values())))
        out.append(
            f"- Average MSE rank over the {n} dataset(s) with every row"
            + (" (objective variants left out)" if variants_here else "")
            + ": "
            + ", ".join(f"`{i}` {np.mean(ranks[i]):.2f}" for i in main_rows if i in ranks)
            + "."
        )
    return [*out, ""]
