"""Lightning callbacks: the protocol's early stopping on the validation split, a progress line per epoch,
the per-epoch history a result record keeps, and the per-epoch checkpoint that lets an interrupted job resume.

Time-Series-Library stops when the validation loss has not improved for ``patience`` epochs and then
tests the checkpoint with the lowest validation loss; ``BestWeights`` keeps that checkpoint in memory
(Darts' own checkpointing would write to disk for every job). ``EpochLog`` logs one line per epoch;
``EpochHistory`` keeps each epoch's validation loss and the training seconds at its end, for the result record.
``EpochCheckpoint`` writes the whole training state (weights, optimiser, schedulers, loop counters,
callbacks, random generators) at the end of every epoch, atomically, so that a job killed after hours
of training resumes at its last finished epoch and ends as the uninterrupted job would.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping

from darts_timesclip._io import atomic_path

logger = logging.getLogger(__name__)


def epoch_validation_loss(trainer: pl.Trainer, monitor: str = "val_loss") -> float | None:
    """The validation loss the epoch logged under ``monitor``; ``None`` during Lightning's sanity check (a few
    batches before training) or where none was logged."""
    if trainer.sanity_checking:
        return None
    value = trainer.callback_metrics.get(monitor)
    return None if value is None else float(value)


class BestWeights(pl.Callback):
    """Remember the weights of the epoch with the lowest ``val_loss``; restore them after training.

    Attributes
    ----------
    best_loss
        Lowest validation loss seen (``inf`` before the first validation).
    best_epoch
        0-based epoch of ``best_loss`` (``None`` before the first validation).
    """

    def __init__(self, monitor: str = "val_loss") -> None:
        self.monitor = monitor
        self.best_loss = math.inf
        self.best_epoch: int | None = None
        self._state: dict[str, Any] | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loss = epoch_validation_loss(trainer, self.monitor)
        if loss is not None and loss < self.best_loss:
            self.best_loss = loss
            self.best_epoch = trainer.current_epoch
            self._state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()}

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._state is not None:
            pl_module.load_state_dict(copy.deepcopy(self._state))

    def state_dict(self) -> dict[str, Any]:
        # saved with an epoch checkpoint: a resumed job must still restore the best epoch's weights
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "weights": self._state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_loss = state_dict["best_loss"]
        self.best_epoch = state_dict["best_epoch"]
        self._state = state_dict["weights"]


class EpochLog(pl.Callback):
    """Log one progress line per training epoch at INFO on ``benchmarks.callbacks``.

    The line reads ``<label>  epoch 2/10  train_loss 0.4121  val_loss 0.3987  31.2 s``: the mean of the
    per-step ``train_loss`` over the epoch's batches, the epoch's ``val_loss`` (``n/a`` where no
    validation ran in it) and the epoch's wall time, validation included. Both losses are the forecast
    loss as Darts logs it (TimesCLIP logs its alignment term apart, in ``train_total_loss``). The logger
    prints nothing unless a command-line ``main()`` has called ``benchmarks.console.configure_console``.

    Parameters
    ----------
    label
        What trains, e.g. ``timesclip ETTh1 H=96``. Default: ``""``.
    """

    def __init__(self, label: str = "") -> None:
        self.label = label
        self._start = time.perf_counter()
        self._train_sum = 0.0
        self._train_steps = 0
        self._val_loss: float | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()
        self._train_sum, self._train_steps = 0.0, 0
        self._val_loss = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # `train_loss` is logged per step only; the epoch figure is the mean of the steps
        value = trainer.callback_metrics.get("train_loss")
        if value is not None:
            self._train_sum += float(value)
            self._train_steps += 1

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val_loss = epoch_validation_loss(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning validates before this hook, so the epoch's `val_loss` is known here
        logger.info(self.format_line(trainer.current_epoch + 1, trainer.max_epochs))

    def format_line(self, epoch: int, max_epochs: int | None) -> str:
        """The progress line of (1-based) ``epoch`` from what was collected during it."""
        of = f"/{max_epochs}" if max_epochs is not None and max_epochs > 0 else ""
        train = "n/a" if not self._train_steps else f"{self._train_sum / self._train_steps:.4f}"
        val = "n/a" if self._val_loss is None else f"{self._val_loss:.4f}"
        seconds = time.perf_counter() - self._start
        prefix = f"{self.label}  " if self.label else ""
        return f"{prefix}epoch {epoch}{of}  train_loss {train}  val_loss {val}  {seconds:.1f} s"


class EpochTimer(pl.Callback):
    """Record the wall time of each training epoch (validation included) in :attr:`seconds`."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


class EpochHistory(pl.Callback):
    """Each training epoch's validation loss and the cumulative training seconds at its end, in :attr:`entries`.

    An entry is ``{"epoch": int, "val_loss": float | None, "seconds": float}``: epochs counted from 1, ``val_loss``
    as ``BestWeights`` reads it (``None`` where no validation ran in the epoch), ``seconds`` what ``clock`` reads
    at the end of the epoch, validation included. The entries travel in an ``EpochCheckpoint``: a resumed job
    continues them.

    Parameters
    ----------
    clock
        The training seconds so far (the runner's: the seconds its record's ``train_seconds`` counts, those of the
        processes before a resumed one included). Default: ``None``, seconds since ``fit`` started.

    Attributes
    ----------
    entries
        One dict per finished epoch, in order.
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.entries: list[dict[str, Any]] = []
        self._clock = clock
        self._fit_start = time.perf_counter()
        self._val_loss: float | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val_loss = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._val_loss = epoch_validation_loss(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning validates before this hook, so the epoch's `val_loss` is known here
        seconds = self._clock() if self._clock is not None else time.perf_counter() - self._fit_start
        self.entries.append({"epoch": trainer.current_epoch + 1, "val_loss": self._val_loss, "seconds": seconds})

    def state_dict(self) -> dict[str, Any]:
        return {"entries": copy.deepcopy(self.entries)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.entries = copy.deepcopy(list(state_dict["entries"]))


def _rng_state() -> dict[str, Any]:
    """The global random generators' states, in types that ``torch.load(weights_only=True)`` accepts."""
    numpy_state = np.random.get_state(legacy=False)  # noqa: NPY002 -- Darts and Lightning draw from it
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            **numpy_state,
            "state": {"key": numpy_state["state"]["key"].tolist(), "pos": numpy_state["state"]["pos"]},
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = dict(state["numpy"])
    numpy_state["state"] = {
        "key": np.asarray(numpy_state["state"]["key"], dtype=np.uint32),
        "pos": numpy_state["state"]["pos"],
    }
    np.random.set_state(numpy_state)  # noqa: NPY002
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class EpochCheckpoint(pl.Callback):
    """Write the whole training state to ``path`` at the end of every epoch, atomically.

    The file is Lightning's checkpoint (weights, optimiser, learning-rate schedulers, loop counters and
    every callback's state, ``BestWeights`` and ``EarlyStopping`` included) plus this callback's own
    state: the global random generators, the training seconds so far and the number of finished epochs.
    ``Trainer.fit(ckpt_path=path)`` resumes from it at the next epoch with the generators as they were,
    so the shuffling and dropout that follow, and hence the trained model, are those of an
    uninterrupted run. Written into a temporary file that replaces ``path`` only once complete: a job
    killed while writing keeps its previous epoch's checkpoint.

    It saves in ``on_train_epoch_end``, after validation; it must come after the other callbacks in the
    list, and early stopping must decide at the end of validation (``check_on_train_epoch_end=False``,
    as ``make_callbacks`` sets it), so that their states in the file are those of the finished epoch.
    (A ``Checkpoint`` subclass would be called last anyway, but Darts' trainers are built with
    ``enable_checkpointing=False``, which Lightning enforces against every ``Checkpoint`` callback.)

    Parameters
    ----------
    path
        The checkpoint file.

    Attributes
    ----------
    resumed_from_epoch
        Epochs finished before this process resumed (``None``: the training started afresh).
    train_seconds_before
        Training seconds spent by the processes before this one (0 unless resumed).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.resumed_from_epoch: int | None = None
        self.train_seconds_before = 0.0
        self._fit_start: float | None = None
        self._epochs_done = 0
        self._should_stop = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epochs_done = trainer.current_epoch + 1
        self._should_stop = trainer.should_stop  # early stopping's verdict, which Lightning does not save
        with atomic_path(self.path) as partial:
            trainer.save_checkpoint(partial)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # a job that was killed after early stopping had ended its training trains no further epoch
        if self.resumed_from_epoch is not None and self._should_stop:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        now = time.perf_counter()
        seconds = self.train_seconds_before + (now - (self._fit_start if self._fit_start is not None else now))
        return {
            "rng": _rng_state(),
            "train_seconds": seconds,
            "epochs_done": self._epochs_done,
            "should_stop": self._should_stop,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # called while `fit` restores the checkpoint, before the next epoch draws from the generators
        _set_rng_state(state_dict["rng"])
        progress = _progress(state_dict)
        self.train_seconds_before = progress["train_seconds"]
        self._epochs_done = self.resumed_from_epoch = progress["epochs_done"]
        self._should_stop = progress["should_stop"]


def _progress(state_dict: dict[str, Any]) -> dict[str, Any]:
    """Epochs done, training seconds and early stopping's verdict from an ``EpochCheckpoint`` state."""
    return {
        "epochs_done": int(state_dict["epochs_done"]),
        "train_seconds": float(state_dict["train_seconds"]),
        "should_stop": bool(state_dict["should_stop"]),
    }


def read_epoch_checkpoint(path: Path) -> dict[str, Any]:
    """The progress an ``EpochCheckpoint`` file records, without loading the model.

    Loads the file as a resumed run does (Darts' safe ``weights_only`` checkpoint loading), with its
    tensors memory-mapped, so even a checkpoint of gigabytes is read in a moment.

    Parameters
    ----------
    path
        The checkpoint file.

    Returns
    -------
    dict
        ``epochs_done`` (finished epochs), ``train_seconds`` (training time of the processes so far) and
        ``should_stop`` (early stopping had ended the training).

    Raises
    ------
    ValueError
        If ``path`` cannot be read or is not an ``EpochCheckpoint`` file.
    """
    from darts.utils.serialization.torch import load_ckpt_safely

    import benchmarks.models  # noqa: F401 -- registers the classes a model's hyperparameters hold as safe

    try:
        checkpoint = load_ckpt_safely(torch.load, path, map_location="cpu", mmap=True)
        return _progress(checkpoint["callbacks"][EpochCheckpoint.__qualname__])
    except Exception as err:  # a truncated or foreign file: say which, not a deep unpickling trace
        detail = (str(err).strip().splitlines() or [""])[0][:200]
        raise ValueError(
            f"The epoch checkpoint `{path}` cannot be read ({type(err).__name__}: {detail}); "
            "delete it to train the job afresh."
        ) from err


class ValidationReport(pl.Callback):
    """Hands each epoch's validation loss to ``report`` (e.g. Ray Tune's ``tune.report``), sanity checks left out.

    Parameters
    ----------
    report
        Called with ``{"val_loss": float, "epoch": int}`` (epochs counted from 1) after every validation.
    """

    def __init__(self, report: Callable[[dict[str, Any]], None]) -> None:
        self.report = report

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loss = epoch_validation_loss(trainer)
        if loss is not None:
            self.report({"val_loss": loss, "epoch": trainer.current_epoch + 1})


def make_callbacks(
    patience: int | None, label: str = "", epoch_log: bool = True
) -> tuple[BestWeights, list[pl.Callback]]:
    """Best-weights restore, the per-epoch progress line, and early stopping on ``val_loss``.

    Parameters
    ----------
    patience
        Early-stopping patience in epochs; ``None`` for no early stopping.
    label
        What trains, for the progress line (see ``EpochLog``). Default: ``""``.
    epoch_log
        Add the ``EpochLog`` progress line; turn it off where Lightning's progress bar shows progress
        instead (both on one terminal garble each other). Default: ``True``.

    Returns
    -------
    tuple
        The ``BestWeights`` callback (to read its statistics after ``fit``) and the callback list
        for ``pl_trainer_kwargs``.
    """
    best = BestWeights()
    callbacks: list[pl.Callback] = [best]
    if epoch_log:
        callbacks.append(EpochLog(label))
    if patience is not None:
        callbacks.append(early_stopping(patience))
    return best, callbacks


def early_stopping(patience: int) -> pl.Callback:
    """Early stopping on ``val_loss`` after ``patience`` epochs without a lower one.

    Decided when validation ends (the same epochs as at the epoch's end), so that an ``EpochCheckpoint`` placed after
    it saves the finished epoch's early-stopping state.
    """
    return EarlyStopping(monitor="val_loss", patience=patience, mode="min", check_on_train_epoch_end=False)
