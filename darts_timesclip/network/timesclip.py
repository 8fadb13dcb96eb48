"""The TimesCLIP network: both views, alignment, variate selection and generator, in pure torch.

Shared unchanged by the Darts model and the pytorch-forecasting adapter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from darts_timesclip.backbones.loading import build_text_tower, build_vision_tower
from darts_timesclip.network.heads import ContrastiveAlignment, ForecastGenerator, VariateSelection
from darts_timesclip.network.normalization import PARAMETER_KINDS, denormalize, instance_normalize
from darts_timesclip.network.towers import NumericTower, VisionTower


@dataclass
class TimesCLIPOutput:
    """Output of :class:`TimesCLIPNetwork`.

    Attributes
    ----------
    prediction
        ``[B, H, V_target, nr_params]`` forecasts on the scale of the input.
    alignment_loss
        Scalar contrastive loss between the two views, or ``None`` where alignment is off.
    image_embeddings
        ``[B, V, D]`` projected chart embeddings, or ``None`` without the vision view.
    text_embeddings
        ``[B, V, D]`` summary tokens of the numeric view.
    """

    prediction: torch.Tensor
    alignment_loss: torch.Tensor | None
    image_embeddings: torch.Tensor | None
    text_embeddings: torch.Tensor


class TimesCLIPNetwork(nn.Module):
    """TimesCLIP (Dong et al., 2025) for windows ``[B, L, V]`` whose first ``n_targets`` variates are forecast.

    Parameters
    ----------
    input_length
        Window length ``L``.
    horizon
        Forecast length ``H``.
    n_targets
        Number of leading variates to forecast; the remaining variates (covariates) only take part in the
        vision view, the alignment and the variate selection.
    vision_config, text_config
        ``CLIPVisionConfig`` / ``CLIPTextConfig`` dictionaries; the towers are built with random weights and
        pretrained weights are loaded afterwards with :meth:`load_backbone_weights`.
    patch_length, patch_stride
        Patching of the numeric view.
    parameter_kinds
        One entry of :data:`~darts_timesclip.network.normalization.PARAMETER_KINDS` per forecast parameter;
        ``("location",)`` for point forecasts.
    use_vision, use_alignment, use_variate_selection
        The paper's ablation switches. Alignment needs the vision view.
    freeze_vision
        Keep the CLIP vision weights fixed (paper: frozen).
    dropout
        Dropout of the variate selection and the generator.
    embedding_cache_bytes
        Memory bound of the frozen-vision embedding cache (``0``: no cache).
    vision_chunk_size
        Charts rendered and encoded per pass.
    temperature
        Initial temperature of the contrastive loss.
    """

    def __init__(
        self,
        input_length: int,
        horizon: int,
        n_targets: int,
        vision_config: dict[str, Any],
        text_config: dict[str, Any],
        patch_length: int = 16,
        patch_stride: int = 8,
        parameter_kinds: tuple[str, ...] = ("location",),
        use_vision: bool = True,
        use_alignment: bool = True,
        use_variate_selection: bool = True,
        freeze_vision: bool = True,
        dropout: float = 0.1,
        embedding_cache_bytes: int = 1 << 30,
        vision_chunk_size: int = 256,
        temperature: float = 0.07,
    ) -> None:
        super().__init__()
        if use_alignment and not use_vision:
            raise ValueError(
                "`use_alignment=True` needs the vision view; pass `use_vision=True` or `use_alignment=False`."
            )
        unknown = [k for k in parameter_kinds if k not in PARAMETER_KINDS]
        if unknown or not parameter_kinds:
            raise ValueError(
                f"`parameter_kinds` must be a non-empty tuple of {PARAMETER_KINDS}, got {parameter_kinds}."
            )
        self.n_targets = n_targets
        self.parameter_kinds = tuple(parameter_kinds)
        self.use_vision = use_vision
        self.use_alignment = use_alignment
        self.use_variate_selection = use_variate_selection

        self.numeric = NumericTower(build_text_tower(text_config), input_length, patch_length, patch_stride)
        width = int(text_config["hidden_size"])
        self.vision = (
            VisionTower(
                build_vision_tower(vision_config),
                out_dim=width,
                freeze=freeze_vision,
                cache_bytes=embedding_cache_bytes,
                chunk_size=vision_chunk_size,
            )
            if use_vision
            else None
        )
        self.alignment = ContrastiveAlignment(temperature) if use_alignment else None
        self.variate_selection = (
            VariateSelection(width, int(text_config["num_attention_heads"]), dropout) if use_variate_selection else None
        )
        self.generator = ForecastGenerator(
            self.numeric.n_patches + 1, width, horizon, len(self.parameter_kinds), dropout
        )

    def load_backbone_weights(self, vision_model: nn.Module | None, text_model: nn.Module) -> None:
        """Copy pretrained ``CLIPVisionModel`` / ``CLIPTextModel`` weights into the towers (strict)."""
        self.numeric.clip.load_state_dict(text_model.state_dict())
        if self.vision is not None and vision_model is not None:
            self.vision.clip.load_state_dict(vision_model.state_dict())

    def text_tower_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the pretrained CLIP text transformer (for their own learning rate)."""
        return [p for p in self.numeric.clip.parameters() if p.requires_grad]

    def parameter_groups(self, parameters: Iterable[nn.Parameter], text_tower_lr: float) -> list[dict[str, Any]]:
        """Optimizer parameter groups: the text tower at ``text_tower_lr``, everything else at the optimizer's rate.

        Parameters
        ----------
        parameters
            All parameters of the module that owns this network (frozen ones are left out).
        text_tower_lr
            Learning rate of the pretrained text transformer (paper: 1e-4, against 1e-3 for the new parts).
        """
        text = self.text_tower_parameters()
        text_ids = {id(p) for p in text}
        other = [p for p in parameters if p.requires_grad and id(p) not in text_ids]
        groups = [{"params": other}, {"params": text, "lr": text_tower_lr}]
        return [g for g in groups if g["params"]]

    def forward(self, x: torch.Tensor) -> TimesCLIPOutput:
        """``[B, L, V]`` windows (targets first) -> :class:`TimesCLIPOutput`."""
        if x.shape[-1] < self.n_targets:
            raise ValueError(f"Expected at least {self.n_targets} variates, got {x.shape[-1]}.")
        x_norm, stats = instance_normalize(x)
        patch_tokens, text = self.numeric(x_norm)
        image = self.vision(x_norm) if self.vision is not None else None

        alignment_loss = self.alignment(image, text) if self.alignment is not None else None

        if self.variate_selection is not None:
            memory = text if image is None else torch.cat([text, image], dim=1)
            selected = self.variate_selection(text, memory)
        else:
            selected = text if image is None else text + image

        nt = self.n_targets
        y = self.generator(patch_tokens[:, :nt], selected[:, :nt])
        prediction = denormalize(y, stats, self.parameter_kinds)
        return TimesCLIPOutput(prediction, alignment_loss, image, text)
