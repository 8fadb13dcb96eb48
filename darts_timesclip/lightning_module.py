"""Darts ``PLForecastingModule`` around :class:`~darts_timesclip.network.TimesCLIPNetwork`."""

from __future__ import annotations

from typing import Any

import torch
from darts.models.forecasting.pl_forecasting_module import PLForecastingModule, io_processor
from darts.utils.data.torch_datasets.utils import PLModuleInput, PLModuleOutput

from darts_timesclip.network import TimesCLIPNetwork


class _TimesCLIPModule(PLForecastingModule):
    """Lightning module: the network's forecast loss plus ``alignment_weight`` x its alignment loss.

    Logged per stage: ``{stage}_forecast_loss``, ``{stage}_alignment_loss`` and ``{stage}_loss``. ``train_loss`` is
    the optimised total; ``val_loss`` is the forecast loss alone, the quantity that early stopping and
    checkpoint selection should track.

    All sizes arrive resolved (``_create_model`` infers them from the training sample); configurations are plain
    dictionaries so that Lightning checkpoints rebuild the module without the original backbone files.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        vision_config: dict[str, Any],
        text_config: dict[str, Any],
        patch_length: int,
        patch_stride: int,
        parameter_kinds: tuple[str, ...],
        use_vision: bool,
        use_alignment: bool,
        use_variate_selection: bool,
        alignment_weight: float,
        freeze_vision: bool,
        text_tower_lr: float,
        cosine_schedule: bool,
        dropout: float,
        embedding_cache_bytes: int,
        vision_chunk_size: int,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.alignment_weight = alignment_weight
        self.text_tower_lr = text_tower_lr
        self.cosine_schedule = cosine_schedule
        self.network = TimesCLIPNetwork(
            input_length=self.input_chunk_length,
            horizon=self.output_chunk_length,
            n_targets=output_dim,
            vision_config=vision_config,
            text_config=text_config,
            patch_length=patch_length,
            patch_stride=patch_stride,
            parameter_kinds=tuple(parameter_kinds),
            use_vision=use_vision,
            use_alignment=use_alignment,
            use_variate_selection=use_variate_selection,
            freeze_vision=freeze_vision,
            dropout=dropout,
            embedding_cache_bytes=embedding_cache_bytes,
            vision_chunk_size=vision_chunk_size,
        )
        self._alignment_loss: torch.Tensor | None = None

    @io_processor
    def forward(self, x_in: PLModuleInput) -> PLModuleOutput:
        x = x_in.concatenate_past_features()  # [B, L, targets + past covariates]
        out = self.network(x)
        self._alignment_loss = out.alignment_loss
        return PLModuleOutput(prediction=out.prediction)

    def _train_val_step(self, batch, stage, criterion, metrics) -> torch.Tensor:
        output = self(batch.to_module_input(stage=stage))
        forecast_loss = self._compute_loss(output, batch.future_target, criterion, batch.sample_weight)
        alignment_loss = self._alignment_loss
        self._alignment_loss = None
        batch_size = batch.past_target.shape[0]
        log = dict(batch_size=batch_size, sync_dist=True)
        self.log(f"{stage.value}_forecast_loss", forecast_loss, **log)
        total = forecast_loss
        if alignment_loss is not None:
            self.log(f"{stage.value}_alignment_loss", alignment_loss, **log)
            total = forecast_loss + self.alignment_weight * alignment_loss
        reported = total if stage.value == "train" else forecast_loss
        self.log(f"{stage.value}_loss", reported, prog_bar=True, **log)
        self._update_metrics(output, batch.future_target, metrics)
        return total

    def configure_optimizers(self):
        """AdamW (by default) with the text tower at ``text_tower_lr``; cosine decay per step by default."""
        kwargs = dict(self.optimizer_kwargs)
        groups = self.network.parameter_groups(self.parameters(), self.text_tower_lr)
        try:
            optimizer = self.optimizer_cls(groups, **kwargs)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"Could not build the optimizer `{self.optimizer_cls.__name__}` with `optimizer_kwargs={kwargs}`: {err}"
            ) from err

        if self.lr_scheduler_cls is not None:
            # Darts' own handling of `lr_scheduler_cls` / `lr_scheduler_kwargs`
            original = self.optimizer_cls, self.optimizer_kwargs
            try:
                self.optimizer_cls = lambda params, **_: optimizer
                return super().configure_optimizers()
            finally:
                self.optimizer_cls, self.optimizer_kwargs = original
        if not self.cosine_schedule:
            return optimizer
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=0.0)
        return [optimizer], [{"scheduler": scheduler, "interval": "step", "frequency": 1}]
