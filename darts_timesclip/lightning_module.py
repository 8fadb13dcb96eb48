"""Darts ``PLForecastingModule`` around :class:`~darts_timesclip.network.TimesCLIPNetwork`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from darts.models.forecasting.pl_forecasting_module import PLForecastingModule, io_processor
from darts.utils.data.torch_datasets.utils import (
    ModuleStage,
    PLModuleInput,
    PLModuleOutput,
    TorchTrainingBatch,
)

from darts_timesclip.network import TimesCLIPConfig, TimesCLIPNetwork

#: Lightning's scheduler settings that Darts reads out of ``lr_scheduler_kwargs`` (and their defaults).
_LR_SCHEDULER_CONFIG = {"monitor": "val_loss", "interval": "epoch", "frequency": 1, "strict": True, "name": None}


@dataclass(slots=True)
class TimesCLIPModuleOutput(PLModuleOutput):
    """Darts' forward output plus the alignment loss (``None`` at prediction or without alignment)."""

    alignment_loss: torch.Tensor | None = None


class _TimesCLIPModule(PLForecastingModule):
    """Lightning module: the network's forecast loss plus ``alignment_weight`` x its alignment loss.

    Logged per stage: ``{stage}_loss``, the forecast loss as Darts logs it for every model (what early stopping and
    checkpoint selection track), and the names of :mod:`darts_timesclip.network.losses`
    (``{stage}_alignment_loss``, ``{stage}_total_loss``: what is optimised, ...).

    Parameters
    ----------
    config
        :meth:`TimesCLIPConfig.to_dict` output with every size resolved (``_create_model`` infers them from the
        training sample). A plain dictionary, so that Lightning checkpoints rebuild the module without the original
        backbone files.
    **kwargs
        The arguments of ``PLForecastingModule``.
    """

    def __init__(self, config: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = TimesCLIPConfig.from_dict(config)
        self.network = TimesCLIPNetwork(self.config)

    @io_processor
    def forward(self, x_in: PLModuleInput) -> TimesCLIPModuleOutput:
        x = x_in.concatenate_past_features()  # [B, L, targets + past covariates]
        out = self.network(x, return_alignment=x_in.stage is not ModuleStage.PREDICT)
        return TimesCLIPModuleOutput(prediction=out.prediction, alignment_loss=out.alignment_loss)

    # Lightning's documented step hooks; Darts' `_compute_loss` / `_update_metrics` helpers do the Darts part
    # (likelihood or loss_fn, sample weights, torch metrics). `tests/test_darts_api.py` fails if they change.
    def training_step(self, train_batch: TorchTrainingBatch, batch_idx: int) -> torch.Tensor:
        return self._step(train_batch, ModuleStage.TRAIN, self.train_criterion, self.train_metrics)

    def validation_step(self, val_batch: TorchTrainingBatch, batch_idx: int) -> torch.Tensor:
        return self._step(val_batch, ModuleStage.VALIDATE, self.val_criterion, self.val_metrics)

    def _step(self, batch: TorchTrainingBatch, stage: ModuleStage, criterion: Any, metrics: Any) -> torch.Tensor:
        output = self(batch.to_module_input(stage=stage))
        forecast_loss = self._compute_loss(output, batch.future_target, criterion, batch.sample_weight)
        losses = self.network.losses(forecast_loss, output.alignment_loss, stage.value)
        log = dict(batch_size=batch.past_target.shape[0], sync_dist=True)
        self.log(f"{stage.value}_loss", forecast_loss, prog_bar=True, **log)  # as Darts' own step logs it
        for name, value in losses.logged.items():
            self.log(name, value, **log)
        self._update_metrics(output, batch.future_target, metrics)
        return losses.total

    def configure_optimizers(self) -> Any:
        """The optimizer over two parameter groups (the text tower at ``text_tower_lr``) and its schedule.

        ``optimizer_cls`` / ``optimizer_kwargs`` and ``lr_scheduler_cls`` / ``lr_scheduler_kwargs`` are honoured as
        Darts does; without a scheduler, every learning rate decays to 0 by a per-step cosine
        (``cosine_schedule``).
        """
        kwargs = dict(self.optimizer_kwargs)
        groups = self.network.parameter_groups(self.parameters())
        try:
            optimizer = self.optimizer_cls(groups, **kwargs)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"Could not build the optimizer `{self.optimizer_cls.__name__}` with `optimizer_kwargs={kwargs}`: {err}"
            ) from err

        if self.lr_scheduler_cls is not None:
            scheduler_kwargs = dict(self.lr_scheduler_kwargs)
            lightning_config = {k: scheduler_kwargs.pop(k, v) for k, v in _LR_SCHEDULER_CONFIG.items()}
            try:
                scheduler = self.lr_scheduler_cls(optimizer, **scheduler_kwargs)
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"Could not build the learning-rate scheduler `{self.lr_scheduler_cls.__name__}` with "
                    f"`lr_scheduler_kwargs={self.lr_scheduler_kwargs}`: {err}"
                ) from err
            return [optimizer], {"scheduler": scheduler, **lightning_config}
        if not self.config.cosine_schedule:
            return optimizer
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=0.0)
        return [optimizer], [{"scheduler": scheduler, "interval": "step", "frequency": 1}]
