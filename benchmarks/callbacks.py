"""Lightning callbacks: the protocol's early stopping on the validation split, and a progress line per epoch.

Time-Series-Library stops when the validation loss has not improved for ``patience`` epochs and then
tests the checkpoint with the lowest validation loss; ``BestWeights`` keeps that checkpoint in memory
(Darts' own checkpointing would write to disk for every job). ``EpochLog`` logs one line per epoch.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping

logger = logging.getLogger(__name__)


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
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        loss = float(value)
        if loss < self.best_loss:
            self.best_loss = loss
            self.best_epoch = trainer.current_epoch
            self._state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.state_dict().items()}

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._state is not None:
            pl_module.load_state_dict(copy.deepcopy(self._state))


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
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("val_loss")
        self._val_loss = None if value is None else float(value)

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
        callbacks.append(EarlyStopping(monitor="val_loss", patience=patience, mode="min"))
    return best, callbacks
