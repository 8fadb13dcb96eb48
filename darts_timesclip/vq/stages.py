"""The two pretraining stages (tokenizer, Transformer), each a short Lightning run over univariate windows."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from darts_timesclip.vq.network import VQTransformerNetwork

logger = logging.getLogger(__name__)

Stage = Literal["tokenizer", "pretrain"]
STAGES: tuple[Stage, ...] = ("tokenizer", "pretrain")

#: Lightning options of the model's ``pl_trainer_kwargs`` that the stage trainers reuse (not the epoch or step
#: limits, nor callbacks such as early stopping, which watch the forecast loss).
_SHARED_TRAINER_OPTIONS = (
    "accelerator",
    "devices",
    "precision",
    "logger",
    "enable_progress_bar",
    "enable_model_summary",
    "gradient_clip_val",
    "deterministic",
    "default_root_dir",
)


class ChannelWindows(Dataset):
    """Every target variate of every sample of a Darts training dataset, as one univariate window.

    A window is the sample's input followed by its forecast span: ``L + shift + H`` steps, where the ``shift``
    steps a Darts sample leaves out are filled by linear interpolation.
    """

    def __init__(self, dataset: Any, output_chunk_shift: int = 0) -> None:
        self.dataset = dataset
        self.shift = output_chunk_shift
        self.n_variates = int(np.shape(dataset[0].past_target)[1])
        self._length = len(dataset) * self.n_variates

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> torch.Tensor:
        sample = self.dataset[index // self.n_variates]
        channel = index % self.n_variates
        past = np.asarray(sample.past_target[:, channel], dtype=np.float32)
        future = np.asarray(sample.future_target[:, channel], dtype=np.float32)
        parts = [past]
        if self.shift:
            weights = np.arange(1, self.shift + 1, dtype=np.float32) / (self.shift + 1)
            parts.append(past[-1] + weights * (future[0] - past[-1]))
        parts.append(future)
        return torch.from_numpy(np.concatenate(parts))


@dataclass
class StageHistory:
    """Epoch means of a stage's logged values (``{stage}_loss`` and its diagnostics) and ``{stage}_epoch_seconds``."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)


class _StageModule(pl.LightningModule):
    """Trains one stage's part of the network; logs ``{stage}_loss`` and the stage's diagnostics per epoch."""

    def __init__(self, network: VQTransformerNetwork, stage: Stage, lr: float, history: StageHistory) -> None:
        super().__init__()
        self.network = network
        self.stage = stage
        self.lr = lr
        self.history = history
        self._sums: dict[str, float] = {}
        self._count = 0
        self._epoch_start = 0.0

    def _part(self) -> torch.nn.Module:
        return self.network.tokenizer if self.stage == "tokenizer" else self.network.transformer

    def on_train_start(self) -> None:
        for p in self.network.parameters():
            p.requires_grad_(False)
        for p in self._part().parameters():
            p.requires_grad_(True)
        self.network.tokenizer.quantizer.updating = self.stage == "tokenizer"

    def on_train_end(self) -> None:
        self.network.tokenizer.quantizer.updating = False

    def on_train_epoch_start(self) -> None:
        self._epoch_start = time.perf_counter()

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        if self.stage == "tokenizer":
            out = self.network.tokenizer_loss(batch)
            values = {
                "loss": out.loss,
                "reconstruction_loss": out.reconstruction,
                "perplexity": out.perplexity,
                "codebook_usage": out.usage,
            }
        else:
            out = self.network.pretrain_loss(batch)
            values = {"loss": out.loss, "accuracy": out.accuracy}
        for name, value in values.items():
            self.log(f"{self.stage}_{name}", value, on_step=False, on_epoch=True, prog_bar=name == "loss")
            self._sums[name] = self._sums.get(name, 0.0) + float(value.detach()) * len(batch)
        self._count += len(batch)
        return out.loss

    def on_train_epoch_end(self) -> None:
        for name, total in self._sums.items():
            self.history.add(f"{self.stage}_{name}", total / max(self._count, 1))
        self.history.add(f"{self.stage}_epoch_seconds", time.perf_counter() - self._epoch_start)
        self._sums, self._count = {}, 0

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW([p for p in self._part().parameters()], lr=self.lr)


def run_stage(
    network: VQTransformerNetwork,
    stage: Stage,
    windows: Dataset,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    trainer_kwargs: dict[str, Any],
    history: StageHistory,
    seed: int,
) -> None:
    """Train one stage for ``epochs`` epochs over ``windows`` (univariate ``[L + shift + H]`` tensors).

    Afterwards every parameter is trainable again; the fine-tune decides what it freezes.
    """
    if epochs <= 0:
        return
    options = {k: v for k, v in trainer_kwargs.items() if k in _SHARED_TRAINER_OPTIONS}
    options.setdefault("enable_progress_bar", False)
    options.setdefault("enable_model_summary", False)
    options.setdefault("logger", False)
    trainer = pl.Trainer(max_epochs=epochs, enable_checkpointing=False, **options)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(windows, batch_size=batch_size, shuffle=True, generator=generator, drop_last=False)
    was_training = network.training
    logger.info("VQTransformerModel: %s stage, %d epochs over %d windows.", stage, epochs, len(windows))
    try:
        trainer.fit(_StageModule(network, stage, lr, history), train_dataloaders=loader)
    finally:
        network.tokenizer.quantizer.updating = False
        for p in network.parameters():
            p.requires_grad_(True)
        network.train(was_training)
    network.stages_done[STAGES.index(stage)] = True


def concat_windows(datasets: Iterable[Dataset]) -> Dataset:
    """One dataset of the windows of several."""
    return torch.utils.data.ConcatDataset(list(datasets))
