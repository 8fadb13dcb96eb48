"""Hyperparameter search on the validation split: ``python -m benchmarks tune``, on Ray Tune.

One search is (model, dataset, horizon, lookback): Optuna's TPE proposes configurations from the model's
:data:`SEARCH_SPACES` entry, each trial trains on the train split and reports its validation loss (the forecast
loss, as early stopping reads it) after every epoch, and ASHA stops the unpromising trials at its rungs (1, 3, 9,
... epochs with the default reduction factor 3). A trial also stops as the tuned model will train, after
``--patience`` epochs (default 3) without a lower validation loss. The test split never reaches a trial: the driver
hands each trial the train and validation series only.

Everything lands under ``OUTPUT/<model>_<dataset>_h<H>_l<L>/``:

- ``trials.csv``: one row per trial (its parameters, epochs trained, best validation loss and epoch, status);
- ``curves.csv``: every trial's validation loss after every epoch;
- ``best.json``: the best configuration (lowest validation loss at any epoch of any trial) with its provenance.
  ``python -m benchmarks run --models <model>-tuned`` trains the model with it (the search at ``H = 96`` serves the
  other horizons of the dataset);
- ``ray/``: Ray Tune's own experiment state (not committed). Running the same command again resumes an interrupted
  search where it stopped: finished trials are kept, unfinished ones restart, the searcher keeps its history.
  ``--conclude`` ends an interrupted search where it stands instead: the records of the trials it finished are
  written (the best of them in ``best.json``) and no trial is started.

Trials run on a local Ray instance by default, or on a cluster (``--ray-address``), each reserving
``--cpus-per-trial`` CPUs (its torch threads) and ``--gpus-per-trial`` GPUs. ``--max-epochs`` is ASHA's ``max_t``
(default 10), ``--max-samples-per-ts`` the windows of each epoch. Trials are no benchmark jobs: the study runs its
searches itself (:meth:`TuneStudy.run`), and its report, ``OUTPUT/tuning.csv`` and ``.md``, lists every search's
best configuration (``--dry-run`` lists the searches, ``--report-only`` rewrites the report).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from benchmarks.models import ModelConfig, TrainingCaps, model_config
from benchmarks.report import csv_text
from benchmarks.study import RESULTS_DIR, Study, StudyOptions, dataset_name, positive_int
from darts_timesclip._io import write_text_atomic

logger = logging.getLogger(__name__)

#: Where searches are written, and where ``<model>-tuned`` configurations are read from.
DEFAULT_TUNE_DIR = RESULTS_DIR / "tune"

#: The suffix of a model name that ``run`` resolves to the base model with its searched configuration.
TUNED_SUFFIX = "-tuned"

#: The horizon whose search serves every horizon of a dataset that has no search of its own.
REFERENCE_HORIZON = 96

Domain = Literal["loguniform", "uniform", "choice"]


# ------------------------------------------------------------------------------------------------ search spaces
@dataclass(frozen=True)
class Param:
    """One searched hyperparameter.

    Parameters
    ----------
    name
        Its name in trial records and ``best.json``.
    domain
        ``"loguniform"`` or ``"uniform"`` between ``low`` and ``high``, or ``"choice"`` among ``choices``.
    apply
        How a value changes a :class:`~benchmarks.models.ModelConfig`.
    doc
        One line for the documentation of the search space.
    low, high, choices
        The domain's bounds or values.
    """

    name: str
    domain: Domain
    apply: Callable[[ModelConfig, Any], ModelConfig]
    doc: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    def ray_domain(self) -> Any:
        from ray import tune

        if self.domain == "loguniform":
            return tune.loguniform(self.low, self.high)
        if self.domain == "uniform":
            return tune.uniform(self.low, self.high)
        return tune.choice(list(self.choices))

    def describe(self) -> str:
        if self.domain == "choice":
            return "one of " + ", ".join(f"`{c}`" for c in self.choices)
        return f"{self.domain} in [{self.low:g}, {self.high:g}]"


def _field(name: str) -> Callable[[ModelConfig, Any], ModelConfig]:
    return lambda config, value: replace(config, **{name: value})


def _arch(*keys: str) -> Callable[[ModelConfig, Any], ModelConfig]:
    return lambda config, value: replace(config, architecture={**config.architecture, **dict.fromkeys(keys, value)})


def _patches(config: ModelConfig, value: str) -> ModelConfig:
    length, stride = (int(v) for v in value.split("/"))
    return replace(config, architecture={**config.architecture, "patch_length": length, "patch_stride": stride})


_LR_SCHEDULE = Param(
    "lr_schedule",
    "choice",
    _field("lr_schedule"),
    "learning-rate schedule: per-step cosine to 0, TSLib's `type1` (halved every epoch) or constant",
    choices=("cosine", "type1", "constant"),
)
_WEIGHT_DECAY = Param("weight_decay", "loguniform", _field("weight_decay"), "AdamW weight decay", 1e-4, 0.3)

SEARCH_SPACES: dict[str, tuple[Param, ...]] = {
    "timesclip": (
        Param("learning_rate", "loguniform", _field("learning_rate"), "learning rate of the new parts", 1e-4, 3e-3),
        Param(
            "text_tower_lr",
            "loguniform",
            _arch("text_tower_lr"),
            "learning rate of the text (numeric) tower",
            1e-5,
            1e-3,
        ),
        _WEIGHT_DECAY,
        Param("dropout", "uniform", _arch("dropout"), "dropout of variate selection and generator", 0.0, 0.5),
        _LR_SCHEDULE,
        Param("batch_size", "choice", _field("batch_size"), "windows per batch", choices=(32, 64, 128)),
        Param(
            "patches",
            "choice",
            _patches,
            "patch length / stride of the numeric view",
            choices=("16/8", "24/12", "32/16"),
        ),
        Param("alignment_weight", "loguniform", _arch("alignment_weight"), "weight of the alignment loss", 1e-3, 1.0),
        Param(
            "text_tower_width",
            "choice",
            _arch("text_tower_width"),
            "width of the random-weight text tower",
            choices=(64, 128, 256),
        ),
        Param(
            "text_tower_layers",
            "choice",
            _arch("text_tower_layers"),
            "layers of the random-weight text tower",
            choices=(2, 3, 4),
        ),
    ),
    "nlinear": (
        Param("learning_rate", "loguniform", _field("learning_rate"), "learning rate", 1e-5, 1e-1),
        Param("batch_size", "choice", _field("batch_size"), "windows per batch", choices=(8, 16, 32, 64, 128)),
        _LR_SCHEDULE,
    ),
    "dlinear": (
        Param("learning_rate", "loguniform", _field("learning_rate"), "learning rate", 1e-5, 1e-1),
        Param("batch_size", "choice", _field("batch_size"), "windows per batch", choices=(8, 16, 32, 64, 128)),
        _LR_SCHEDULE,
    ),
    "patchtst": (
        Param("learning_rate", "loguniform", _field("learning_rate"), "learning rate", 1e-5, 1e-3),
        Param("dropout", "uniform", _arch("dropout", "fc_dropout"), "dropout", 0.0, 0.4),
        Param("hidden_size", "choice", _arch("hidden_size"), "model width", choices=(16, 64, 128)),
        Param("batch_size", "choice", _field("batch_size"), "windows per batch", choices=(32, 64, 128)),
    ),
    "itransformer": (
        Param("learning_rate", "loguniform", _field("learning_rate"), "learning rate", 1e-5, 1e-3),
        Param("hidden_size", "choice", _arch("hidden_size", "d_ff"), "model width", choices=(128, 256, 512)),
        Param("e_layers", "choice", _arch("e_layers"), "encoder layers", choices=(1, 2, 3)),
        Param("dropout", "uniform", _arch("dropout"), "dropout", 0.0, 0.3),
        Param("batch_size", "choice", _field("batch_size"), "windows per batch", choices=(16, 32, 64)),
    ),
}
"""The searched hyperparameters of each model (TimesCLIP's ablations share ``timesclip``'s).

TimesCLIP's tower sizes stop at 256 wide and 4 layers, and its patches at 16 steps or longer (12 or fewer tokens at
L = 96): on a CPU a larger text tower or twice the tokens costs several times ``compact``'s epoch.
"""


def search_space(model: str) -> tuple[Param, ...]:
    """The searched hyperparameters of ``model``.

    Raises
    ------
    ValueError
        For a model without a search space.
    """
    key = "timesclip" if model.startswith("timesclip") else model
    if key not in SEARCH_SPACES:
        raise ValueError(f"Model `{model}` has no search space; searchable: {', '.join(SEARCH_SPACES)}.")
    return SEARCH_SPACES[key]


def apply_params(config: ModelConfig, params: Mapping[str, Any]) -> ModelConfig:
    """``config`` with a trial's (or ``best.json``'s) parameters applied.

    Raises
    ------
    ValueError
        For a parameter that is not in the model's search space.
    """
    space = {p.name: p for p in search_space(config.name.removesuffix(TUNED_SUFFIX))}
    unknown = sorted(set(params) - set(space))
    if unknown:
        raise ValueError(f"Unknown parameter(s) {unknown} for `{config.name}`; its search space: {sorted(space)}.")
    for name, value in params.items():
        config = space[name].apply(config, value)
    return config


# ------------------------------------------------------------------------------------------------ the search
#: Early-stopping patience of a tuned model at the full budget (Time-Series-Library's default), and of a trial.
TUNED_PATIENCE = 3


@dataclass(frozen=True)
class SearchSpec:
    """One search: what is tuned, on what, with which budget.

    Parameters
    ----------
    model, dataset, horizon, lookback
        The model (a registry name with a search space) and the task.
    num_samples
        Trials (configurations) in all.
    max_epochs
        Epochs of a trial that ASHA never stops (its ``max_t``).
    grace_epochs, reduction_factor
        ASHA's first rung and the fraction (1 / factor) of trials promoted at each rung.
    max_samples_per_ts
        Train and validate each epoch on at most this many (the most recent) windows; ``None``: all.
    patience
        A trial stops after this many epochs without a lower validation loss, as the tuned model will train
        (:data:`TUNED_PATIENCE`); ``None``: the model's own patience.
    seed
        Seed of the searcher and of every trial's training.
    backbone
        TimesCLIP's backbone (random weights).
    scale
        ``official`` or ``tiny`` (smoke tests).
    """

    model: str
    dataset: str
    horizon: int = REFERENCE_HORIZON
    lookback: int = 96
    num_samples: int = 20
    max_epochs: int = 10
    grace_epochs: int = 1
    reduction_factor: int = 3
    max_samples_per_ts: int | None = None
    patience: int | None = TUNED_PATIENCE
    seed: int = 2021
    backbone: str = "compact"
    scale: Literal["official", "tiny"] = "official"

    @property
    def name(self) -> str:
        return f"{self.model}_{self.dataset}_h{self.horizon}_l{self.lookback}"

    def base_config(self) -> ModelConfig:
        return model_config(self.model, self.dataset, self.horizon, scale=self.scale, backbone=self.backbone)

    def caps(self) -> TrainingCaps:
        return TrainingCaps(max_epochs=self.max_epochs, max_samples_per_ts=self.max_samples_per_ts)


@dataclass(frozen=True)
class TrialResources:
    """Where trials run: CPUs and GPUs per trial, concurrency, Ray cluster address."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    ray_address: str | None = None
    accelerator: str = "auto"


def trial_config(spec: SearchSpec, params: Mapping[str, Any]) -> ModelConfig:
    """The configuration a trial trains: the model's own with ``params``, stopping after ``spec.patience`` epochs
    without a lower validation loss (the model's own patience where that is ``None``)."""
    config = apply_params(spec.base_config(), params)
    return config if spec.patience is None else replace(config, patience=spec.patience)


def _trial(params: dict[str, Any], *, spec: SearchSpec, resources: TrialResources, train: Any, val: Any) -> None:
    """The body of one trial (in a Ray worker): train with ``params`` on ``train``, validating on ``val``."""
    import torch
    from ray import tune

    from benchmarks.callbacks import ValidationReport, early_stopping
    from benchmarks.models import build_model

    torch.set_num_threads(max(1, math.floor(resources.cpus_per_trial)))
    caps = spec.caps()
    config = trial_config(spec, params)
    n_train = len(train) - spec.lookback - spec.horizon + 1
    if caps.max_samples_per_ts is not None:
        n_train = min(n_train, caps.max_samples_per_ts)
    model = build_model(
        config,
        lookback=spec.lookback,
        horizon=spec.horizon,
        seed=spec.seed,
        caps=caps,
        n_train_windows=n_train,
        # the report first: the epoch that ends a trial is reported too
        callbacks=[
            ValidationReport(tune.report),
            *([] if config.patience is None else [early_stopping(config.patience)]),
        ],
        accelerator=resources.accelerator,
    )
    model.fit(
        train,
        val_series=val,
        max_samples_per_ts=caps.max_samples_per_ts,
        dataloader_kwargs={"pin_memory": torch.cuda.is_available()},
        verbose=False,
    )


def run_search(
    spec: SearchSpec,
    output_dir: Path,
    data_dir: Path | None,
    resources: TrialResources,
    command: str,
    conclude: bool = False,
) -> Path:
    """Run (or resume) a search and write its records; return the path of ``best.json``.

    With ``conclude``, an interrupted search is ended where it stands: its records are written from the trials it
    finished, and no trial runs.

    Raises
    ------
    FileNotFoundError
        With ``conclude``, if there is no search to end.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from benchmarks.executors import RayOptions, ray_session
    from benchmarks.protocol import prepare
    from benchmarks.registry import get_spec, read_dataset

    search_space(spec.model)  # a clear error before Ray starts
    directory = output_dir / spec.name
    storage = (directory / "ray").resolve()
    experiment = storage / "search"
    if conclude and not tune.Tuner.can_restore(str(experiment)):
        raise FileNotFoundError(f"`--conclude`: there is no search `{spec.name}` to end under {storage}.")
    data = prepare(read_dataset(get_spec(spec.dataset), data_dir), spec.lookback)
    train, val = data.split_series("train"), data.split_series("val")  # the test split stays here
    # the session puts back the environment: Ray's variables and the reporter's, set below
    with ray_session(RayOptions(address=resources.ray_address, cpus_per_job=resources.cpus_per_trial)):
        _quiet_search_libraries()
        trainable = tune.with_resources(
            tune.with_parameters(_trial, spec=spec, resources=resources, train=train, val=val),
            {"cpu": resources.cpus_per_trial, "gpu": resources.gpus_per_trial},
        )
        if conclude:
            grid = tune.Tuner.restore(str(experiment), trainable).get_results()
            logger.info("Search %s ended where it stood: %d trials", spec.name, len(grid))
            return write_records(grid, spec, directory, command)
        if tune.Tuner.can_restore(str(experiment)):
            logger.info("Resuming the search in %s", experiment)
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True, restart_errored=True)
        else:
            searcher: Any = OptunaSearch(seed=spec.seed)
            if resources.max_concurrent is not None:
                searcher = ConcurrencyLimiter(searcher, max_concurrent=resources.max_concurrent)
            scheduler = ASHAScheduler(
                time_attr="training_iteration",
                max_t=spec.max_epochs,
                grace_period=spec.grace_epochs,
                reduction_factor=spec.reduction_factor,
            )
            tuner = tune.Tuner(
                trainable,
                param_space={p.name: p.ray_domain() for p in search_space(spec.model)},
                tune_config=tune.TuneConfig(
                    metric="val_loss",
                    mode="min",
                    search_alg=searcher,
                    scheduler=scheduler,
                    num_samples=spec.num_samples,
                ),
                run_config=tune.RunConfig(
                    name="search", storage_path=str(storage), verbose=0, callbacks=[_trial_log(spec)]
                ),
            )
        start = time.perf_counter()
        grid = tuner.fit()
        logger.info("Search %s: %d trials in %.0f s", spec.name, len(grid), time.perf_counter() - start)
        return write_records(grid, spec, directory, command)


def _quiet_search_libraries() -> None:
    """Optuna logs every study it creates; Ray Tune's console reporter draws tables: the search logs one line per
    finished trial instead (:class:`TrialLog`)."""
    import os

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # the legacy reporter honours `verbose=0`
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:  # pragma: no cover - OptunaSearch raises its own error
        pass


def _trial_log(spec: SearchSpec) -> Any:
    """A Ray Tune callback logging one line per finished trial: its number, epochs, best validation loss."""
    from ray.tune import Callback

    class TrialLog(Callback):
        def __init__(self) -> None:
            self.done = 0

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.done += 1
            losses = trial.metric_analysis.get("val_loss", {})
            logger.info(
                "%s: trial %d of %d (%s) ended after %s epoch(s), best val_loss %.4f",
                spec.name,
                self.done,
                spec.num_samples,
                trial.trial_id,
                trial.last_result.get("training_iteration", 0),
                losses.get("min", math.nan),
            )

    return TrialLog()


# ------------------------------------------------------------------------------------------------ records
def _trial_rows(grid: Any, spec: SearchSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    names = [p.name for p in search_space(spec.model)]
    trials, curves = [], []
    for result in grid:
        trial_id = str((result.metrics or {}).get("trial_id") or Path(result.path or "?").name)
        frame = result.metrics_dataframe
        losses = [] if frame is None or "val_loss" not in frame else [float(v) for v in frame["val_loss"]]
        if not losses and result.error is None:
            continue  # a trial the interrupted search had not started, or stopped within its first epoch
        seconds = [] if frame is None or "time_total_s" not in frame else [float(v) for v in frame["time_total_s"]]
        for epoch, loss in enumerate(losses, start=1):
            curves.append({"trial": trial_id, "epoch": epoch, "val_loss": loss, "seconds": seconds[epoch - 1]})
        best = min(range(len(losses)), key=losses.__getitem__) if losses else None
        if result.error is not None:
            status = "error"
        elif len(losses) >= spec.max_epochs:
            status = "completed"
        else:
            status = "stopped"
        trials.append(
            {
                "trial": trial_id,
                **{name: (result.config or {}).get(name) for name in names},
                "epochs": len(losses),
                "best_val_loss": None if best is None else losses[best],
                "best_epoch": None if best is None else best + 1,
                "seconds": seconds[-1] if seconds else None,
                "status": status,
            }
        )
    trials.sort(key=lambda r: (r["best_val_loss"] is None, r["best_val_loss"] or 0.0, r["trial"]))
    curves.sort(key=lambda r: (r["trial"], r["epoch"]))
    return trials, curves


def write_records(grid: Any, spec: SearchSpec, directory: Path, command: str) -> Path:
    """Write ``trials.csv``, ``curves.csv`` and ``best.json`` for a finished (or interrupted) search."""
    from benchmarks.machine import describe_machine

    trials, curves = _trial_rows(grid, spec)
    scored = [t for t in trials if t["best_val_loss"] is not None]
    if not scored:
        raise RuntimeError(f"No trial of the search `{spec.name}` reported a validation loss; see Ray's logs.")
    best = scored[0]
    names = [p.name for p in search_space(spec.model)]
    record = {
        "model": spec.model,
        "dataset": spec.dataset,
        "horizon": spec.horizon,
        "lookback": spec.lookback,
        "params": {name: best[name] for name in names},
        "val_loss": best["best_val_loss"],
        "best_epoch": best["best_epoch"],
        "trial": best["trial"],
        "trials": len(trials),
        "trial_epochs": sum(t["epochs"] for t in trials),
        "search": {
            "searcher": "Optuna TPE",
            "scheduler": "ASHA",
            "num_samples": spec.num_samples,
            "max_epochs": spec.max_epochs,
            "grace_epochs": spec.grace_epochs,
            "reduction_factor": spec.reduction_factor,
            "max_samples_per_ts": spec.max_samples_per_ts,
            "patience": spec.patience,
            "seed": spec.seed,
            "backbone": spec.backbone if spec.model.startswith("timesclip") else "n/a",
            "scale": spec.scale,
        },
        "machine": describe_machine()["label"],
        "command": command,
    }
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomic(directory / "trials.csv", csv_text(trials, line_end="\n") if trials else "")
    write_text_atomic(directory / "curves.csv", csv_text(curves, line_end="\n") if curves else "")
    path = directory / "best.json"
    write_text_atomic(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
    return path


# ------------------------------------------------------------------------------------------------ tuned configs
def tuned_record(model: str, dataset: str, horizon: int, lookback: int, tune_dir: Path = DEFAULT_TUNE_DIR) -> dict:
    """The ``best.json`` that serves ``model`` on ``dataset``: the search at ``horizon`` if there is one, else the
    one at :data:`REFERENCE_HORIZON` (the same lookback).

    Raises
    ------
    FileNotFoundError
        Naming the command that would make it.
    """
    for h in dict.fromkeys((horizon, REFERENCE_HORIZON)):
        path = tune_dir / f"{model}_{dataset}_h{h}_l{lookback}" / "best.json"
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    raise FileNotFoundError(
        f"`{model}{TUNED_SUFFIX}` on {dataset}: no search found under {tune_dir} (looked for H={horizon} and "
        f"H={REFERENCE_HORIZON}, L={lookback}); run `python -m benchmarks tune --model {model} --datasets {dataset}`."
    )


def tuned_config(
    base: ModelConfig, dataset: str, horizon: int, lookback: int = 96, tune_dir: Path = DEFAULT_TUNE_DIR
) -> ModelConfig:
    """``base`` (a model's own configuration) with its searched parameters, named ``<model>-tuned``."""
    record = tuned_record(base.name, dataset, horizon, lookback, tune_dir)
    config = apply_params(base, record["params"])
    source = f"{base.source}; searched on the validation split (tune, H={record['horizon']}, {record['trials']} trials)"
    return replace(config, name=base.name + TUNED_SUFFIX, source=source, patience=TUNED_PATIENCE)


# ------------------------------------------------------------------------------------------------ the study
@dataclass(frozen=True)
class TuneStudy(Study):
    """Hyperparameter search on the validation split (Ray Tune); `run --models <model>-tuned` trains its best."""

    name = "tune"
    flags = (
        "data_dir", "output", "results", "backbone", "scale", "max_epochs", "max_samples_per_ts", "ray_address",
        "accelerator", "dry_run", "report_only", "no_report", "verbose",
    )  # fmt: skip
    defaults = {"max_epochs": 10, "results": None}  # the report beside the searches
    output_name = "tune"
    report_stem = "tuning"

    model: str = ""
    datasets: tuple[str, ...] = ()
    horizon: int = REFERENCE_HORIZON
    lookback: int = 96
    num_samples: int = 20
    grace_epochs: int = 1
    reduction_factor: int = 3
    patience: int = TUNED_PATIENCE
    seed: int = 2021
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    conclude: bool = False

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", required=True, help=f"a model with a search space: {', '.join(SEARCH_SPACES)}")
        parser.add_argument("--datasets", nargs="+", type=dataset_name, required=True, help="one search each")
        parser.add_argument("--horizon", type=int, default=cls.horizon, help="default: %(default)s")
        parser.add_argument("--lookback", type=int, default=cls.lookback, help="default: %(default)s")
        parser.add_argument("--num-samples", type=int, default=cls.num_samples, help="trials per search")
        parser.add_argument("--grace-epochs", type=int, default=cls.grace_epochs, help="ASHA's first rung")
        parser.add_argument(
            "--patience",
            type=int,
            default=cls.patience,
            help=f"a trial stops after this many epochs without a lower validation loss (default: {TUNED_PATIENCE})",
        )
        parser.add_argument("--reduction-factor", type=int, default=cls.reduction_factor, help="ASHA's factor")
        parser.add_argument("--seed", type=int, default=cls.seed, help="searcher and training seed")
        parser.add_argument("--cpus-per-trial", type=float, default=cls.cpus_per_trial, help="CPUs (torch threads)")
        parser.add_argument("--gpus-per-trial", type=float, default=cls.gpus_per_trial, help="fractions share a GPU")
        parser.add_argument("--max-concurrent", type=positive_int, help="trials at once (default: as CPUs hold)")
        parser.add_argument(
            "--conclude",
            action="store_true",
            help="end an interrupted search where it stands: write the records of the trials it finished, run none",
        )

    def searches(self, options: StudyOptions) -> tuple[SearchSpec, ...]:
        """One search per dataset.

        Raises
        ------
        ValueError
            For a model without a search space or a value out of range (naming the option and the value).
        """
        search_space(self.model)
        max_epochs = options.caps.max_epochs if options.caps is not None and options.caps.max_epochs else 10
        for name in ("horizon", "lookback", "num_samples", "grace_epochs", "patience"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"`--{name.replace('_', '-')}` must be a positive integer, got `{value}`.")
        if self.reduction_factor < 2:
            raise ValueError(f"`--reduction-factor` must be at least 2, got `{self.reduction_factor}`.")
        if self.grace_epochs > max_epochs:
            raise ValueError(f"`--grace-epochs {self.grace_epochs}` is more than `--max-epochs {max_epochs}`.")
        return tuple(
            SearchSpec(
                model=self.model,
                dataset=dataset,
                horizon=self.horizon,
                lookback=self.lookback,
                num_samples=self.num_samples,
                max_epochs=max_epochs,
                grace_epochs=self.grace_epochs,
                reduction_factor=self.reduction_factor,
                max_samples_per_ts=None if options.caps is None else options.caps.max_samples_per_ts,
                patience=self.patience,
                seed=self.seed,
                backbone=options.timesclip_backbone(),
                scale=options.scale or "official",
            )
            for dataset in self.datasets
        )

    def resources(self, options: StudyOptions) -> TrialResources:
        """Where the trials run."""
        return TrialResources(
            cpus_per_trial=self.cpus_per_trial,
            gpus_per_trial=self.gpus_per_trial,
            max_concurrent=self.max_concurrent,
            ray_address=None if options.ray is None else options.ray.address,
            accelerator=options.accelerator,
        )

    def jobs(self, options: StudyOptions) -> list[Any]:
        """None: a search's trials are Ray Tune's, run by :meth:`run`."""
        return []

    def run(self, options: StudyOptions) -> int:
        """Run (or resume) every search, print where its best configuration went, then write the report."""
        searches = self.searches(options)
        if options.dry_run:
            for spec in searches:
                done = "done" if (options.output / spec.name / "best.json").is_file() else "todo"
                print(f"{done}  {spec.name}  {spec.num_samples} trials, <= {spec.max_epochs} epochs")
            return 0
        if not options.report_only:
            for spec in searches:
                path = run_search(
                    spec, options.output, options.data_dir, self.resources(options), options.command, self.conclude
                )
                record = json.loads(path.read_text(encoding="utf-8"))
                print(f"{spec.name}: best val_loss {record['val_loss']:.4f} at epoch {record['best_epoch']}: {path}")
        if options.report or options.report_only:
            print("wrote " + ", ".join(str(f) for f in self.report(options)))
        return 0

    def records(self, options: StudyOptions) -> list[dict[str, Any]]:
        """Every search's ``best.json`` under ``options.output``."""
        paths = sorted(options.output.glob("*/best.json"))
        return [json.loads(path.read_text(encoding="utf-8")) for path in paths]

    def table(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One row per search: the task, its best validation loss and epoch, its trials, the configuration."""
        return [
            {
                **{key: record[key] for key in ("model", "dataset", "horizon", "lookback", "val_loss", "best_epoch")},
                "trials": _trials_cell(record),
                "trial_epochs": record["trial_epochs"],
                "params": json.dumps(record["params"], sort_keys=True),
                "command": record.get("command", ""),
            }
            for record in records
        ]

    def markdown(
        self, rows: Sequence[dict[str, Any]], commands: Sequence[str] = (), options: StudyOptions | None = None
    ) -> str:
        """The best configuration of each search (validation loss: the forecast loss on the scaled validation
        split)."""
        lines = [
            "# Hyperparameter searches",
            "",
            "Best configuration of each search (Optuna TPE, ASHA), by the lowest validation loss of any epoch of any "
            f"trial; `run --models <model>{TUNED_SUFFIX}` trains with it. The test split never reaches a trial.",
            "",
            "| model | dataset | H | L | val loss | epoch | trials | configuration |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['model']} | {r['dataset']} | {r['horizon']} | {r['lookback']} | {r['val_loss']:.4f} | "
            f"{r['best_epoch']} | {r['trials']} | `{r['params']}` |"
            for r in rows
        ]
        return "\n".join([*lines, ""])


def _trials_cell(record: Mapping[str, Any]) -> str:
    """The trials a search recorded, "of N" where it was ended before all its trials ran (``--conclude``)."""
    planned = record.get("search", {}).get("num_samples")
    if planned is None or record["trials"] >= planned:
        return str(record["trials"])
    return f"{record['trials']} of {planned}"
