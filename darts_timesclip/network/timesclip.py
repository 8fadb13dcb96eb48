"""The TimesCLIP network: both views, alignment, variate selection and generator, in pure torch.

Shared unchanged by the Darts model and the pytorch-forecasting adapter; built from one
:class:`~darts_timesclip.network.config.TimesCLIPConfig`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from darts_timesclip.backbones.loading import build_text_tower, build_vision_tower, load_pretrained_towers
from darts_timesclip.network.config import TimesCLIPConfig
from darts_timesclip.network.heads import (
    ContrastiveAlignment,
    ForecastGenerator,
    UncertaintyWeighting,
    VariateSelection,
)
from darts_timesclip.network.losses import TimesCLIPLosses, combine_losses
from darts_timesclip.network.normalization import (
    AdaptiveNormalization,
    InstanceStats,
    denormalize,
    instance_normalize,
)
from darts_timesclip.network.towers import NumericTower, VisionTower


@dataclass
class TimesCLIPEncoding:
    """Every variate's tokens of both views, from :meth:`TimesCLIPNetwork.encode`.

    Attributes
    ----------
    stats
        Instance-normalisation statistics of the input, ``mean`` and ``std`` ``[B, 1, V]``.
    patch_tokens
        ``[B, V, N, D]`` patch tokens of the numeric view, or ``None`` without it.
    text
        ``[B, V, D]`` summary tokens of the numeric view, or ``None`` without it.
    image
        ``[B, V, D]`` projected image embeddings, or ``None`` without the vision view.
    selected
        ``[B, V, D]`` tokens after variate selection (without the block: the summary, plus the image token where
        both views exist).
    attention
        ``[B, heads, V, M]`` variate-selection attention when asked for and the block is on; ``None`` otherwise.
    """

    stats: InstanceStats
    patch_tokens: torch.Tensor | None
    text: torch.Tensor | None
    image: torch.Tensor | None
    selected: torch.Tensor
    attention: torch.Tensor | None = None


@dataclass
class TimesCLIPOutput:
    """Output of :class:`TimesCLIPNetwork`.

    Attributes
    ----------
    prediction
        ``[B, H, V_target, nr_params]`` forecasts on the scale of the input.
    alignment_loss
        Scalar contrastive loss between the two views when the forward pass was asked for it
        (``return_alignment=True``) and alignment is on; ``None`` otherwise.
    image_embeddings
        ``[B, V, D]`` projected chart embeddings, or ``None`` without the vision view.
    text_embeddings
        ``[B, V, D]`` summary tokens of the numeric view, or ``None`` without it (vision-only).
    attention
        ``[B, heads, V, M]`` variate-selection attention of each variate over the memory tokens (the ``V`` numeric
        summaries, then the ``V`` image tokens, as far as the views exist) when asked (``return_attention=True``)
        and the block is on; ``None`` otherwise.
    """

    prediction: torch.Tensor
    alignment_loss: torch.Tensor | None
    image_embeddings: torch.Tensor | None
    text_embeddings: torch.Tensor | None
    attention: torch.Tensor | None = None


class TimesCLIPNetwork(nn.Module):
    """TimesCLIP (Dong et al., 2025) for windows ``[B, L, V]`` whose first ``config.n_targets`` variates are forecast.

    The remaining variates (covariates) take part in the vision view, the alignment and the variate selection.
    The towers are built with random weights from the config's tower configurations; pretrained weights are
    loaded by :meth:`load_pretrained_backbone` (the wrappers call it when a model is created, not when a
    checkpoint is restored).

    Parameters
    ----------
    config
        Every hyperparameter (:class:`~darts_timesclip.network.config.TimesCLIPConfig`).
    """

    def __init__(self, config: TimesCLIPConfig) -> None:
        super().__init__()
        if not isinstance(config, TimesCLIPConfig):
            raise TypeError(f"`config` must be a TimesCLIPConfig, got {type(config).__name__}.")
        self.config = config
        width = config.width
        self.numeric = (
            NumericTower(
                build_text_tower(config.text_config),
                config.input_chunk_length,
                config.patch_length,
                config.patch_stride,
            )
            if config.use_numeric
            else None
        )
        if config.use_vision and config.image_encoding == "periodic" and config.period is None:
            raise ValueError(
                "`image_encoding='periodic'` needs a `period` (in time steps) to build the network; the Darts model "
                "derives it from the training series' frequency."
            )
        self.vision = (
            VisionTower(
                build_vision_tower(config.vision_config),
                out_dim=width,
                freeze=config.freeze_vision,
                cache_bytes=config.embedding_cache_bytes,
                chunk_size=config.vision_chunk_size,
                encoding=config.image_encoding,
                period=config.period,
            )
            if config.use_vision
            else None
        )
        self.alignment = (
            ContrastiveAlignment(config.temperature, config.alignment, config.alignment_mix)
            if config.use_alignment
            else None
        )
        self.loss_weighting = (
            UncertaintyWeighting() if config.use_alignment and config.alignment_weight == "auto" else None
        )
        self.variate_selection = (
            VariateSelection(width, int(config.text_config["num_attention_heads"]), config.dropout)
            if config.use_variate_selection
            else None
        )
        # `normalization="adaptive"`: reference statistics, learnt blends and the generator's statistics token (built
        # only then, so that the paper's network stays parameter for parameter what it was)
        self.adaptive_normalization = None
        if config.normalization == "adaptive":
            self.adaptive_normalization = AdaptiveNormalization(config.n_targets, len(config.parameter_kinds), width)
        n_tokens = (config.n_patches if config.use_numeric else 0) + 1 + (self.adaptive_normalization is not None)
        self.generator = ForecastGenerator(
            n_tokens, width, config.output_chunk_length, len(config.parameter_kinds), config.dropout
        )
        if self.adaptive_normalization is not None:
            # every forecast starts at the blended location with a unit normalised spread: random initial outputs
            # (of the order of the window's spread) cost a likelihood hundreds of steps to unlearn
            nn.init.zeros_(self.generator.linear.weight)
            nn.init.zeros_(self.generator.linear.bias)

    @property
    def n_targets(self) -> int:
        return self.config.n_targets

    def load_pretrained_backbone(self) -> bool:
        """Load the pretrained CLIP towers named by ``config.backbone`` where ``config.pretrained``.

        Returns
        -------
        bool
            Whether weights were loaded.

        Raises
        ------
        BackboneNotAvailableError
            Where the weights can be found neither locally nor on the hub.
        """
        if not self.config.pretrained:
            return False
        vision, text = load_pretrained_towers(self.config.backbone)
        self.load_backbone_weights(vision, text)
        return True

    def load_backbone_weights(self, vision_model: nn.Module | None, text_model: nn.Module | None) -> None:
        """Copy ``CLIPVisionModel`` / ``CLIPTextModel`` weights into the towers this network has (strict)."""
        if self.numeric is not None and text_model is not None:
            self.numeric.clip.load_state_dict(text_model.state_dict())
        if self.vision is not None and vision_model is not None:
            self.vision.clip.load_state_dict(vision_model.state_dict())

    def text_tower_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the pretrained CLIP text transformer (for their own learning rate)."""
        if self.numeric is None:
            return []
        return [p for p in self.numeric.clip.parameters() if p.requires_grad]

    def losses(self, forecast_loss: torch.Tensor, alignment_loss: torch.Tensor | None, stage: str) -> TimesCLIPLosses:
        """The step's objective and logged values (:func:`~darts_timesclip.network.losses.combine_losses`), with
        this network's alignment weight (fixed, or learnt with ``alignment_weight="auto"``)."""
        weight = self.loss_weighting if self.loss_weighting is not None else self.config.alignment_weight
        return combine_losses(forecast_loss, alignment_loss, weight, stage)

    def parameter_groups(
        self, parameters: Iterable[nn.Parameter], base_lr: float | None = None
    ) -> list[dict[str, Any]]:
        """Optimizer parameter groups: the text tower at ``config.text_tower_lr``, everything else at ``base_lr``.

        Parameters
        ----------
        parameters
            All parameters of the module that owns this network (frozen ones are left out).
        base_lr
            Learning rate of the other parameters; ``None`` leaves it to the optimizer's own default.
        """
        text = self.text_tower_parameters()
        text_ids = {id(p) for p in text}
        other = [p for p in parameters if p.requires_grad and id(p) not in text_ids]
        groups = [{"params": other}, {"params": text, "lr": self.config.text_tower_lr}]
        if base_lr is not None:
            groups[0]["lr"] = base_lr
        return [g for g in groups if g["params"]]

    def encode(self, x: torch.Tensor, return_attention: bool = False) -> TimesCLIPEncoding:
        """``[B, L, V]`` series -> every variate's tokens of both views (what :meth:`forward` forecasts from).

        ``L`` need not be ``config.input_chunk_length``: charts are drawn at any length and the numeric tower takes
        up to ``config.max_input_length`` steps (its text tower's positions); shorter than ``config.patch_length``
        is refused. Series regressors (:class:`~darts_timesclip.regression.TimesCLIPRegressor`) and
        ``TimesCLIPModel.embed`` use this method directly.

        Parameters
        ----------
        x
            ``[B, L, V]`` values on their own scale (each variate of each window is instance-normalised here).
        return_attention
            Also return the variate-selection attention weights.
        """
        shortest, longest = self.config.min_input_length, self.config.max_input_length
        if x.ndim != 3 or x.shape[1] < shortest or (longest is not None and x.shape[1] > longest):
            raise ValueError(
                f"Expected series [B, L, V] with {shortest} <= L <= {longest} (the patch length and the text "
                f"tower's positions), got {list(x.shape)}."
            )
        x_norm, stats = instance_normalize(x)
        patch_tokens, text = self.numeric(x_norm) if self.numeric is not None else (None, None)
        image = self.vision(x_norm) if self.vision is not None else None

        views = [view for view in (text, image) if view is not None]
        attention = None
        if self.variate_selection is not None:
            # each variate's summary (its image token without the numeric view) queries every variate's tokens
            memory = views[0] if len(views) == 1 else torch.cat(views, dim=1)
            selected = self.variate_selection(views[0], memory, return_attention=return_attention)
            if return_attention:
                selected, attention = selected
        else:
            selected = views[0] if len(views) == 1 else text + image
        return TimesCLIPEncoding(stats, patch_tokens, text, image, selected, attention)

    def forward(
        self, x: torch.Tensor, return_alignment: bool = False, return_attention: bool = False
    ) -> TimesCLIPOutput:
        """``[B, L, V]`` windows (targets first) -> :class:`TimesCLIPOutput`.

        Parameters
        ----------
        x
            Windows ``[B, L, V]``, the ``n_targets`` forecast variates first.
        return_alignment
            Compute the contrastive alignment loss (training and validation steps); prediction leaves it off.
        return_attention
            Return the variate-selection attention weights (for :class:`~darts_timesclip.TimesCLIPExplainer`).
        """
        if x.ndim != 3 or x.shape[1] != self.config.input_chunk_length or x.shape[-1] < self.n_targets:
            raise ValueError(
                f"Expected windows [B, {self.config.input_chunk_length}, V >= {self.n_targets}], got {list(x.shape)}."
            )
        encoding = self.encode(x, return_attention=return_attention)
        alignment_loss = None
        if return_alignment and self.alignment is not None:
            alignment_loss = self.alignment(encoding.image, encoding.text)

        nt = self.n_targets
        patch_tokens = encoding.patch_tokens
        stats, extra_token = encoding.stats, None
        if self.adaptive_normalization is not None:
            if self.training:
                self.adaptive_normalization.update(stats)
            stats, extra_token = self.adaptive_normalization(stats)
        y = self.generator(
            patch_tokens[:, :nt] if patch_tokens is not None else None, encoding.selected[:, :nt], extra_token
        )
        if self.adaptive_normalization is not None:
            y = self.adaptive_normalization.offset(y)
        prediction = denormalize(y, stats, self.config.parameter_kinds)
        image, text, attention = encoding.image, encoding.text, encoding.attention
        return TimesCLIPOutput(prediction, alignment_loss, image, text, attention)
