"""Series-level regression: ``python -m benchmarks regression``, TimesCLIPRegressor's stages beside scikit-learn.

Two tasks, each sample one multivariate series and one target:

- ``crop``: the synthetic crop seasons of :func:`darts_timesclip.regression.crop_seasons` (36 ten-day composites of
  NDVI, EVI, NIR and soil moisture per field -> the field's yield), 80 % of the samples for training, 20 % for test;
- ``weather``: the suite's Weather file (10-minute readings, 2020): one day of readings, as 24 hourly means of
  pressure, temperature, humidity, wind speed and solar radiation -> the next day's maximum temperature (from the
  10-minute values); the file's missing-value code in the wind speeds (-9999) is interpolated. Days start at any
  10-minute step; weeks alternate between train (three of four) and test (the fourth), and a sample belongs to a
  split only if its day and its target day both lie in that split's weeks, so no test target was seen in training.

Methods, all trained on the same training samples and scored on the same test samples:

=================  ===============================================================================================
``stage2``         a ``TimesCLIPModel`` forecaster trained on windows half the samples' length (stage 1), its
                   encoder reused frozen, the regression head trained alone (early stopping on 10 % of the samples)
``stage3``         ``stage2``, then the encoder fine-tuned with the head (``finetune_lr``, alignment loss kept)
``scratch``        the same regressor with a fresh random encoder trained end to end with the head
``random-frozen``  the same regressor's head on a frozen random encoder (what stage 1 adds to ``stage2``)
``ridge``          ``RidgeCV`` on the standardised, flattened series (penalty chosen by 5 contiguous folds)
``hgb``            ``HistGradientBoostingRegressor`` on per-variate summary features (mean, spread, extremes, their
                   timing, first, last, slope, quartiles)
=================  ===============================================================================================

One job (task, size, seed) writes one result file, ``<output>/runs/<task>_n<size>_s<seed>_<settings>.json``
(resumable; the run id's last part hashes the settings, and the report reads the jobs of the settings given);
the report (``regression.csv``, ``regression.md``) gives R² and RMSE on the test samples, mean ± standard deviation
over seeds. Jobs run on the suite's runner (``--executor ray`` included), with one torch thread each unless
``--threads`` says otherwise (on a shared CPU more threads contend and run slower).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.registry import get_spec, read_dataset
from benchmarks.report import command_markdown
from benchmarks.runner import RunSettings, load_results
from benchmarks.stats import mean_std
from benchmarks.study import SWEEP_FLAGS, Study, StudyOptions, positive_int

logger = logging.getLogger(__name__)

TASKS = ("crop", "weather")
METHODS = ("stage2", "stage3", "scratch", "random-frozen", "ridge", "hgb")
DEFAULT_SIZES = (1500, 15000)
DEFAULT_SEEDS = (2021, 2022, 2023)
TEST_SHARE = 0.2

#: Weather columns of a sample (matched by their name's start: the file's unit characters vary in encoding).
WEATHER_VARIATES = ("p (mbar)", "T (degC)", "rh (%)", "wv (m/s)", "SWDR")
_STEPS_PER_DAY, _STEPS_PER_HOUR = 144, 6


@dataclass(frozen=True)
class Task:
    """Train and test samples of one task: ``X [n, length, V]`` float32, ``y [n]``."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    description: str


@dataclass(frozen=True)
class RegressionSettings:
    """Budgets and architecture of the TimesCLIP methods (the scikit-learn baselines have their defaults)."""

    backbone: str = "compact"
    patch_length: int = 8
    patch_stride: int = 4
    forecaster_epochs: int = 2
    windows_per_sample: int = 2
    head_epochs: int = 100
    finetune_epochs: int = 2
    scratch_epochs: int = 4
    scratch_lr: float = 5e-4
    batch_size: int = 64
    scale: str = "official"

    def key(self) -> str:
        """A short hash of the settings: jobs run under other settings are neither reused nor reported."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class RegressionJob:
    """One (task, size, seed) under ``settings``: every method trained and scored on the same samples.

    ``note`` (a line about the machine's state) goes into the record, not the run id.
    """

    task: str
    size: int
    seed: int
    settings: RegressionSettings
    note: str = ""

    @property
    def run_id(self) -> str:
        return f"{self.task}_n{self.size}_s{self.seed}_{self.settings.key()}"

    @property
    def study(self) -> str:
        return "regression"

    @property
    def coordinates(self) -> dict[str, Any]:
        return {"task": self.task, "size": self.size}

    @property
    def datasets(self) -> tuple[str, ...]:
        return ("weather",) if self.task == "weather" else ()

    def describe(self) -> str:
        return f"{self.task} n={self.size} seed={self.seed}"

    def details(self) -> str:
        return f"settings={self.settings.key()}"

    def input_key(self) -> tuple[str, int, int]:
        return (self.task, self.size, self.seed)

    def prepare(self, data_dir: Path | None) -> Task:
        """The task's samples."""
        return load_task(self.task, self.size, self.seed, data_dir)


def crop_task(size: int, seed: int) -> Task:
    """``size`` synthetic seasons (``seed``), the first 80 % for training."""
    from darts_timesclip.regression import crop_seasons

    X, y = crop_seasons(size, length=36, seed=seed)
    n_test = max(1, int(round(TEST_SHARE * size)))
    return Task("crop", X[:-n_test], y[:-n_test], X[-n_test:], y[-n_test:], "36 ten-day composites x 4 -> yield")


def fill_sentinels(values: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Interpolate the file's missing-value code (``-9999``, in the wind speeds) linearly over time.

    Negative wind speeds are that code (the Max Planck Institute's weather files use it); left in, one reading
    averages into an hourly mean of about -1,600 m/s.
    """
    values = values.copy()
    for k, name in enumerate(names):
        if not name.startswith("wv"):
            continue
        bad = values[:, k] < 0
        if bad.any():
            good = np.flatnonzero(~bad)
            values[bad, k] = np.interp(np.flatnonzero(bad), good, values[good, k])
    return values


def weather_day_starts(n_rows: int) -> dict[str, np.ndarray]:
    """First rows of the candidate samples of each split: a sample spans two days (its readings, then its target
    day), all in train weeks (three of every four) or all in test weeks (every fourth)."""
    day, week = _STEPS_PER_DAY, 7 * _STEPS_PER_DAY
    starts = np.arange(n_rows - 2 * day + 1)
    first, last = starts // week % 4 == 3, (starts + 2 * day - 1) // week % 4 == 3
    return {"train": starts[~first & ~last], "test": starts[first & last]}


def weather_task(size: int, seed: int, data_dir: Path | None = None) -> Task:
    """``size`` days of Weather readings (train and test weeks, see the module docstring), drawn with ``seed``.

    Raises
    ------
    ValueError
        If the file lacks a variate of :data:`WEATHER_VARIATES`, or holds too few candidate days for ``size``.
    """
    loaded = read_dataset(get_spec("weather"), data_dir)
    columns = []
    for name in WEATHER_VARIATES:
        matches = [k for k, c in enumerate(loaded.columns) if c.startswith(name)]
        if not matches:
            raise ValueError(f"The Weather file {loaded.path} has no column starting with `{name}`.")
        columns.append(matches[0])
    values = fill_sentinels(loaded.values[:, columns], WEATHER_VARIATES)
    temperature = loaded.values[:, columns[WEATHER_VARIATES.index("T (degC)")]]

    day = _STEPS_PER_DAY
    pools = weather_day_starts(len(values))
    n_test = max(1, int(round(TEST_SHARE * size)))
    wanted = {"train": size - n_test, "test": n_test}
    rng = np.random.default_rng(seed)
    chosen = {}
    for split, pool in pools.items():
        if len(pool) < wanted[split]:
            raise ValueError(f"The Weather file has {len(pool)} candidate {split} days; size {size} needs more.")
        chosen[split] = np.sort(rng.choice(pool, size=wanted[split], replace=False))

    def samples(split: str) -> tuple[np.ndarray, np.ndarray]:
        s = chosen[split]
        steps = s[:, None] + np.arange(day)[None, :]
        X = values[steps].reshape(len(s), day // _STEPS_PER_HOUR, _STEPS_PER_HOUR, -1).mean(axis=2)
        y = temperature[steps + day].max(axis=1)
        return X.astype(np.float32), y.astype(np.float64)

    (X_train, y_train), (X_test, y_test) = samples("train"), samples("test")
    return Task("weather", X_train, y_train, X_test, y_test, "24 hourly means x 5 -> next day's max temperature")


def load_task(name: str, size: int, seed: int, data_dir: Path | None = None) -> Task:
    """One of :data:`TASKS` at ``size`` samples (train and test together)."""
    if name == "crop":
        return crop_task(size, seed)
    if name == "weather":
        return weather_task(size, seed, data_dir)
    raise ValueError(f"Unknown regression task `{name}`; choose from {list(TASKS)}.")


# ---------------------------------------------------------------------------------------------- methods
def summary_features(X: np.ndarray) -> np.ndarray:
    """``[n, L, V]`` -> ``[n, 11 V]`` per-variate summaries for gradient boosting."""
    length = X.shape[1]
    t = np.arange(length) - (length - 1) / 2
    slope = np.einsum("nlv,l->nv", X - X.mean(axis=1, keepdims=True), t) / (t**2).sum()
    parts = [
        X.mean(axis=1),
        X.std(axis=1),
        X.min(axis=1),
        X.max(axis=1),
        X.argmin(axis=1) / length,
        X.argmax(axis=1) / length,
        X[:, 0],
        X[:, -1],
        slope,
        *np.quantile(X, [0.25, 0.75], axis=1),
    ]
    return np.concatenate(parts, axis=1)


def _regressors(task: Task, seed: int, settings: RegressionSettings) -> dict[str, Callable[[], Any]]:
    """Method name -> a function building the fitted estimator (the stage-1 forecaster is trained once, lazily)."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from darts_timesclip.regression import TimesCLIPRegressor

    tiny = settings.scale == "tiny"
    patches = dict(patch_length=settings.patch_length, patch_stride=settings.patch_stride)
    common = dict(batch_size=settings.batch_size, random_state=seed)
    head = dict(n_epochs=settings.head_epochs, validation_fraction=0.1, patience=10, **common)
    forecaster: list[Any] = []

    def stage1() -> Any:
        if not forecaster:
            forecaster.append(train_forecaster(task, seed, settings))
        return forecaster[0]

    flatten = FunctionTransformer(lambda X: X.reshape(len(X), -1))
    return {
        "stage2": lambda: TimesCLIPRegressor(encoder=stage1(), **head),
        "stage3": lambda: TimesCLIPRegressor(encoder=stage1(), finetune_epochs=settings.finetune_epochs, **head),
        "scratch": lambda: TimesCLIPRegressor(
            encoder_params=dict(backbone=settings.backbone, **patches),
            freeze_encoder=False,
            n_epochs=settings.scratch_epochs,
            finetune_lr=settings.scratch_lr,
            **common,
        ),
        "random-frozen": lambda: TimesCLIPRegressor(encoder_params=dict(backbone=settings.backbone, **patches), **head),
        # 5 contiguous folds, not leave-one-out: overlapping weather days would make LOO choose no regularisation
        "ridge": lambda: make_pipeline(flatten, StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13), cv=5)),
        "hgb": lambda: make_pipeline(
            FunctionTransformer(summary_features),
            HistGradientBoostingRegressor(max_iter=50 if tiny else 300, random_state=seed),
        ),
    }


def train_forecaster(task: Task, seed: int, settings: RegressionSettings) -> Any:
    """Stage 1: a ``TimesCLIPModel`` on ``windows_per_sample`` random windows of every training sample (input half the
    sample's length, output a sixth)."""
    from darts import TimeSeries

    from darts_timesclip import TimesCLIPModel

    length = task.X_train.shape[1]
    model = TimesCLIPModel(
        input_chunk_length=length // 2,
        output_chunk_length=max(1, length // 6),
        backbone=settings.backbone,
        patch_length=settings.patch_length,
        patch_stride=settings.patch_stride,
        n_epochs=settings.forecaster_epochs,
        batch_size=settings.batch_size,
        random_state=seed,
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
        },
    )
    # windows drawn from anywhere in the samples (Darts' `max_samples_per_ts` would keep the most recent ones only)
    window = model.input_chunk_length + model.output_chunk_length
    rng = np.random.default_rng(seed)
    series = [
        TimeSeries.from_values(x[start : start + window])
        for x in task.X_train
        for start in rng.integers(0, len(x) - window + 1, size=settings.windows_per_sample)
    ]
    return model.fit(series)


def run_regression_job(job: RegressionJob, task: Task, settings: RunSettings) -> dict[str, Any]:
    """Train and score every method on one (task, size, seed); the job's result record.

    The record keeps the machine (with the torch threads the job ran with, and the job's note) and the command, so
    that a report gathering the jobs of several runs says which machine state and which command produced each table.
    """
    import torch
    from sklearn.metrics import mean_squared_error, r2_score

    from benchmarks.machine import describe_machine

    builders = _regressors(task, job.seed, job.settings)
    rows = []
    stage1_seconds = None
    for method in METHODS:
        started = time.perf_counter()
        needs_stage1 = method in ("stage2", "stage3") and stage1_seconds is None
        estimator = builders[method]()
        if needs_stage1:
            stage1_seconds = time.perf_counter() - started
            started = time.perf_counter()
        estimator.fit(task.X_train, task.y_train)
        fit_seconds = time.perf_counter() - started
        prediction = estimator.predict(task.X_test)
        rows.append(
            {
                "method": method,
                "r2": float(r2_score(task.y_test, prediction)),
                "rmse": float(np.sqrt(mean_squared_error(task.y_test, prediction))),
                "fit_seconds": round(fit_seconds, 1),
            }
        )
        logger.info(
            "%s n=%d seed %d %-13s R² %.3f (%.0f s)", job.task, job.size, job.seed, method, rows[-1]["r2"], fit_seconds
        )
    machine = f"{describe_machine()['label']}, {torch.get_num_threads()} torch thread(s)"
    return {
        "status": "done",
        "run_id": job.run_id,
        "study": job.study,
        "coordinates": job.coordinates,
        "task": job.task,
        "description": task.description,
        "size": job.size,
        "n_train": len(task.y_train),
        "n_test": len(task.y_test),
        "seed": job.seed,
        "settings": asdict(job.settings),
        "settings_key": job.settings.key(),
        "stage1_seconds": None if stage1_seconds is None else round(stage1_seconds, 1),
        "rows": rows,
        "machine": machine + (f"; {job.note}" if job.note else ""),
        "command": settings.command,
    }


_EPOCH_ARGUMENTS = ("forecaster_epochs", "windows_per_sample", "head_epochs", "finetune_epochs", "scratch_epochs")


@dataclass(frozen=True)
class RegressionStudy(Study):
    """Series-level regression: TimesCLIPRegressor's stages beside scikit-learn, then its report."""

    name = "regression"
    flags = SWEEP_FLAGS
    defaults = {"seeds": DEFAULT_SEEDS, "threads": 1}
    output_name = "regression"
    report_stem = "regression"
    coordinates = ("task", "size")
    job_runner = staticmethod(run_regression_job)

    tasks: tuple[str, ...] = TASKS
    sizes: tuple[int, ...] = DEFAULT_SIZES
    forecaster_epochs: int = RegressionSettings.forecaster_epochs
    windows_per_sample: int = RegressionSettings.windows_per_sample
    head_epochs: int = RegressionSettings.head_epochs
    finetune_epochs: int = RegressionSettings.finetune_epochs
    scratch_epochs: int = RegressionSettings.scratch_epochs
    batch_size: int = RegressionSettings.batch_size
    note: str = ""

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--tasks", nargs="+", choices=TASKS, default=cls.tasks)
        parser.add_argument("--sizes", nargs="+", type=positive_int, default=cls.sizes, help="samples per task")
        for name in _EPOCH_ARGUMENTS:
            parser.add_argument(f"--{name.replace('_', '-')}", type=positive_int, default=getattr(cls, name))
        parser.add_argument("--batch-size", type=positive_int, default=cls.batch_size)
        parser.add_argument("--note", default="", help="a line about the machine's state, printed in the report")

    def settings(self, options: StudyOptions) -> RegressionSettings:
        """The TimesCLIP methods' settings of this invocation (their hash is the last part of the run ids)."""
        own = {name: getattr(self, name) for name in (*_EPOCH_ARGUMENTS, "batch_size")}
        return RegressionSettings(backbone=options.timesclip_backbone(), scale=options.scale or "official", **own)

    def jobs(self, options: StudyOptions) -> list[RegressionJob]:
        """Smallest size first, then seed by seed, so that a run cut short covers every task."""
        settings = self.settings(options)
        return [
            RegressionJob(task, size, seed, settings, self.note)
            for size in sorted(self.sizes)
            for seed in options.seeds
            for task in self.tasks
        ]

    def records(self, options: StudyOptions) -> list[dict[str, Any]]:
        """The finished jobs under ``options.output`` run with this invocation's settings."""
        key = self.settings(options).key()
        return [r for r in load_results(options.output) if r.get("settings_key") == key]

    def table(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One row per (task, size, seed, method)."""
        rows = [
            {
                "task": record["task"],
                "size": record["size"],
                "n_train": record["n_train"],
                "n_test": record["n_test"],
                "seed": record["seed"],
                **row,
                "stage1_seconds": record["stage1_seconds"],
                "machine": record.get("machine", ""),
                "command": record.get("command", ""),
            }
            for record in records
            for row in record["rows"]
        ]
        order = {m: k for k, m in enumerate(METHODS)}
        return sorted(rows, key=lambda r: (TASKS.index(r["task"]), r["size"], order[r["method"]], r["seed"]))

    def markdown(
        self, rows: Sequence[dict[str, Any]], commands: Sequence[str] = (), options: StudyOptions | None = None
    ) -> str:
        """:func:`regression_markdown` under this invocation's settings; rows without their own command name
        this invocation's."""
        settings = self.settings(options) if options is not None else RegressionSettings()
        return regression_markdown(rows, settings, options.command if options is not None else "")


def regression_markdown(
    rows: Sequence[dict[str, Any]], settings: RegressionSettings, command: str = "", machine: str = ""
) -> str:
    """Per task and size: R², RMSE and fit time per method, mean ± standard deviation over seeds.

    ``machine`` and ``command`` stand in for the jobs whose records carry none (jobs run before records kept
    them). When every table comes from one machine state and one command they are printed once at the top;
    otherwise each table says its own.
    """
    rows = [{**r, "machine": r.get("machine") or machine, "command": r.get("command") or command} for r in rows]
    provenance = sorted({(r["machine"], r["command"]) for r in rows})
    shared = provenance[0] if len(provenance) == 1 else ("", "")
    s = settings
    lines = [
        "# Series-level regression: TimesCLIPRegressor's stages beside scikit-learn",
        "",
        f"Backbone `{s.backbone}` with random weights (no pretrained CLIP), patches {s.patch_length}/{s.patch_stride}. "
        f"Stage 1: a TimesCLIPModel forecaster on windows of half the samples' length ({s.forecaster_epochs} epochs, "
        f"{s.windows_per_sample} random windows per training sample). Stage 2: the head alone on the frozen encoder, "
        f"up to {s.head_epochs} epochs with early stopping on 10 % of the training samples (patience 10). Stage 3: "
        f"then {s.finetune_epochs} epochs of fine-tuning (encoder and head at 1e-4, alignment weight 0.1). "
        f"Scratch: a fresh "
        f"encoder trained with the head, {s.scratch_epochs} epochs, encoder at {s.scratch_lr:g}. Batch size "
        f"{s.batch_size}. Test R² and RMSE (target units: t/ha for crop, °C for weather), mean ± standard deviation "
        "over seeds (n in brackets); fit seconds are the method's own (stage 1's time is listed apart).",
        "",
    ]
    lines += _provenance_lines(*shared)
    tasks = [t for t in TASKS if any(r["task"] == t for r in rows)]
    for task in tasks:
        sizes = sorted({r["size"] for r in rows if r["task"] == task})
        for size in sizes:
            cell = [r for r in rows if r["task"] == task and r["size"] == size]
            stage1 = [r["stage1_seconds"] for r in cell if r["method"] == "stage2" and r["stage1_seconds"] is not None]
            lines += [f"## {task}, {size} samples ({cell[0]['n_train']} train, {cell[0]['n_test']} test)", ""]
            if len(provenance) > 1:  # the runs differ: each table says which made it
                for machine_, command_ in sorted({(r["machine"], r["command"]) for r in cell}):
                    lines += _provenance_lines(machine_, command_)
            lines += ["| method | R² | RMSE | fit s |", "|---|---|---|---|"]
            for method in METHODS:
                values = [r for r in cell if r["method"] == method]
                if not values:
                    continue
                r2, r2_sd = mean_std([r["r2"] for r in values])
                rmse, rmse_sd = mean_std([r["rmse"] for r in values])
                seconds = np.mean([r["fit_seconds"] for r in values])
                lines.append(
                    f"| {method} | {r2:.3f} ± {r2_sd:.3f} ({len(values)}) | {rmse:.3f} ± {rmse_sd:.3f} "
                    f"| {seconds:.0f} |"
                )
            if stage1:
                lines += [
                    "",
                    f"Stage 1 (the forecaster, shared by stage2 and stage3): {np.mean(stage1):.0f} s per seed.",
                ]
            r2_of = {(r["method"], r["seed"]): r["r2"] for r in cell}
            seeds = sorted({seed for method, seed in r2_of if method == "stage3"})
            if seeds and all(r2_of[("stage3", seed)] == r2_of.get(("stage2", seed)) for seed in seeds):
                lines += [
                    "",
                    "Stage 3 equals stage 2 for every seed: no fine-tuning epoch beat stage 2's validation loss, "
                    "so stage 3 kept the weights it started from.",
                ]
            lines.append("")
        missing = [size for size in DEFAULT_SIZES if size not in sizes]
        if missing:
            lines += [
                f"Not run for {task}: size(s) {', '.join(str(m) for m in missing)} (the issue's default sizes); "
                f"produce them with `python -m benchmarks regression --tasks {task} --sizes "
                f"{' '.join(str(m) for m in missing)}` (same options as above).",
                "",
            ]
    return "\n".join(lines)


def _provenance_lines(machine: str, command: str) -> list[str]:
    lines = []
    if machine:
        lines += [f"Machine: {machine}.", ""]
    return lines + command_markdown([command])
