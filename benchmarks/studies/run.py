"""``python -m benchmarks run``: the suite's sweep, then ``results.csv``, ``results.md`` and plots beside its job files.

A sweep is datasets x horizons x models x seeds, named by a tier (``--tier``: its datasets, horizons, models and
budget; see ``python -m benchmarks list``) or spelt out (``--datasets``, ``--horizons``, ``--models``). Finished jobs
are skipped; the report puts the published numbers beside ours.

Bring your own model: ``--model [NAME=]package.module:factory`` runs any Darts global forecasting model through the
same protocol (splits, scaling, test windows, result files, report). The factory receives, by keyword, those of
``input_chunk_length``, ``output_chunk_length``, ``random_state`` and ``pl_trainer_kwargs`` its signature names and
returns the untrained model; see ``benchmarks/examples/factories.py``.

``python -m benchmarks report`` rewrites the report alone (as ``run --report-only``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.models import DEFAULT_MODELS, MODEL_NAMES
from benchmarks.registry import REGISTRY
from benchmarks.runner import Job, SweepSpec
from benchmarks.study import (
    CAPS_FLAGS,
    RESULTS_DIR,
    SWEEP_FLAGS,
    TRAINING_FLAGS,
    Command,
    Study,
    StudyOptions,
    dataset_name,
    model_name,
    positive_int,
)
from benchmarks.tiers import TIERS, get_tier


@dataclass(frozen=True)
class RunStudy(Study):
    """Run a sweep (finished jobs are skipped), then write the report."""

    name = "run"
    flags = (*SWEEP_FLAGS, *CAPS_FLAGS, *TRAINING_FLAGS)
    defaults = {"results": None, "scale": None}

    tier: str | None = None
    datasets: tuple[str, ...] = ()
    horizons: tuple[int, ...] = ()
    lookback: int = 96
    models: tuple[str, ...] = ()
    model: tuple[str, ...] = ()
    pretrained: bool = False

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        tiers = "; ".join(f"{t.name}: {t.description}" for t in TIERS.values())
        parser.add_argument("--tier", choices=list(TIERS), help=f"named preset. {tiers}")
        parser.add_argument("--datasets", nargs="+", type=dataset_name, help=f"registry names: {', '.join(REGISTRY)}")
        parser.add_argument("--horizons", nargs="+", type=positive_int, help="default: the tier's or the registry's")
        parser.add_argument("--lookback", type=positive_int, default=96, help="input length L (default: 96)")
        parser.add_argument("--models", nargs="+", type=model_name, help=f"any of: {', '.join(MODEL_NAMES)}")
        parser.add_argument(
            "--model",
            action="append",
            type=model_name,
            metavar="[NAME=]MODULE:FACTORY",
            help="a model of your own: a function returning a Darts forecasting model (repeatable; alone, it runs "
            "without the tier's models)",
        )
        parser.add_argument("--pretrained", action="store_true", help="load pretrained TimesCLIP backbone weights")

    def jobs(self, options: StudyOptions) -> list[Job]:
        """The sweep's jobs.

        Raises
        ------
        ValueError
            If neither ``--tier`` nor ``--datasets`` is given.
        """
        tier = get_tier(self.tier) if self.tier else None
        if tier is None and not self.datasets:
            raise ValueError("Give `--tier` or `--datasets`.")
        models = self.models or (() if self.model else (tier.models if tier else DEFAULT_MODELS))
        return SweepSpec(
            datasets=self.datasets or tier.datasets,
            horizons=self.horizons or (tier.horizons if tier else None),
            lookback=self.lookback,
            models=(*models, *self.model),
            seeds=options.seeds,
            scale=options.scale or (tier.scale if tier else "official"),
            tier=tier,
            caps=options.caps,
            backbone=options.backbone,
            pretrained=self.pretrained,
        ).expand()

    def owns(self, record: dict[str, Any]) -> bool:
        return True  # the sweep's directory holds its jobs only, whatever their records say

    def table(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        from benchmarks.report import flatten

        return [flatten(r) for r in records]

    def markdown(
        self, rows: Sequence[dict[str, Any]], commands: Sequence[str] = (), options: StudyOptions | None = None
    ) -> str:
        from benchmarks.report import markdown_table

        return markdown_table(rows, commands)

    def report(self, options: StudyOptions) -> list[Path]:
        """``results.csv``, ``results.md`` and (unless ``--no-plots``) ``plots/`` (an empty table without jobs)."""
        from benchmarks.report import write_report

        files = write_report(options.output, plots=options.plots, results_dir=options.results)
        return [files.csv, files.markdown] + ([files.csv.parent / "plots"] if files.plots else [])


class ReportCommand(Command):
    """Aggregate result files into results.csv, results.md and plots."""

    name = "report"
    flags = ("output", "results", "no_plots", "verbose")
    defaults = {"output": RESULTS_DIR}

    @classmethod
    def trains(cls, args: argparse.Namespace) -> bool:
        return False

    def execute(self, args: argparse.Namespace) -> int:
        from benchmarks.report import write_report

        files = write_report(args.output, plots=not args.no_plots, results_dir=args.results)
        print(f"wrote {files.csv}, {files.markdown} and {len(files.plots)} plot(s)")
        return 0
