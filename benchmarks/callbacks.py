"""Lightning callbacks for the protocol's early stopping on the validation split.

Time-Series-Library stops when the validation loss has not improved for ``patience`` epochs and then
tests the checkpoint with the lowest validation loss; ``BestWeights`` keeps that checkpoint in memory
(Darts' own checkpointing would write to disk for every job).
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
    """Log one line per epoch (validation loss, seconds), so that long runs show progress in plain logs."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        val_loss = trainer.callback_metrics.get("val_loss")
        logger.info(
            "  epoch %d/%d val_loss=%s (%.0fs)",
            trainer.current_epoch + 1,
            trainer.max_epochs,
            "n/a" if val_loss is None else f"{float(val_loss):.4f}",
            time.perf_counter() - self._start,
        )


def make_callbacks(patience: int | None) -> tuple[BestWeights, list[pl.Callback]]:
    """Best-weights restore, an epoch log, and early stopping on ``val_loss`` when ``patience`` is set.

    Returns
    -------
    tuple
        The ``BestWeights`` callback (to read its statistics after ``fit``) and the callback list
        for ``pl_trainer_kwargs``.
    """
    best = BestWeights()
    callbacks: list[pl.Callback] = [best, EpochLog()]
    if patience is not None:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=patience, mode="min"))
    return best, callbacks
