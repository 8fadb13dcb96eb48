"""Jobs, run ids and the resumable sweep.

A job is one (dataset, horizon, lookback, model configuration, seed, budget). Its run id is derived
from exactly those, so the same job always lands in the same ``runs/<run_id>.json``; the file is
written atomically once the job has finished, and a rerun skips every job whose file exists. While a
job trains, its whole training state is written to ``checkpoints/<run_id>.ckpt`` at the end of every
epoch (atomically too); a rerun of an interrupted job resumes from there, and the checkpoint is deleted
once the result file is written. An interrupted sweep therefore loses at most one epoch of work.

:func:`run_sweep` (and the Ray executor, :mod:`benchmarks.executors`) run any job that has what
:class:`SweepJob` names: the forecasting :class:`Job` of the suite and most studies, and jobs of other kinds
(the regression study's), each with its own job function.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shlex
import sys
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from benchmarks.models import ModelConfig, Scale, TrainingCaps, canonical_model_name, model_config, stable_hash
from benchmarks.protocol import METRIC_SCALE, PreparedData, TestScore
from benchmarks.registry import get_spec
from benchmarks.tiers import Tier
from darts_timesclip._io import write_text_atomic

logger = logging.getLogger(__name__)

RESULT_SCHEMA = 1
RUNS_DIR = "runs"
CHECKPOINTS_DIR = "checkpoints"


class SweepJob(Protocol):
    """What the sweep (:func:`run_sweep`, the Ray executor) needs of a job.

    ``run_id`` names its result file ``<output>/runs/<run_id>.json``; ``prepare`` reads its input (jobs with the same
    ``input_key`` share it: the local executor prepares it once for consecutive jobs); ``datasets`` are the registry
    datasets whose files it reads (checked before a Ray sweep starts); ``study`` and ``coordinates`` say which study
    made it and where in the study it stands (written into the result record).
    """

    @property
    def run_id(self) -> str: ...

    @property
    def study(self) -> str: ...

    @property
    def coordinates(self) -> Mapping[str, Any]: ...

    @property
    def datasets(self) -> tuple[str, ...]: ...

    def describe(self) -> str: ...

    def details(self) -> str: ...

    def input_key(self) -> Hashable: ...

    def prepare(self, data_dir: Path | None) -> Any: ...


@dataclass(frozen=True)
class Job:
    """One benchmark job: train a forecasting model, score it on every test window.

    Parameters
    ----------
    dataset
        Registry dataset name.
    horizon, lookback
        Forecast horizon ``H`` and input length ``L``.
    model
        The model configuration.
    seed
        Random seed (Darts ``random_state`` and the global RNGs).
    caps
        The compute budget.
    tier
        Name of the tier that produced the job (``custom`` otherwise); informative, not in the id.
    study
        The study (command) that made the job: ``run`` for the suite's sweeps; informative, not in the id.
    coordinates
        Where the job stands in its study, e.g. ``{"configuration": "gasf"}`` (ablate) or ``{"budget": "2xall"}``
        (budget); written into the result record, not in the id (the model and budget that define the job are).
    """

    dataset: str
    horizon: int
    lookback: int
    model: ModelConfig
    seed: int
    caps: TrainingCaps
    tier: str = "custom"
    study: str = "run"
    coordinates: Mapping[str, Any] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """Deterministic id: readable prefix plus a hash of everything that defines the job."""
        payload = {
            "dataset": self.dataset,
            "horizon": self.horizon,
            "lookback": self.lookback,
            "model": self.model.name,
            "model_config": self.model.config_hash(),
            "seed": self.seed,
            "caps": self.caps.to_dict(),
        }
        prefix = f"{self.dataset}_h{self.horizon}_l{self.lookback}_{self.model.name}_s{self.seed}"
        return f"{prefix.lower()}_{stable_hash(payload)}"

    @property
    def datasets(self) -> tuple[str, ...]:
        """The dataset whose file the job reads."""
        return (self.dataset,)

    def describe(self) -> str:
        """Short human-readable label."""
        return f"{self.dataset} H={self.horizon} L={self.lookback} {self.model.name} seed={self.seed}"

    def details(self) -> str:
        """What ``--dry-run`` adds to the label: the budget."""
        return f"caps={self.caps.to_dict()}"

    def input_key(self) -> tuple[str, int]:
        """Jobs on the same dataset and lookback share their prepared data."""
        return (self.dataset, self.lookback)

    def prepare(self, data_dir: Path | None) -> PreparedData:
        """Read the dataset from ``data_dir`` and prepare it for the lookback (splits, train-split scaling)."""
        from benchmarks.protocol import prepare
        from benchmarks.registry import read_dataset

        return prepare(read_dataset(get_spec(self.dataset), data_dir), self.lookback)


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep over; ``expand`` turns it into a list of jobs.

    Parameters
    ----------
    datasets
        Registry dataset names.
    horizons
        Horizons; ``None`` for each dataset's registry horizons.
    lookback
        Input length ``L``.
    models
        Model names, or factories of one's own (``[NAME=]package.module:factory``, see
        :func:`benchmarks.models.external_config`).
    seeds
        Seeds.
    scale
        ``official`` or ``tiny`` model sizes.
    tier
        The tier whose budget applies (``None``: no caps unless ``caps`` is given).
    caps
        Caps for every model: each cap it sets replaces the tier's cap of the same name.
    backbone, pretrained
        TimesCLIP's backbone and whether it is pretrained.
    """

    datasets: tuple[str, ...]
    horizons: tuple[int, ...] | None
    lookback: int
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    scale: Scale = "official"
    tier: Tier | None = None
    caps: TrainingCaps | None = None
    backbone: str = "compact"
    pretrained: bool = False

    def expand(self) -> list[Job]:
        """The sweep's jobs, dataset-major (each dataset is loaded once)."""
        if self.lookback < 1:
            raise ValueError(f"`lookback` must be a positive integer, got `{self.lookback}`.")
        jobs = []
        for dataset in self.datasets:
            spec = get_spec(dataset)
            for horizon in self.horizons or spec.horizons:
                if horizon < 1:
                    raise ValueError(f"`horizon` must be a positive integer, got `{horizon}`.")
                for name in self.models:
                    config = model_config(
                        name,
                        spec.name,
                        horizon,
                        scale=self.scale,
                        backbone=self.backbone,
                        pretrained=self.pretrained,
                    )
                    caps = (self.tier.caps_for(name) if self.tier else TrainingCaps()).override(self.caps)
                    for seed in self.seeds:
                        jobs.append(
                            Job(
                                dataset=spec.name,
                                horizon=horizon,
                                lookback=self.lookback,
                                model=config,
                                seed=seed,
                                caps=caps,
                                tier=self.tier.name if self.tier else "custom",
                            )
                        )
        return jobs


@dataclass(frozen=True)
class RunSettings:
    """How jobs run (not part of their identity).

    Parameters
    ----------
    output_dir
        Results directory; job files go to ``<output_dir>/runs``.
    data_dir
        Dataset directory (``None``: ``$DARTS_TIMESCLIP_DATA`` or the project's default).
    progress_bar
        Show Lightning's progress bar during training instead of one progress line per epoch.
    accelerator
        Lightning accelerator.
    command
        The command line, recorded in every result file.
    epoch_checkpoints
        Write each job's training state to ``<output_dir>/checkpoints/<run_id>.ckpt`` after every epoch
        and resume an interrupted job from it. Default: ``True``.
    torch_threads
        Torch's intra-op threads while a job runs (restored afterwards); ``None``: as the process has them.
        Default: ``None``.
    """

    output_dir: Path
    data_dir: Path | None = None
    progress_bar: bool = False
    accelerator: str = "auto"
    command: str = ""
    epoch_checkpoints: bool = True
    torch_threads: int | None = None


def result_path(output_dir: Path, job: SweepJob) -> Path:
    """Where a job's result file lives."""
    return output_dir / RUNS_DIR / f"{job.run_id}.json"


def checkpoint_path(output_dir: Path, job: SweepJob) -> Path:
    """Where a job's per-epoch training checkpoint lives while it trains (see ``EpochCheckpoint``)."""
    return output_dir / CHECKPOINTS_DIR / f"{job.run_id}.ckpt"


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json.dumps(payload, indent=1, sort_keys=True) + "\n")


def is_finished(path: Path) -> bool:
    """Whether a job's result file exists and is complete."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("status") == "done"
    except (OSError, ValueError):
        return False


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 -- libraries below draw from the legacy global RNG
    torch.manual_seed(seed)


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run a block with ``count`` torch threads (``None``: unchanged) and restore the process's count afterwards."""
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: What Lightning's ``seed_everything`` (which neuralforecast's models call in ``fit``) leaves in the environment.
LIGHTNING_SEED_VARIABLES = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")


@contextlib.contextmanager
def restored_environment(names: Sequence[str] | None = LIGHTNING_SEED_VARIABLES) -> Iterator[None]:
    """Run a block and put the environment variables ``names`` back as they were (reset, or removed if unset).

    Parameters
    ----------
    names
        The variables; ``None``: every variable, those the block added included. Default:
        :data:`LIGHTNING_SEED_VARIABLES`, so that one job's seed does not stay behind for whatever runs next in the
        process.
    """
    before = dict(os.environ) if names is None else {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        if names is None:
            for name in set(os.environ) - set(before):
                del os.environ[name]
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            elif os.environ.get(name) != value:
                os.environ[name] = value


Scorer = Callable[..., TestScore]
"""Scores a fitted model on the test windows: ``scorer(model, data, horizon, dataloader_kwargs=...)``, as
:func:`benchmarks.protocol.score_test_windows` (the default). A study that needs more metrics (CRPS, interval
coverage) passes its own (``functools.partial(run_job, scorer=...)`` as its job function); the ``extra`` metrics of
its :class:`~benchmarks.protocol.TestScore` join MSE and MAE in the record's ``metrics``."""


def run_job(job: Job, data: PreparedData, settings: RunSettings, scorer: Scorer | None = None) -> dict[str, Any]:
    """Train one model, score it on every test window, and return its result record.

    Parameters
    ----------
    job
        The job.
    data
        The job's dataset, prepared for ``job.lookback``.
    settings
        Run settings.
    scorer
        Scores the fitted model (see :data:`Scorer`). Default: ``None``, MSE and MAE of
        :func:`~benchmarks.protocol.score_test_windows`.

    Returns
    -------
    dict
        The result record (see ``benchmarks/README.md`` for the fields).
    """
    import torch
    from darts.models.forecasting.torch_forecasting_model import TorchForecastingModel

    from benchmarks.callbacks import EpochCheckpoint, EpochHistory, make_callbacks, read_epoch_checkpoint
    from benchmarks.machine import PeakMemory, describe_machine
    from benchmarks.models import build_model, effective_epochs
    from benchmarks.protocol import score_test_windows

    borders = data.borders
    n_train_windows = borders.n_windows("train", job.lookback, job.horizon)
    n_val_windows = borders.n_windows("val", job.lookback, job.horizon)
    if n_train_windows < 1 or n_val_windows < 1:
        raise ValueError(
            f"`horizon={job.horizon}` with `lookback={job.lookback}` leaves {n_train_windows} train "
            f"and {n_val_windows} validation windows in `{job.dataset}`."
        )
    if job.caps.max_samples_per_ts is not None:  # Darts caps the validation windows too
        n_train_windows = min(n_train_windows, job.caps.max_samples_per_ts)
        n_val_windows = min(n_val_windows, job.caps.max_samples_per_ts)

    _seed_everything(job.seed)
    # one progress line per epoch, unless Lightning's progress bar shows the progress
    label = f"{job.model.name} {job.dataset} H={job.horizon}"
    best, callbacks = make_callbacks(job.model.patience, label=label, epoch_log=not settings.progress_bar)
    checkpoint = EpochCheckpoint(checkpoint_path(settings.output_dir, job)) if settings.epoch_checkpoints else None
    start = time.perf_counter()  # set again right before `fit`

    def training_seconds() -> float:
        """The training seconds so far, counted as the record's ``train_seconds`` (a resumed job's included)."""
        before = checkpoint.train_seconds_before if checkpoint is not None else 0.0
        return time.perf_counter() - start + before

    history = EpochHistory(clock=training_seconds)
    callbacks.append(history)
    if checkpoint is not None:
        callbacks.append(checkpoint)  # last: the states it saves are those of the finished epoch
    model = build_model(
        job.model,
        lookback=job.lookback,
        horizon=job.horizon,
        seed=job.seed,
        caps=job.caps,
        n_train_windows=n_train_windows,
        callbacks=callbacks,
        progress_bar=settings.progress_bar,
        accelerator=settings.accelerator,
    )
    trains_with_lightning = isinstance(model, TorchForecastingModel)
    if not trains_with_lightning:  # a model of one's own without Lightning: no epochs, no checkpoint
        checkpoint = None
    if checkpoint is not None and checkpoint.path.is_file():
        progress = read_epoch_checkpoint(checkpoint.path)  # a clear error for a file that cannot be resumed
        logger.info(
            "%s: resuming after epoch %d (%.0f s trained) from %s (delete it to train afresh)",
            job.run_id,
            progress["epochs_done"],
            progress["train_seconds"],
            checkpoint.path,
        )
        # what Darts' own `load_from_checkpoint` sets: the next `fit` passes it to `Trainer.fit(ckpt_path=...)`,
        # which restores weights, optimiser, schedulers, loop counters and callback states
        model.load_ckpt_path = str(checkpoint.path)
    configured_epochs = model.n_epochs if trains_with_lightning else None
    epoch_limit = None
    fit_kwargs: dict[str, Any] = {"max_samples_per_ts": job.caps.max_samples_per_ts}
    loader_kwargs = {"pin_memory": torch.cuda.is_available()}
    if trains_with_lightning:
        fit_kwargs.update(val_series=data.split_series("val"), dataloader_kwargs=loader_kwargs)
        if job.model.family == "external":  # the factory chose its epochs; the budget caps them
            configured_epochs = model.n_epochs
            epoch_limit = fit_kwargs["epochs"] = effective_epochs(replace(job.model, n_epochs=model.n_epochs), job.caps)
        else:
            configured_epochs, epoch_limit = job.model.n_epochs, effective_epochs(job.model, job.caps)
    memory = PeakMemory()
    memory.start()
    start = time.perf_counter()
    model.fit(data.split_series("train"), **fit_kwargs)
    train_seconds = training_seconds()
    resumed_from_epoch = None if checkpoint is None else checkpoint.resumed_from_epoch
    # read now: predicting replaces `model.trainer`
    epochs_run = optimizer_steps = None
    if trains_with_lightning:
        epochs_run, optimizer_steps = int(model.trainer.current_epoch), int(model.trainer.global_step)
    start = time.perf_counter()
    predict_loader = loader_kwargs if trains_with_lightning else None
    score = (scorer or score_test_windows)(model, data, job.horizon, dataloader_kwargs=predict_loader)
    inference_seconds = time.perf_counter() - start
    peak_mb = memory.stop()

    n_params = n_trainable = None
    if trains_with_lightning:
        n_params = sum(p.numel() for p in model.model.parameters())
        n_trainable = sum(p.numel() for p in model.model.parameters() if p.requires_grad)
    return {
        "schema": RESULT_SCHEMA,
        "status": "done",
        "run_id": job.run_id,
        "dataset": job.dataset,
        "horizon": job.horizon,
        "lookback": job.lookback,
        "model": job.model.name,
        "seed": job.seed,
        "tier": job.tier,
        "study": job.study,
        "coordinates": dict(job.coordinates),
        "metrics": {
            "mse": score.mse,
            "mae": score.mae,
            **score.extra,
            "n_test_windows": score.n_windows,
            "scale": METRIC_SCALE,
        },
        "timing": {"train_seconds": train_seconds, "inference_seconds": inference_seconds},
        "parameters": {"total": n_params, "trainable": n_trainable},
        "memory": {"peak_mb": peak_mb, "kind": memory.kind},
        "budget": {
            **job.caps.to_dict(),
            "configured_epochs": configured_epochs,
            "epoch_limit": epoch_limit,
            "epochs_run": epochs_run,
            "optimizer_steps": optimizer_steps,
            "train_windows_per_epoch": n_train_windows,
            "val_windows": n_val_windows,
            "best_epoch": best.best_epoch,
            "best_val_loss": best.best_loss,
            "resumed_from_epoch": resumed_from_epoch,
        },
        "history": history.entries if trains_with_lightning else None,
        "backbone": job.model.backbone,
        "pretrained": job.model.pretrained,
        "model_config": job.model.to_dict(),
        "data": {
            "file": data.dataset.path.name,
            "rows": int(data.dataset.values.shape[0]),
            "variates": int(data.dataset.values.shape[1]),
            "splits": {"train": borders.train, "val": borders.val, "test": borders.test},
        },
        "example_window": score.example,
        "machine": describe_machine(),
        "command": settings.command,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


JobRunner = Callable[[Any, Any, RunSettings], dict[str, Any]]
"""A job function: ``runner(job, job.prepare(data_dir), settings) -> result record``; :func:`run_job` for a
:class:`Job`. It runs in Ray's workers too, so it must be importable there (a module-level function, or a
``functools.partial`` of one)."""


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep did: run ids completed now, skipped as already finished, and failed."""

    completed: tuple[str, ...]
    skipped: tuple[str, ...]
    failed: tuple[str, ...]


def prepare_data(job: SweepJob, data_dir: Path | None) -> Any:
    """A job's input, read from ``data_dir`` (:meth:`SweepJob.prepare`)."""
    return job.prepare(data_dir)


def split_finished(jobs: Sequence[SweepJob], output_dir: Path) -> tuple[list[SweepJob], list[str]]:
    """The jobs still to run, and the run ids of those whose result file is finished (logged once).

    Parameters
    ----------
    jobs
        The sweep.
    output_dir
        Results directory (job files under ``<output_dir>/runs``).

    Returns
    -------
    tuple
        ``(pending jobs, skipped run ids)``, both in the sweep's order.
    """
    finished = {job.run_id for job in jobs if is_finished(result_path(output_dir, job))}
    pending = [job for job in jobs if job.run_id not in finished]
    skipped = [job.run_id for job in jobs if job.run_id in finished]
    if skipped:
        logger.info("Skipping %d finished job(s) of %d.", len(skipped), len(jobs))
    return pending, skipped


def save_result(output_dir: Path, job: SweepJob, result: dict[str, Any]) -> str:
    """Write a finished job's result file atomically and delete its epoch checkpoint; return its
    metrics (``mse=... mae=...``) for the progress line.

    Parameters
    ----------
    output_dir
        Results directory.
    job
        The job.
    result
        Its result record (from its job function).

    Returns
    -------
    str
        The record's numeric ``metrics``, formatted for the log (empty where it has none).
    """
    write_json_atomic(result_path(output_dir, job), result)
    checkpoint_path(output_dir, job).unlink(missing_ok=True)  # the result holds what it was kept for
    metrics = result.get("metrics", {})
    return " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))


def run_sweep(
    jobs: Sequence[SweepJob],
    settings: RunSettings,
    job_runner: JobRunner = run_job,
    keep_going: bool = False,
) -> SweepSummary:
    """Run every job that has no finished result file yet, one after another in this process.

    Parameters
    ----------
    jobs
        The sweep.
    settings
        Run settings.
    job_runner
        Function that runs one job (see :data:`JobRunner`). Default: :func:`run_job`.
    keep_going
        Log a failing job and continue instead of raising.

    Returns
    -------
    SweepSummary
        Completed, skipped and failed run ids.
    """
    completed: list[str] = []
    failed: list[str] = []
    prepared: dict[Hashable, Any] = {}
    pending, skipped = split_finished(jobs, settings.output_dir)
    sweep_start = time.perf_counter()
    for index, job in enumerate(pending, start=1):
        key = job.input_key()
        if key not in prepared:
            prepared.clear()  # jobs are input-major (dataset-major): keep one input in memory
            prepared[key] = job.prepare(settings.data_dir)
        logger.info("[%d/%d] %s (%s) ...", index, len(pending), job.describe(), job.run_id)
        job_start = time.perf_counter()
        try:
            with torch_threads(settings.torch_threads), restored_environment():
                result = job_runner(job, prepared[key], settings)
        except Exception:
            if not keep_going:
                raise
            logger.exception("[%d/%d] %s failed", index, len(pending), job.describe())
            failed.append(job.run_id)
            continue
        metrics = save_result(settings.output_dir, job, result)
        completed.append(job.run_id)
        elapsed = time.perf_counter() - sweep_start
        eta = elapsed / index * (len(pending) - index)
        logger.info(
            "[%d/%d] done in %.0fs: %s (sweep elapsed %.0fs, about %.0fs left)",
            index,
            len(pending),
            time.perf_counter() - job_start,
            metrics,
            elapsed,
            eta,
        )
    return SweepSummary(tuple(completed), tuple(skipped), tuple(failed))


def load_results(output_dir: Path) -> list[dict[str, Any]]:
    """Every finished result record under ``<output_dir>/runs``, sorted by run id.

    A model that result files name by a former name is read under today's (``RENAMED_MODELS``).
    """
    runs = output_dir / RUNS_DIR
    records = []
    for path in sorted(runs.glob("*.json")) if runs.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            logger.warning("Ignoring unreadable result file %s", path)
            continue
        if record.get("status") == "done":
            if "model" in record:
                record["model"] = canonical_model_name(record["model"])
            records.append(record)
    return records


#: Options that change what a command writes, not what its jobs are: left out of the command a record keeps.
NOT_RECORDED_OPTIONS = ("--report-only", "--dry-run")


def command_line(argv: Iterable[str] | None = None) -> str:
    """The command as typed, for the record: ``python -m benchmarks ...``, quoted for a shell.

    ``--report-only`` and ``--dry-run`` are left out: the record says which command made its jobs.
    """
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a not in NOT_RECORDED_OPTIONS]
    return "python -m benchmarks " + shlex.join(args)
