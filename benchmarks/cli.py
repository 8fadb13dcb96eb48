"""Command line: ``python -m benchmarks run|report|list|transfer|ablate|budget|regression``."""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.console import configure_console
from benchmarks.executors import JobFailedError, RayOptions
from benchmarks.models import DEFAULT_MODELS, MODEL_NAMES, TrainingCaps
from benchmarks.registry import DATA_DIR_ENV, REGISTRY, find_file, resolve_names
from benchmarks.runner import Job, RunSettings, SweepSpec, checkpoint_path, command_line, is_finished, result_path
from benchmarks.tiers import TIERS, get_tier

logger = logging.getLogger("benchmarks")

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results"
DEFAULT_SEED = 2021  # the seed of the PatchTST and Time-Series-Library scripts


@dataclass(frozen=True)
class RunCommand:
    """Everything ``run`` needs, parsed from the command line."""

    sweep: SweepSpec
    settings: RunSettings
    dry_run: bool
    keep_going: bool
    report: bool
    ray: RayOptions | None = None
    """The Ray executor's options with ``--executor ray``; ``None``: the local executor."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got `{text}`") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got `{text}`")
    return value


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


def _model_name(text: str) -> str:
    name = text.lower()
    if name not in MODEL_NAMES:
        raise argparse.ArgumentTypeError(f"unknown model `{text}`; choose from {', '.join(MODEL_NAMES)}")
    return name


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m benchmarks``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="TimesCLIP and baselines on the long-horizon benchmarks (metrics on the "
        "standardised scale, train-split StandardScaler).",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a sweep (finished jobs are skipped), then write the report")
    tiers = "; ".join(f"{t.name}: {t.description}" for t in TIERS.values())
    run.add_argument("--tier", choices=list(TIERS), help=f"named preset. {tiers}")
    run.add_argument("--datasets", nargs="+", help=f"registry names: {', '.join(REGISTRY)}")
    run.add_argument("--horizons", nargs="+", type=_positive_int, help="default: the tier's or the registry's")
    run.add_argument("--lookback", type=_positive_int, default=96, help="input length L (default: 96)")
    run.add_argument("--models", nargs="+", type=_model_name, help=f"any of: {', '.join(MODEL_NAMES)}")
    run.add_argument("--seeds", nargs="+", type=int, default=[DEFAULT_SEED], help="default: 2021")
    run.add_argument("--data-dir", type=Path, help=f"dataset directory (default: ${DATA_DIR_ENV}, then ../shared/data)")
    run.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="default: benchmarks/results")
    run.add_argument("--backbone", default="compact", help="TimesCLIP backbone: compact, tiny, a hub id or a directory")
    run.add_argument("--pretrained", action="store_true", help="load pretrained TimesCLIP backbone weights")
    run.add_argument("--max-epochs", type=_positive_int, help="cap epochs of every model (overrides the tier)")
    run.add_argument("--max-steps", type=_positive_int, help="cap optimiser steps of every model (overrides the tier)")
    run.add_argument("--max-samples-per-ts", type=_positive_int, help="cap train/val windows (overrides the tier)")
    run.add_argument("--accelerator", default="auto", help="Lightning accelerator (default: auto)")
    run.add_argument(
        "--progress-bar",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Lightning's progress bar instead of one line per epoch (default: on when stderr is a terminal)",
    )
    run.add_argument(
        "--epoch-checkpoints",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="save each job's training state after every epoch (OUTPUT/checkpoints/RUN_ID.ckpt) and resume an "
        "interrupted job from it (default: on)",
    )
    run.add_argument("--keep-going", action="store_true", help="log failing jobs and continue")
    run.add_argument("--dry-run", action="store_true", help="list the jobs and whether they are finished")
    run.add_argument("--no-report", action="store_true", help="do not write the report afterwards")
    run.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local: one job after another in this process (default); ray: each job a Ray task",
    )
    run.add_argument(
        "--ray-address", help="with --executor ray: join this cluster (auto, HOST:PORT) instead of a local instance"
    )
    run.add_argument("--cpus-per-job", type=_cpus_per_job, help="with --executor ray: CPUs per job (default: 1)")
    run.add_argument("--gpus-per-job", type=_gpus_per_job, help="with --executor ray: GPUs per job (default: 0)")
    run.add_argument("-v", "--verbose", action="store_true", help="also show Darts' and Lightning's info logs")

    report = sub.add_parser("report", help="aggregate result files into results.csv, results.md and plots")
    report.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results directory")
    report.add_argument("--no-plots", action="store_true", help="skip the PNG plots")

    transfer = sub.add_parser(
        "transfer", help="self-pretrained against random-init TimesCLIP (leave-one-dataset-out), then its report"
    )
    from benchmarks.transfer import BUDGETS, INITS, TRANSFER_DATASETS, PretrainSettings
    from darts_timesclip.pretraining.options import OBJECTIVES

    defaults = PretrainSettings()
    transfer.add_argument("--datasets", nargs="+", default=list(TRANSFER_DATASETS), help="targets (and corpus)")
    transfer.add_argument(
        "--corpus", nargs="+", default=list(TRANSFER_DATASETS), help="datasets whose train splits are pretrained on"
    )
    transfer.add_argument("--seeds", nargs="+", type=int, default=[DEFAULT_SEED, DEFAULT_SEED + 1])
    transfer.add_argument("--budgets", nargs="+", choices=BUDGETS, default=list(BUDGETS))
    transfer.add_argument("--inits", nargs="+", choices=INITS, default=list(INITS))
    transfer.add_argument("--data-dir", type=Path, help=f"dataset directory (default: ${DATA_DIR_ENV})")
    transfer.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT / "transfer", help="job files and backbones (resumable)"
    )
    transfer.add_argument(
        "--results", type=Path, default=DEFAULT_OUTPUT, help="where pretraining.csv / .md / .png are written"
    )
    transfer.add_argument("--backbone", default=defaults.backbone, help="architecture to pretrain and compare")
    transfer.add_argument("--pretrain-steps", type=_positive_int, default=defaults.steps)
    transfer.add_argument("--pretrain-batch-size", type=_positive_int, default=defaults.batch_size)
    transfer.add_argument("--synthetic", type=int, default=defaults.synthetic, help="synthetic series per corpus")
    transfer.add_argument(
        "--objective",
        default=defaults.objective,
        choices=OBJECTIVES,
        help="pretraining objective besides the contrastive loss (default: %(default)s); the report keeps them apart",
    )
    transfer.add_argument("--scale", choices=("official", "tiny"), default="official", help="tiny: smoke tests")
    transfer.add_argument("--no-nlinear", action="store_true", help="leave the NLinear rows out")
    transfer.add_argument("--keep-going", action="store_true", help="log failing jobs and continue")
    transfer.add_argument("--report-only", action="store_true", help="only rewrite the report from finished jobs")
    transfer.add_argument("-v", "--verbose", action="store_true", help="also show Darts' and Lightning's info logs")

    ablate = sub.add_parser("ablate", help="TimesCLIP's views and variants side by side over seeds, then its report")
    from benchmarks.ablate import ABLATION_DATASETS, ABLATION_SEEDS, ABLATIONS

    ablate.add_argument("--datasets", nargs="+", default=list(ABLATION_DATASETS), help="registry names")
    ablate.add_argument(
        "--variants", nargs="+", choices=list(ABLATIONS), default=list(ABLATIONS), help="configurations to run"
    )
    ablate.add_argument("--seeds", nargs="+", type=int, default=list(ABLATION_SEEDS))
    ablate.add_argument("--data-dir", type=Path, help=f"dataset directory (default: ${DATA_DIR_ENV})")
    ablate.add_argument("--output", type=Path, default=DEFAULT_OUTPUT / "ablations", help="job files (resumable)")
    ablate.add_argument(
        "--results", type=Path, default=DEFAULT_OUTPUT, help="where ablations.csv / .md / .png are written"
    )
    ablate.add_argument("--backbone", default="compact", help="TimesCLIP backbone: a preset or a directory")
    ablate.add_argument("--scale", choices=("official", "tiny"), default="official", help="tiny: smoke tests")
    ablate.add_argument("--max-epochs", type=_positive_int, help="cap epochs (default: the standard tier's 2)")
    ablate.add_argument("--max-samples-per-ts", type=_positive_int, help="cap windows (default: the tier's 4096)")
    ablate.add_argument("--keep-going", action="store_true", help="log failing jobs and continue")
    ablate.add_argument("--dry-run", action="store_true", help="list the jobs and whether they are finished")
    ablate.add_argument("--report-only", action="store_true", help="only rewrite the report from finished jobs")
    ablate.add_argument("-v", "--verbose", action="store_true", help="also show Darts' and Lightning's info logs")

    budget = sub.add_parser("budget", help="test MSE as the training budget grows, TimesCLIP beside baselines")
    from benchmarks.budget import BUDGET_DATASETS, BUDGET_MODELS, BUDGETS

    budget.add_argument("--datasets", nargs="+", default=list(BUDGET_DATASETS), help="registry names")
    budget.add_argument("--models", nargs="+", type=_model_name, default=list(BUDGET_MODELS))
    budget.add_argument(
        "--budgets", nargs="+", choices=list(BUDGETS), default=["2x4096", "2xall", "10xall-es"], help="curve points"
    )
    budget.add_argument("--seeds", nargs="+", type=int, default=[DEFAULT_SEED])
    budget.add_argument("--data-dir", type=Path, help=f"dataset directory (default: ${DATA_DIR_ENV})")
    budget.add_argument("--output", type=Path, default=DEFAULT_OUTPUT / "budget", help="job files (resumable)")
    budget.add_argument("--results", type=Path, default=DEFAULT_OUTPUT, help="where budget.csv / .md / .png go")
    budget.add_argument("--backbone", default="compact", help="TimesCLIP backbone: a preset or a directory")
    budget.add_argument("--scale", choices=("official", "tiny"), default="official", help="tiny: smoke tests")
    budget.add_argument("--keep-going", action="store_true", help="log failing jobs and continue")
    budget.add_argument("--dry-run", action="store_true", help="list the jobs and whether they are finished")
    budget.add_argument("--report-only", action="store_true", help="only rewrite the report from finished jobs")
    budget.add_argument("-v", "--verbose", action="store_true", help="also show Darts' and Lightning's info logs")

    regression = sub.add_parser(
        "regression", help="series-level regression: TimesCLIPRegressor's stages beside scikit-learn, then its report"
    )
    from benchmarks.regression import DEFAULT_SEEDS, DEFAULT_SIZES, TASKS, RegressionSettings

    defaults = RegressionSettings()
    regression.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    regression.add_argument("--sizes", nargs="+", type=_positive_int, default=list(DEFAULT_SIZES), help="samples")
    regression.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS))
    regression.add_argument("--data-dir", type=Path, help=f"dataset directory (default: ${DATA_DIR_ENV})")
    regression.add_argument("--output", type=Path, default=DEFAULT_OUTPUT / "regression", help="job files (resumable)")
    regression.add_argument("--results", type=Path, default=DEFAULT_OUTPUT, help="where regression.csv / .md go")
    regression.add_argument("--backbone", default=defaults.backbone, help="TimesCLIP backbone: a preset or a directory")
    for name in ("forecaster_epochs", "windows_per_sample", "head_epochs", "finetune_epochs", "scratch_epochs"):
        regression.add_argument(f"--{name.replace('_', '-')}", type=_positive_int, default=getattr(defaults, name))
    regression.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size)
    regression.add_argument("--threads", type=_positive_int, default=1, help="torch threads (default: 1)")
    regression.add_argument("--scale", choices=("official", "tiny"), default="official", help="tiny: smoke tests")
    regression.add_argument("--note", default="", help="a line about the machine's state, printed in the report")
    regression.add_argument("--keep-going", action="store_true", help="log failing jobs and continue")
    regression.add_argument("--report-only", action="store_true", help="only rewrite the report from finished jobs")
    regression.add_argument("-v", "--verbose", action="store_true", help="also show Darts' and Lightning's info logs")

    from benchmarks import tune

    tune.add_arguments(sub.add_parser("tune", help="hyperparameter search on the validation split (Ray Tune)"))

    listing = sub.add_parser("list", help="datasets (and whether their files are found), models, tiers")
    listing.add_argument("--data-dir", type=Path, help="dataset directory")
    return parser


def parse_run(args: argparse.Namespace, argv: Sequence[str]) -> RunCommand:
    """Turn ``run``'s arguments into a ``RunCommand``.

    Raises
    ------
    ValueError
        If neither ``--tier`` nor ``--datasets`` is given, or a name is unknown.
    """
    tier = get_tier(args.tier) if args.tier else None
    if tier is None and not args.datasets:
        raise ValueError("Give `--tier` or `--datasets`.")
    ray_options = _ray_options(args)
    caps = None
    if args.max_epochs or args.max_steps or args.max_samples_per_ts:
        caps = TrainingCaps(args.max_epochs, args.max_steps, args.max_samples_per_ts)
    sweep = SweepSpec(
        datasets=tuple(resolve_names(args.datasets)) if args.datasets else tier.datasets,
        horizons=tuple(args.horizons) if args.horizons else (tier.horizons if tier else None),
        lookback=args.lookback,
        models=tuple(args.models) if args.models else (tier.models if tier else DEFAULT_MODELS),
        seeds=tuple(args.seeds),
        scale=tier.scale if tier else "official",
        tier=tier,
        caps=caps,
        backbone=args.backbone,
        pretrained=args.pretrained,
    )
    progress = sys.stderr.isatty() if args.progress_bar is None else args.progress_bar
    settings = RunSettings(
        output_dir=args.output,
        data_dir=args.data_dir,
        progress_bar=progress,
        accelerator=args.accelerator,
        command=command_line(argv),
        epoch_checkpoints=args.epoch_checkpoints,
    )
    return RunCommand(
        sweep=sweep,
        settings=settings,
        dry_run=args.dry_run,
        keep_going=args.keep_going,
        report=not args.no_report,
        ray=ray_options,
    )


def _ray_options(args: argparse.Namespace) -> RayOptions | None:
    """``--executor ray``'s options, or ``None`` for the local executor.

    Raises
    ------
    ValueError
        If a Ray option is given with ``--executor local``.
    """
    given = {
        "--ray-address": args.ray_address,
        "--cpus-per-job": args.cpus_per_job,
        "--gpus-per-job": args.gpus_per_job,
    }
    given = {option: value for option, value in given.items() if value is not None}
    if args.executor == "local":
        if given:
            named = ", ".join(
                f"`{option} {value:g}`" if isinstance(value, float) else f"`{option} {value}`"
                for option, value in given.items()
            )
            raise ValueError(f"{named}: only with `--executor ray` (the executor is `local`).")
        return None
    defaults = RayOptions()
    return RayOptions(
        address=args.ray_address,
        cpus_per_job=defaults.cpus_per_job if args.cpus_per_job is None else args.cpus_per_job,
        gpus_per_job=defaults.gpus_per_job if args.gpus_per_job is None else args.gpus_per_job,
    )


def _dry_run_line(job: Job, output_dir: Path, epoch_checkpoints: bool = True) -> str:
    """``--dry-run``'s line for a job: finished or not, and whether it would resume from an epoch checkpoint."""
    done = is_finished(result_path(output_dir, job))
    line = f"{'done' if done else 'todo'}  {job.run_id}  {job.describe()}  caps={job.caps.to_dict()}"
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


def cmd_run(command: RunCommand) -> int:
    """Run (or list) a sweep, then write the report."""
    from benchmarks.report import write_report
    from benchmarks.runner import run_sweep

    jobs = command.sweep.expand()
    if command.dry_run:
        for job in jobs:
            print(_dry_run_line(job, command.settings.output_dir, command.settings.epoch_checkpoints))
        return 0
    if command.ray is None:
        summary = run_sweep(jobs, command.settings, keep_going=command.keep_going)
    else:
        from benchmarks.executors import run_sweep_ray

        summary = run_sweep_ray(jobs, command.settings, command.ray, keep_going=command.keep_going)
    logger.info(
        "Sweep finished: %d run, %d already done, %d failed; results in %s",
        len(summary.completed),
        len(summary.skipped),
        len(summary.failed),
        command.settings.output_dir / "runs",
    )
    if command.report:
        write_report(command.settings.output_dir)
    return 1 if summary.failed else 0


def cmd_transfer(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Pretrain the study's backbones, fine-tune every (target, budget, init, seed), write the report."""
    from benchmarks.runner import run_sweep
    from benchmarks.transfer import PretrainSettings, ensure_backbone, transfer_jobs, write_transfer_report

    command = command_line(argv)
    targets = resolve_names(args.datasets)
    if not args.report_only:
        settings = PretrainSettings(
            corpus=tuple(resolve_names(args.corpus)),
            backbone=args.backbone,
            steps=args.pretrain_steps,
            batch_size=args.pretrain_batch_size,
            synthetic=args.synthetic,
            objective=args.objective,
        )
        backbones = {}
        for init in (i for i in args.inits if i != "random"):
            for target in targets:
                logger.info("Backbone `%s` for %s ...", init, target)
                backbones[(init, target)] = ensure_backbone(init, target, args.output, settings, args.data_dir)
        jobs = transfer_jobs(
            targets,
            args.seeds,
            args.budgets,
            args.inits,
            backbones,
            scale=args.scale,
            random_backbone="tiny" if args.scale == "tiny" else args.backbone,
            nlinear=not args.no_nlinear,
            objective=args.objective,
        )
        run_settings = RunSettings(output_dir=args.output, data_dir=args.data_dir, command=command)
        summary = run_sweep(jobs, run_settings, keep_going=args.keep_going)
        if summary.failed:
            logger.error("%d transfer job(s) failed", len(summary.failed))
    command = _commands_that_ran(args.output, command)
    files = write_transfer_report(args.output, args.results, command=command, architecture=args.backbone)
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


def _commands_that_ran(output_dir: Path, fallback: str) -> str:
    """The distinct commands that ran the finished jobs under ``output_dir`` (a resumed study may have had several),
    for a report to name; ``fallback`` where the records name none."""
    from benchmarks.runner import COMMAND_SEPARATOR, load_results

    ran = sorted({str(r.get("command", "")) for r in load_results(output_dir) if r.get("command")})
    return COMMAND_SEPARATOR.join(ran) or fallback


def cmd_study(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``ablate`` and ``budget``: run the study's unfinished jobs (or list them), then write its report."""
    from benchmarks.runner import run_sweep

    command = command_line(argv)
    backbone = "tiny" if args.scale == "tiny" else args.backbone
    if args.command == "ablate":
        from benchmarks.ablate import ablation_caps, ablation_jobs
        from benchmarks.ablate import write_ablation_report as write_study_report

        caps = ablation_caps()
        if args.max_epochs or args.max_samples_per_ts:
            caps = TrainingCaps(
                args.max_epochs or caps.max_epochs, None, args.max_samples_per_ts or caps.max_samples_per_ts
            )
        names = resolve_names(args.datasets)
        jobs = ablation_jobs(names, args.seeds, args.variants, scale=args.scale, backbone=backbone, caps=caps)
    else:
        from benchmarks.budget import budget_jobs
        from benchmarks.budget import write_budget_report as write_study_report

        names = resolve_names(args.datasets)
        jobs = budget_jobs(names, args.models, args.budgets, args.seeds, scale=args.scale, backbone=backbone)
    if args.dry_run:
        for job in jobs:
            print(_dry_run_line(job, args.output))
        return 0
    if not args.report_only:
        settings = RunSettings(output_dir=args.output, data_dir=args.data_dir, command=command)
        summary = run_sweep(jobs, settings, keep_going=args.keep_going)
        if summary.failed:
            logger.error("%d %s job(s) failed", len(summary.failed), args.command)
    files = write_study_report(args.output, args.results, command=_commands_that_ran(args.output, command))
    print("wrote " + ", ".join(str(f) for f in files))
    return 0


def cmd_regression(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run the regression study's unfinished jobs, then write ``regression.csv`` / ``regression.md``."""
    import torch

    from benchmarks.machine import describe_machine
    from benchmarks.regression import RegressionSettings, run_regression_study, write_regression_report

    torch.set_num_threads(args.threads)  # one thread: on a shared CPU, more threads contend and run slower
    tiny = args.scale == "tiny"
    settings = RegressionSettings(
        backbone="tiny" if tiny else args.backbone,
        forecaster_epochs=args.forecaster_epochs,
        windows_per_sample=args.windows_per_sample,
        head_epochs=args.head_epochs,
        finetune_epochs=args.finetune_epochs,
        scratch_epochs=args.scratch_epochs,
        batch_size=args.batch_size,
        scale=args.scale,
    )
    machine = f"{describe_machine()['label']}, {args.threads} torch thread(s)" + (f"; {args.note}" if args.note else "")
    # the command that produces the jobs (a `--report-only` rewrite reports the run's command), quoted for a shell
    command = "python -m benchmarks " + shlex.join(a for a in argv if a != "--report-only")
    failed = 0
    if not args.report_only:
        failed = run_regression_study(
            args.tasks,
            args.sizes,
            args.seeds,
            settings,
            args.output,
            args.data_dir,
            keep_going=args.keep_going,
            machine=machine,
            command=command,
        )
        if failed:
            logger.error("%d regression job(s) failed", failed)
    files = write_regression_report(args.output, args.results, settings, command, machine)
    print("wrote " + ", ".join(str(f) for f in files))
    return 1 if failed else 0


def cmd_list(data_dir: Path | None) -> int:
    """Print the registry (with file status), models and tiers."""
    print("datasets:")
    for spec in REGISTRY.values():
        try:
            where = str(find_file(spec, data_dir))
        except FileNotFoundError:
            where = "MISSING (pass --data-dir; `run` says how to obtain it)"
        print(
            f"  {spec.name:<17} {spec.n_rows:>6} rows x {spec.n_variates:>3} variates, freq {spec.freq:<5} "
            f"horizons {list(spec.horizons)}  {where}"
        )
    print("models: " + ", ".join(MODEL_NAMES))
    print("tiers:")
    for tier in TIERS.values():
        print(f"  {tier.name:<9} {tier.description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    # only `run` trains: `list`, `report` and `--dry-run` need not import Lightning (and torch)
    trains = (args.command == "run" and not args.dry_run) or (
        args.command in ("transfer", "ablate", "budget", "regression", "tune")
        and not getattr(args, "report_only", False)
        and not getattr(args, "dry_run", False)
    )
    configure_console(verbose=getattr(args, "verbose", False), import_lightning=trains)
    try:
        if args.command == "run":
            return cmd_run(parse_run(args, argv))
        if args.command == "transfer":
            return cmd_transfer(args, argv)
        if args.command in ("ablate", "budget"):
            return cmd_study(args, argv)
        if args.command == "regression":
            return cmd_regression(args, argv)
        if args.command == "tune":
            from benchmarks import tune

            return tune.main(args, command_line(argv))
        if args.command == "report":
            from benchmarks.report import write_report

            files = write_report(args.output, plots=not args.no_plots)
            print(f"wrote {files.csv}, {files.markdown} and {len(files.plots)} plot(s)")
            return 0
        return cmd_list(args.data_dir)
    except (ValueError, FileNotFoundError, ImportError) as err:
        parser.exit(2, f"error: {err}\n")
    except JobFailedError as err:  # the Ray executor has logged the job's error and traceback
        parser.exit(1, f"error: {err}\n")
