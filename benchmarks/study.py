"""The commands of ``python -m benchmarks`` and the interface every study implements.

A :class:`Command` is one sub-command: its name, its help, the shared flags it takes (declared once, in
:data:`FLAGS`), its own arguments and what it does. A :class:`Study` is a command that runs jobs and writes a
report from their result files; it says only what is its own:

- its arguments (:meth:`Study.add_arguments`; they become the fields of the study, a frozen dataclass);
- its jobs (:meth:`Study.jobs`), run by the one runner (:func:`~benchmarks.runner.run_sweep`, or with ``--executor
  ray`` :func:`~benchmarks.executors.run_sweep_ray`) with its job function (:attr:`Study.job_runner`; the suite's
  :func:`~benchmarks.runner.run_job` by default);
- its report (:meth:`Study.table`, :meth:`Study.markdown`, optionally :meth:`Study.plot`), written by the shared
  :meth:`Study.report` into ``<results>/<report_stem>.csv``, ``.md`` and ``.png``.

:meth:`Study.run` strings these together, the same for every study: ``--dry-run`` lists the jobs,
``--report-only`` rewrites the report, otherwise the unfinished jobs run and the report follows. A study whose work is
no sweep (trials of a hyperparameter search, measurements that write only a table) overrides :meth:`Study.run`,
:meth:`Study.jobs` or :meth:`Study.report` and keeps the rest.

Adding a study is one file under ``benchmarks/studies/`` and one line in ``benchmarks.cli.COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import math
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from benchmarks.executors import RayOptions
from benchmarks.models import MODEL_NAMES, RENAMED_MODELS, Scale, TrainingCaps, external_config
from benchmarks.registry import DATA_DIR_ENV, resolve_names
from benchmarks.runner import (
    JobRunner,
    RunSettings,
    SweepJob,
    checkpoint_path,
    command_line,
    is_finished,
    load_results,
    result_path,
    run_job,
)
from darts_timesclip._checks import positive_int

logger = logging.getLogger("benchmarks")

#: Where result files and reports go unless ``--output`` / ``--results`` say otherwise.
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_SEED = 2021  # the seed of the PatchTST and Time-Series-Library scripts


def load_object(target: str, what: str = "object") -> Any:
    """Import ``package.module:attribute``.

    Raises
    ------
    ValueError
        If ``target`` is not of that form, or the module or the attribute cannot be found; the message names
        ``what`` and ``target``.
    """
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise ValueError(f"A {what} is named `package.module:attribute`, got `{target}`.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{what.capitalize()} `{target}`: module `{module_name}` cannot be imported ({err}).") from err
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"{what.capitalize()} `{target}`: `{module_name}` has no `{attribute}`.") from None


# --------------------------------------------------------------------------------------------- argument types
def dataset_name(text: str) -> str:
    """An argparse type: a registry dataset name (any case), as the registry spells it."""
    try:
        return resolve_names([text])[0]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def model_name(text: str) -> str:
    """An argparse type: a model of the suite (any case), or a factory of one's own (``[NAME=]module:factory``)."""
    if ":" in text:
        try:
            external_config(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return text
    name = text.lower()
    if "." in name or "=" in name:
        raise argparse.ArgumentTypeError(
            f"`{text}` is no model of the suite; a model of your own is named `[NAME=]package.module:factory`"
        )
    if name not in MODEL_NAMES:
        renamed = f" (it is `{RENAMED_MODELS[name]}` now)" if name in RENAMED_MODELS else ""
        raise argparse.ArgumentTypeError(f"unknown model `{text}`{renamed}; choose from {', '.join(MODEL_NAMES)}")
    return name


def _ray_resource(text: str, zero_ok: bool) -> float:
    """A Ray resource amount: a number > 0 (>= 0 with ``zero_ok``), fractional only below 1 (Ray's rule)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 if zero_ok else value > 0) or math.isinf(value):
        raise argparse.ArgumentTypeError(
            f"expected {'a number >= 0' if zero_ok else 'a positive number'}, got `{text}`"
        )
    if value > 1 and not value.is_integer():
        raise argparse.ArgumentTypeError(f"Ray takes a fraction below 1 or a whole number, got `{text}`")
    return value


def _cpus_per_job(text: str) -> float:
    return _ray_resource(text, zero_ok=False)


def _gpus_per_job(text: str) -> float:
    return _ray_resource(text, zero_ok=True)


# --------------------------------------------------------------------------------------------- shared flags
@dataclass(frozen=True)
class Flag:
    """A flag several commands take: its option strings and ``add_argument`` keywords (a command may change the
    default, see :attr:`Command.defaults`)."""

    options: tuple[str, ...]
    kwargs: Mapping[str, Any]

    @classmethod
    def of(cls, *options: str, **kwargs: Any) -> Flag:
        """A flag from the arguments ``add_argument`` takes: its option strings, then its keywords."""
        return cls(options, kwargs)

    def add_to(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: Any = None) -> None:
        """Add the flag to ``parser``, with ``default`` where given."""
        kwargs = dict(self.kwargs)
        if default is not None:
            kwargs["default"] = default
        parser.add_argument(*self.options, **kwargs)


_RAY = "with --executor ray: "
FLAGS: dict[str, Flag] = {
    "data_dir": Flag.of("--data-dir", type=Path, help=f"dataset directory (default: ${DATA_DIR_ENV}, ../shared/data)"),
    "output": Flag.of("--output", type=Path, help="job files OUTPUT/runs/RUN_ID.json (default: %(default)s)"),
    "results": Flag.of("--results", type=Path, help="where the report goes (default: %(default)s)"),
    "seeds": Flag.of("--seeds", nargs="+", type=int, default=(DEFAULT_SEED,), help="default: %(default)s"),
    "backbone": Flag.of("--backbone", default="compact", help="TimesCLIP backbone: compact, tiny, hub id, directory"),
    "scale": Flag.of("--scale", choices=("official", "tiny"), default="official", help="tiny: models for smoke tests"),
    "threads": Flag.of("--threads", type=positive_int, help="torch threads per job (default: %(default)s; None: "
                       "as the process has them)"),
    "keep_going": Flag.of("--keep-going", action="store_true", help="log failing jobs and continue"),
    "dry_run": Flag.of("--dry-run", action="store_true", help="list the jobs and whether they are finished"),
    "report_only": Flag.of("--report-only", action="store_true", help="only rewrite the report from finished jobs"),
    "no_report": Flag.of("--no-report", action="store_true", help="do not write the report afterwards"),
    "no_plots": Flag.of("--no-plots", action="store_true", help="write the report's tables, not its plots"),
    "verbose": Flag.of("-v", "--verbose", action="store_true", help="also show Darts' and Lightning's info logs"),
    "executor": Flag.of("--executor", choices=("local", "ray"), default="local", help="local: one job after another "
                        "in this process (default); ray: each job a Ray task"),
    "ray_address": Flag.of("--ray-address", help=_RAY + "join this cluster (auto, HOST:PORT), not a local instance"),
    "cpus_per_job": Flag.of("--cpus-per-job", type=_cpus_per_job, help=_RAY + "CPUs per job (default: 1)"),
    "gpus_per_job": Flag.of("--gpus-per-job", type=_gpus_per_job, help=_RAY + "GPUs per job (default: 0)"),
    "max_epochs": Flag.of("--max-epochs", type=positive_int, help="cap every model's epochs (replaces the tier's or "
                          "the study's cap)"),
    "max_steps": Flag.of("--max-steps", type=positive_int, help="cap every model's optimiser steps"),
    "max_samples_per_ts": Flag.of("--max-samples-per-ts", type=positive_int, help="cap train/val windows (replaces "
                                  "the tier's or the study's cap)"),
    "accelerator": Flag.of("--accelerator", default="auto", help="Lightning accelerator (default: auto)"),
    "progress_bar": Flag.of("--progress-bar", action=argparse.BooleanOptionalAction, help="Lightning's progress bar "
                            "instead of one line per epoch (default: on when stderr is a terminal)"),
    "epoch_checkpoints": Flag.of("--epoch-checkpoints", action=argparse.BooleanOptionalAction, default=True,
                                 help="save each job's training state after every epoch (OUTPUT/checkpoints/"
                                 "RUN_ID.ckpt) and resume an interrupted job from it (default: on)"),
}  # fmt: skip
"""Every flag that more than one command takes, declared here once."""

SWEEP_FLAGS = (
    "data_dir", "output", "results", "seeds", "backbone", "scale", "threads", "keep_going", "dry_run", "report_only",
    "no_report", "no_plots", "verbose", "executor", "ray_address", "cpus_per_job", "gpus_per_job",
)  # fmt: skip
"""The flags of every study."""
CAPS_FLAGS = ("max_epochs", "max_steps", "max_samples_per_ts")
"""Budget caps over a study's own (``run``, ``ablate``)."""
TRAINING_FLAGS = ("accelerator", "progress_bar", "epoch_checkpoints")
"""How forecasting jobs train (studies whose jobs are :class:`~benchmarks.runner.Job` s: a study's default)."""


# --------------------------------------------------------------------------------------------- commands
class Command:
    """A sub-command of ``python -m benchmarks``.

    Attributes
    ----------
    name
        The sub-command (its one line for ``python -m benchmarks --help`` is the first line of its docstring).
    flags
        The shared flags (keys of :data:`FLAGS`) it takes.
    defaults
        Its defaults of shared flags, where they differ from :data:`FLAGS`'.
    """

    name: ClassVar[str]
    flags: ClassVar[tuple[str, ...]] = ("verbose",)
    defaults: ClassVar[Mapping[str, Any]] = {}

    @classmethod
    def summary(cls) -> str:
        """The command's line in ``python -m benchmarks --help``: the first line of its docstring."""
        return (cls.__doc__ or cls.name).strip().splitlines()[0]

    @classmethod
    def description(cls) -> str:
        """The sub-command's ``--help`` text: its module's docstring."""
        return sys.modules[cls.__module__].__doc__ or cls.summary()

    @classmethod
    def add_parser(cls, sub: Any) -> argparse.ArgumentParser:
        """Add the command's sub-parser: its own arguments, then the shared flags it takes."""
        formatter = argparse.RawDescriptionHelpFormatter
        parser = sub.add_parser(cls.name, help=cls.summary(), description=cls.description(), formatter_class=formatter)
        cls.add_arguments(parser)
        group = parser.add_argument_group("shared options")
        defaults = cls.flag_defaults()
        for flag in cls.flags:
            FLAGS[flag].add_to(group, defaults.get(flag))
        parser.set_defaults(command_class=cls)
        return parser

    @classmethod
    def flag_defaults(cls) -> Mapping[str, Any]:
        """The command's defaults of shared flags."""
        return cls.defaults

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add the command's own arguments (none by default)."""

    @classmethod
    def trains(cls, args: argparse.Namespace) -> bool:
        """Whether this invocation trains (and so imports Lightning before anything else logs)."""
        return True

    @classmethod
    def invoke(cls, args: argparse.Namespace, argv: Sequence[str]) -> int:
        """Run the command from its parsed arguments; the exit status."""
        return cls().execute(args)

    def execute(self, args: argparse.Namespace) -> int:  # pragma: no cover - every command defines it
        """What the command does."""
        raise NotImplementedError


@dataclass(frozen=True)
class StudyOptions:
    """The shared options of a study's invocation (the :data:`SWEEP_FLAGS`, :data:`CAPS_FLAGS` and
    :data:`TRAINING_FLAGS`), typed.

    Parameters
    ----------
    output
        Job files: ``<output>/runs/<run_id>.json``.
    results
        Where the report goes (a study without a default: beside the job files, ``output``).
    data_dir
        Dataset directory (``None``: ``$DARTS_TIMESCLIP_DATA``, then ``../shared/data``).
    seeds
        Seeds.
    backbone, scale
        TimesCLIP's backbone; ``official`` or ``tiny`` model sizes (``None``: as the study decides, ``run``'s tier).
    threads
        Torch threads while a job runs (``None``: torch's own).
    keep_going, dry_run, report_only, report, plots
        What to do: log failing jobs and continue; only list the jobs; only write the report; write the report
        after the jobs; draw its plots.
    ray
        The Ray executor's options; ``None``: the local executor.
    caps
        Caps given on the command line (``None``: none).
    accelerator, progress_bar, epoch_checkpoints
        How forecasting jobs train (see :class:`~benchmarks.runner.RunSettings`).
    command
        The command line, recorded in result files and named by reports.
    """

    output: Path
    results: Path
    data_dir: Path | None = None
    seeds: tuple[int, ...] = (DEFAULT_SEED,)
    backbone: str = "compact"
    scale: Scale | None = "official"
    threads: int | None = None
    keep_going: bool = False
    dry_run: bool = False
    report_only: bool = False
    report: bool = True
    plots: bool = True
    ray: RayOptions | None = None
    caps: TrainingCaps | None = None
    accelerator: str = "auto"
    progress_bar: bool = False
    epoch_checkpoints: bool = True
    command: str = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace, argv: Sequence[str]) -> StudyOptions:
        """The options of a parsed command line.

        Raises
        ------
        ValueError
            If a Ray option is given with ``--executor local``.
        """
        caps = None
        if any(getattr(args, name, None) for name in CAPS_FLAGS):
            caps = TrainingCaps(*(getattr(args, name, None) for name in CAPS_FLAGS))
        # a study takes the shared flags it names: the others keep these options' defaults
        computed = ("results", "seeds", "progress_bar", "caps", "ray", "report", "plots", "command")
        given = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name) and f.name not in computed}
        progress_bar = getattr(args, "progress_bar", False)
        return cls(
            **given,
            results=args.output if getattr(args, "results", None) is None else args.results,
            seeds=tuple(getattr(args, "seeds", cls.seeds)),
            report=not getattr(args, "no_report", False),
            plots=not getattr(args, "no_plots", False),
            ray=_ray_options(args),
            caps=caps,
            progress_bar=sys.stderr.isatty() if progress_bar is None else progress_bar,
            command=command_line(argv),
        )

    @property
    def tiny(self) -> bool:
        """Whether the models are the tiny smoke-test ones."""
        return self.scale == "tiny"

    def timesclip_backbone(self) -> str:
        """TimesCLIP's backbone: ``--backbone``, or the ``tiny`` preset at the tiny scale."""
        return "tiny" if self.tiny else self.backbone

    def run_settings(self) -> RunSettings:
        """How the jobs run."""
        same = ("data_dir", "progress_bar", "accelerator", "command", "epoch_checkpoints")
        return RunSettings(self.output, **{name: getattr(self, name) for name in same}, torch_threads=self.threads)


def _ray_options(args: argparse.Namespace) -> RayOptions | None:
    """``--executor ray``'s options, or ``None`` for the local executor.

    Raises
    ------
    ValueError
        If a Ray option is given with ``--executor local``.
    """
    given = {
        "--ray-address": getattr(args, "ray_address", None),
        "--cpus-per-job": getattr(args, "cpus_per_job", None),
        "--gpus-per-job": getattr(args, "gpus_per_job", None),
    }
    given = {option: value for option, value in given.items() if value is not None}
    executor = getattr(args, "executor", "ray" if given else "local")  # without --executor: Ray if given an address
    if executor == "local":
        if given:
            named = ", ".join(
                f"`{option} {value:g}`" if isinstance(value, float) else f"`{option} {value}`"
                for option, value in given.items()
            )
            raise ValueError(f"{named}: only with `--executor ray` (the executor is `local`).")
        return None
    defaults = RayOptions()
    return RayOptions(
        address=given.get("--ray-address"),
        cpus_per_job=given.get("--cpus-per-job", defaults.cpus_per_job),
        gpus_per_job=given.get("--gpus-per-job", defaults.gpus_per_job),
    )


def dry_run_line(job: SweepJob, output_dir: Path, epoch_checkpoints: bool = True) -> str:
    """``--dry-run``'s line for a job: finished or not, and whether it would resume from an epoch checkpoint."""
    done = is_finished(result_path(output_dir, job))
    line = f"{'done' if done else 'todo'}  {job.run_id}  {job.describe()}  {job.details()}"
    checkpoint = checkpoint_path(output_dir, job)
    if not done and epoch_checkpoints and checkpoint.is_file():
        from benchmarks.callbacks import read_epoch_checkpoint

        try:
            progress = read_epoch_checkpoint(checkpoint)
        except ValueError as err:
            line += f"  ({err})"
        else:
            seconds = progress["train_seconds"]
            line += f"  (resumes after epoch {progress['epochs_done']}, {seconds:,.0f} s trained, from {checkpoint})"
    return line


@dataclass(frozen=True)
class Study(Command, ABC):
    """A study: jobs on the one runner, and a report from their result files.

    A subclass is a frozen dataclass whose fields are its own arguments (:meth:`add_arguments` adds them with the
    same names; :meth:`from_args` reads them back). Its class attributes:

    Attributes
    ----------
    output_name
        Its job files' directory under ``benchmarks/results`` (the ``--output`` default); ``""``: that directory.
    report_stem
        Its report's file names: ``<results>/<report_stem>.csv``, ``.md``, ``.png``.
    coordinates
        The names of its jobs' :attr:`~benchmarks.runner.Job.coordinates`, in order (result files written before
        jobs had coordinates kept them as ``tier = "<study>:<value>:<value>..."``, read back in this order).
    job_runner
        The function that runs one of its jobs (a module-level function or a ``functools.partial`` of one: Ray's
        workers import it). Default: :func:`~benchmarks.runner.run_job`.
    """

    flags: ClassVar[tuple[str, ...]] = (*SWEEP_FLAGS, *TRAINING_FLAGS)
    output_name: ClassVar[str] = ""
    report_stem: ClassVar[str] = ""
    coordinates: ClassVar[tuple[str, ...]] = ()
    job_runner: ClassVar[JobRunner] = staticmethod(run_job)

    # ------------------------------------------------------------------ the command line
    @classmethod
    def flag_defaults(cls) -> Mapping[str, Any]:
        """``--output`` under ``benchmarks/results``, ``--results`` there; then the study's own defaults."""
        return {"output": RESULTS_DIR / cls.output_name, "results": RESULTS_DIR, **cls.defaults}

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Study:
        """The study of a parsed command line: each field from the argument of the same name (lists as tuples; an
        argument not given, ``None``, leaves the field's default)."""
        values = {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    @classmethod
    def trains(cls, args: argparse.Namespace) -> bool:
        return not (getattr(args, "dry_run", False) or getattr(args, "report_only", False))

    @classmethod
    def invoke(cls, args: argparse.Namespace, argv: Sequence[str]) -> int:
        return cls.from_args(args).run(StudyOptions.from_args(args, argv))

    # ------------------------------------------------------------------ what a study is
    @abstractmethod
    def jobs(self, options: StudyOptions) -> Sequence[SweepJob]:
        """The study's jobs, in the order they run."""

    def prepare(self, options: StudyOptions) -> None:
        """Work the jobs need before they run, skipped by ``--dry-run`` and ``--report-only`` (the transfer study
        pretrains its backbones here). Default: nothing."""

    @abstractmethod
    def table(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The report's rows (its CSV) from the study's finished result records (:meth:`records`)."""

    @abstractmethod
    def markdown(
        self, rows: Sequence[dict[str, Any]], commands: Sequence[str] = (), options: StudyOptions | None = None
    ) -> str:
        """The report's Markdown from its rows; ``commands`` made the result files (see
        :func:`~benchmarks.report.command_markdown`); ``options``, the invocation's (``None``: its defaults)."""

    def plot(self, rows: Sequence[dict[str, Any]], path: Path) -> Path | None:
        """Draw the report's figure into ``path``; ``None`` where the study has none (the default)."""
        return None

    # ------------------------------------------------------------------ shared by every study
    def owns(self, record: dict[str, Any]) -> bool:
        """Whether a result record is one of this study's jobs."""
        return record["study"] == self.name

    def records(self, options: StudyOptions) -> list[dict[str, Any]]:
        """The study's finished result records under ``options.output``, each with its ``study`` and
        ``coordinates``.

        Records written before jobs had coordinates named them in ``tier`` as ``"<study>:<value>:..."`` (a plain
        tier name for the suite's ``run``); they are read into the same fields, in :attr:`coordinates`' order.
        """
        out = []
        for record in load_results(options.output):
            if "study" not in record:
                tier = str(record.get("tier") or "")
                study, *values = tier.split(":") if ":" in tier else ["run"]
                record = {**record, "study": study, "coordinates": dict(zip(self.coordinates, values))}
            if self.owns(record):
                out.append(record)
        return out

    def report(self, options: StudyOptions) -> list[Path]:
        """Write the report from the finished jobs under ``options.output`` into ``options.results``.

        Raises
        ------
        ValueError
            If no job of the study has finished there.
        """
        records = self.records(options)
        rows = self.table(records)
        if not rows:
            raise ValueError(
                f"No finished `{self.name}` job under `{options.output}`; run `python -m benchmarks {self.name}` first."
            )
        from benchmarks.report import commands_that_ran, write_study_files

        commands = commands_that_ran(records) or [options.command]
        markdown = self.markdown(rows, commands, options)
        plot = (lambda path: self.plot(rows, path)) if options.plots and type(self).plot is not Study.plot else None
        return write_study_files(options.results, self.report_stem, rows, markdown, plot)

    def run(self, options: StudyOptions) -> int:
        """List the jobs (``--dry-run``), or run the unfinished ones, then write the report; the exit status (1 if a
        job failed)."""
        from benchmarks.executors import run_sweep_ray
        from benchmarks.runner import run_sweep

        if options.dry_run:
            for job in self.jobs(options):
                print(dry_run_line(job, options.output, options.epoch_checkpoints))
            return 0
        failed = 0
        if not options.report_only:
            self.prepare(options)
            jobs, settings, runner = self.jobs(options), options.run_settings(), type(self).job_runner
            if options.ray is None:
                summary = run_sweep(jobs, settings, job_runner=runner, keep_going=options.keep_going)
            else:
                summary = run_sweep_ray(jobs, settings, options.ray, job_runner=runner, keep_going=options.keep_going)
            failed = len(summary.failed)
            log = logger.error if failed else logger.info
            log(
                "%s: %d run, %d already done, %d failed; results in %s",
                self.name,
                len(summary.completed),
                len(summary.skipped),
                failed,
                options.output / "runs",
            )
        if options.report or options.report_only:
            files = self.report(options)
            print("wrote " + ", ".join(str(f) for f in files))
        return 1 if failed else 0


def forecast_row(record: dict[str, Any], labels: Mapping[str, Any], **after: Any) -> dict[str, Any]:
    """A report row of a forecasting job's record: dataset, horizon, ``labels`` (where it stands in the study), seed,
    MSE and MAE, then ``after``."""
    return {
        "dataset": record["dataset"],
        "horizon": record["horizon"],
        **labels,
        "seed": record["seed"],
        "mse": record["metrics"]["mse"],
        "mae": record["metrics"]["mae"],
        **after,
    }


def datasets_argument(parser: argparse.ArgumentParser, default: Sequence[str], help_text: str = "") -> None:
    """``--datasets``: registry names (any case), checked as they are parsed."""
    parser.add_argument(
        "--datasets", nargs="+", type=dataset_name, default=tuple(default), help=help_text or "default: %(default)s"
    )
