"""The one entry point: ``python -m benchmarks <command>``.

Every command is a :class:`benchmarks.study.Command` (studies: :class:`benchmarks.study.Study`), registered by one
line in :data:`COMMANDS`; the flags several commands share are declared once, in :data:`benchmarks.study.FLAGS`.
``main`` parses the command line, sets up the console for the command's length (:func:`console_session`) and runs
the command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import cache

from benchmarks.console import console_session
from benchmarks.executors import JobFailedError
from benchmarks.study import Command, load_object

COMMANDS: tuple[str, ...] = (
    "benchmarks.studies.run:RunStudy",
    "benchmarks.studies.run:ReportCommand",
    "benchmarks.cli:ListCommand",
    "benchmarks.studies.ablate:AblateStudy",
    "benchmarks.studies.budget:BudgetStudy",
    "benchmarks.studies.transfer:TransferStudy",
    "benchmarks.studies.regression:RegressionStudy",
    "benchmarks.studies.tune:TuneStudy",
    "benchmarks.studies.probabilistic:ProbabilisticStudy",
    "benchmarks.commands.cost:Cost",
    "benchmarks.commands.quickstart:Quickstart",
    "benchmarks.commands.speed:Speed",
    "benchmarks.commands.export:Export",
    "benchmarks.commands.explain:Explain",
    "benchmarks.commands.load_test:LoadTest",
    "benchmarks.commands.latency:Latency",
    "benchmarks.commands.gpu_figures:GPUFigures",
    "benchmarks.commands.variates:Variates",
    "benchmarks.commands.vq_figures:VQFigures",
)
"""The commands of ``python -m benchmarks``, in ``--help`` order, one ``module:class`` a line."""


@cache
def command_classes() -> tuple[type[Command], ...]:
    """The classes of :data:`COMMANDS`."""
    return tuple(load_object(target, what="command") for target in COMMANDS)


class ListCommand(Command):
    """Datasets (and whether their files are found), models, tiers, studies and commands."""

    name = "list"
    flags = ("data_dir", "verbose")

    @classmethod
    def trains(cls, args: argparse.Namespace) -> bool:
        return False

    def execute(self, args: argparse.Namespace) -> int:
        from benchmarks.models import MODEL_NAMES, TIMESCLIP_CONFIGURATIONS
        from benchmarks.registry import REGISTRY, find_file
        from benchmarks.study import Study
        from benchmarks.tiers import TIERS

        print("datasets:")
        for spec in REGISTRY.values():
            try:
                where = str(find_file(spec, args.data_dir))
            except FileNotFoundError:
                where = "MISSING (pass --data-dir; `run` says how to obtain it)"
            print(
                f"  {spec.name:<17} {spec.n_rows:>6} rows x {spec.n_variates:>3} variates, freq {spec.freq:<5} "
                f"horizons {list(spec.horizons)}  {where}"
            )
        print("models: " + ", ".join(MODEL_NAMES) + ", or your own: --model [NAME=]package.module:factory")
        print("TimesCLIP configurations (model timesclip-<name>): " + ", ".join(TIMESCLIP_CONFIGURATIONS))
        print("tiers:")
        for tier in TIERS.values():
            print(f"  {tier.name:<9} {tier.description}")
        for title, studies in (("studies", True), ("commands", False)):
            print(f"{title}:")
            for command in command_classes():
                if issubclass(command, Study) == studies:
                    print(f"  {command.name:<12} {command.summary()}")
        return 0


def build_parser(commands: Sequence[type[Command]] | None = None) -> argparse.ArgumentParser:
    """The argument parser of ``python -m benchmarks`` (of ``commands``; default: :data:`COMMANDS`)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="TimesCLIP and baselines on the long-horizon benchmarks (metrics on the standardised scale, "
        "train-split StandardScaler); studies of TimesCLIP; measurements. `python -m benchmarks COMMAND --help` "
        "for each command.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in command_classes() if commands is None else commands:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, commands: Sequence[type[Command]] | None = None) -> int:
    """Entry point of ``python -m benchmarks``; the exit status.

    Parameters
    ----------
    argv
        The arguments (default: ``sys.argv[1:]``).
    commands
        The commands to offer (default: :data:`COMMANDS`); tests pass their own.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(commands)
    args = parser.parse_args(argv)
    command: type[Command] = args.command_class
    # commands that train nothing (`list`, `report`, `--dry-run`) need not import Lightning (and torch)
    with console_session(verbose=getattr(args, "verbose", False), import_lightning=command.trains(args)):
        try:
            return command.invoke(args, argv)
        except (ValueError, FileNotFoundError, ImportError) as err:
            parser.exit(2, f"error: {err}\n")
        except JobFailedError as err:  # the Ray executor has logged the job's error and traceback
            parser.exit(1, f"error: {err}\n")
