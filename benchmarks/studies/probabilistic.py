"""``python -m benchmarks probabilistic``: CRPS and 80 % / 95 % interval coverage of probabilistic forecasts.

TimesCLIP (the ``compact`` backbone, random weights) beside Darts' probabilistic models, DLinear, NLinear and TiDE,
each trained with a likelihood (``--likelihoods``; default quantile regression at 13 levels from 2.5 % to 97.5 %) on
the suite's protocol (train-split scaling, every stride-1 test window, standardised scale) at H = L = 96, all at the
same budget (``--max-epochs``, ``--max-samples-per-ts``; default 2 epochs over the most recent 4,096 train and
validation windows). Every test window is forecast once with ``predict_likelihood_parameters=True`` and scored by
:mod:`benchmarks.probabilistic`: the CRPS (from the quantiles, or from 100 samples of a parametric likelihood), the
share of observations inside the central 80 % and 95 % intervals and their widths, and the median's MSE and MAE.

Each (dataset, model, likelihood, seed) is one benchmark job; ``probabilistic.csv`` and ``probabilistic.md`` hold
the table.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from benchmarks.models import TrainingCaps, model_config
from benchmarks.probabilistic import INTERVALS, LIKELIHOODS, probabilistic_test_score
from benchmarks.report import command_markdown
from benchmarks.runner import Job, run_job
from benchmarks.stats import mean_std
from benchmarks.study import CAPS_FLAGS, SWEEP_FLAGS, TRAINING_FLAGS, Study, StudyOptions, datasets_argument, model_name

HORIZON = LOOKBACK = 96
PROBABILISTIC_DATASETS = ("ETTh1", "ETTh2", "ETTm1", "ETTm2", "weather", "exchange_rate")
PROBABILISTIC_MODELS = ("timesclip", "dlinear", "nlinear", "tide")
CPU_CAPS = TrainingCaps(max_epochs=2, max_samples_per_ts=4096)
"""Every model's budget unless ``--max-epochs`` / ``--max-steps`` / ``--max-samples-per-ts`` say otherwise."""


@dataclass(frozen=True)
class ProbabilisticStudy(Study):
    """CRPS and interval coverage of TimesCLIP and Darts' probabilistic models, at the same budget."""

    name = "probabilistic"
    flags = (*SWEEP_FLAGS, *CAPS_FLAGS, *TRAINING_FLAGS)
    output_name = "probabilistic"
    report_stem = "probabilistic"
    coordinates = ("likelihood",)
    job_runner = functools.partial(run_job, scorer=probabilistic_test_score)  # Ray's workers can import it too

    datasets: tuple[str, ...] = PROBABILISTIC_DATASETS
    models: tuple[str, ...] = PROBABILISTIC_MODELS
    likelihoods: tuple[str, ...] = ("quantile",)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        datasets_argument(parser, cls.datasets)
        parser.add_argument("--models", nargs="+", type=model_name, default=cls.models, help="default: %(default)s")
        parser.add_argument(
            "--likelihoods",
            nargs="+",
            choices=LIKELIHOODS,
            default=cls.likelihoods,
            help="quantile: quantile regression (CRPS from 13 quantiles); gaussian, laplace: scored from 100 samples "
            "(default: %(default)s)",
        )

    def jobs(self, options: StudyOptions) -> list[Job]:
        """One job per (dataset, model, likelihood, seed), at :data:`CPU_CAPS` overridden by the command line's caps.

        Raises
        ------
        ValueError
            For an unknown likelihood.
        """
        unknown = [name for name in self.likelihoods if name not in LIKELIHOODS]
        if unknown:
            raise ValueError(f"Unknown likelihood(s) {unknown}; choose from {list(LIKELIHOODS)}.")
        caps = CPU_CAPS.override(options.caps)
        backbone, scale = options.timesclip_backbone(), options.scale or "official"
        jobs = []
        for dataset in self.datasets:
            for model in self.models:
                base = model_config(model, dataset, HORIZON, scale=scale, backbone=backbone)
                architecture = dict(base.architecture)
                if base.name == "nlinear":  # Darts refuses NLinear's last-value normalisation with a likelihood
                    architecture["normalize"] = False
                for likelihood in self.likelihoods:
                    config = replace(base, architecture={**architecture, "likelihood": likelihood})
                    jobs.extend(
                        Job(
                            dataset,
                            HORIZON,
                            LOOKBACK,
                            config,
                            seed,
                            caps,
                            study=self.name,
                            coordinates={"likelihood": likelihood},
                        )
                        for seed in options.seeds
                    )
        return jobs

    def table(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One row per finished job: dataset, model, likelihood, seed, CRPS, coverages and widths, the median's MSE
        and MAE, epochs, train windows and seconds."""
        rows = []
        for record in records:
            metrics = record["metrics"]
            rows.append(
                {
                    "dataset": record["dataset"],
                    "horizon": record["horizon"],
                    "model": record["model"],
                    "likelihood": record["coordinates"]["likelihood"],
                    "seed": record["seed"],
                    "crps": metrics["crps"],
                    **{f"coverage_{_percent(c)}": metrics[f"coverage_{_percent(c)}"] for c in INTERVALS},
                    **{f"width_{_percent(c)}": metrics[f"width_{_percent(c)}"] for c in INTERVALS},
                    "mse": metrics["mse"],
                    "mae": metrics["mae"],
                    "n_test_windows": metrics["n_test_windows"],
                    "epochs": record.get("budget", {}).get("epochs_run"),
                    "train_windows": record.get("budget", {}).get("train_windows_per_epoch"),
                    "train_seconds": record.get("timing", {}).get("train_seconds"),
                    "inference_seconds": record.get("timing", {}).get("inference_seconds"),
                }
            )
        return sorted(rows, key=lambda r: (r["dataset"], r["likelihood"], r["model"], r["seed"]))

    def markdown(
        self, rows: Sequence[dict[str, Any]], commands: Sequence[str] = (), options: StudyOptions | None = None
    ) -> str:
        """Per likelihood: datasets x models, CRPS and 80 % / 95 % coverage (means over seeds), the lowest CRPS of
        each dataset in bold."""
        budgets = sorted({(r["epochs"], r["train_windows"]) for r in rows}, key=str)
        lines = [
            "# Probabilistic forecasts: CRPS and interval coverage",
            "",
            f"H = {HORIZON}, L = {LOOKBACK}; every stride-1 test window, scores on the standardised scale, means over "
            "seeds (n in brackets). CRPS: lower is better; coverage: the share of observations inside the central "
            "80 % and 95 % intervals (nominal 0.80 and 0.95). TimesCLIP is the `compact` backbone with random "
            "weights. Budget (epochs run, train windows per epoch): "
            + ", ".join(f"{e} x {w}" for e, w in budgets)
            + ".",
            "",
        ]
        lines += command_markdown(commands)
        for likelihood in [name for name in LIKELIHOODS if any(r["likelihood"] == name for r in rows)]:
            subset = [r for r in rows if r["likelihood"] == likelihood]
            models = sorted({r["model"] for r in subset})
            lines += [
                f"## Likelihood `{likelihood}`",
                "",
                "CRPS, then 80 % / 95 % coverage:",
                "",
                "| dataset | " + " | ".join(models) + " |",
                "|---" * (len(models) + 1) + "|",
            ]
            for dataset in sorted({r["dataset"] for r in subset}):
                cells = _cells([r for r in subset if r["dataset"] == dataset])
                best = min((m for m in models if m in cells), key=lambda m: cells[m]["crps"][0])
                texts = []
                for model in models:
                    if model not in cells:
                        texts.append("-")
                        continue
                    cell = cells[model]
                    crps = f"{cell['crps'][0]:.4f}"
                    crps = f"**{crps}**" if model == best else crps
                    texts.append(f"{crps} ({cell['n']}); {cell['coverage_80'][0]:.3f} / {cell['coverage_95'][0]:.3f}")
                lines.append(f"| {dataset} | " + " | ".join(texts) + " |")
            lines.append("")
        return "\n".join(lines)


def _percent(nominal: float) -> int:
    return round(100 * nominal)


def _cells(rows: Sequence[dict[str, Any]]) -> Mapping[str, dict[str, Any]]:
    """By model: ``(mean, std)`` of the CRPS and coverages over seeds, and the number of seeds."""
    cells: dict[str, dict[str, Any]] = {}
    for model in {r["model"] for r in rows}:
        mine = [r for r in rows if r["model"] == model]
        cells[model] = {
            key: mean_std([r[key] for r in mine]) for key in ("crps", *(f"coverage_{_percent(c)}" for c in INTERVALS))
        }
        cells[model]["n"] = len(mine)
    return cells
