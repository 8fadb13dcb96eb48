"""What pretraining optimises: both CLIP towers, aligned and taught temporal structure (pure torch).

Each sample is a univariate window ``[L]`` (any ``L`` the text tower's positions allow), instance-normalised as in
forecasting. Two losses:

- **contrastive**: the symmetric InfoNCE between a window's chart (vision tower, trainable here, + projection) and
  its numeric summary token (text tower); the other windows of the batch, from other series and other places of
  the same series, are the negatives;
- **temporal** (``objective``), on the numeric tower's patch states through a linear head back to patch values:
  ``"next-patch"``: the state of patch ``t`` predicts patch ``t + 1`` (CLIP's text tower is causal, so this is
  its natural task); ``"masked"``: a share of the patch tokens is replaced by a learnt mask token and the state at
  each masked position reconstructs its patch (it sees the patches before it); ``"contrastive-only"``: none.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from darts_timesclip.backbones.loading import build_text_tower, build_vision_tower
from darts_timesclip.network.heads import ContrastiveAlignment
from darts_timesclip.network.normalization import instance_normalize
from darts_timesclip.network.patching import make_patches
from darts_timesclip.network.towers import NumericTower, VisionTower
from darts_timesclip.pretraining.options import DEFAULT_OBJECTIVE, OBJECTIVES


@dataclass
class PretrainingLosses:
    """The losses of one pretraining step (``temporal`` is ``None`` for ``"contrastive-only"``)."""

    total: torch.Tensor
    contrastive: torch.Tensor
    temporal: torch.Tensor | None


class TimesCLIPPretrainer(nn.Module):
    """Both CLIP towers with the heads pretraining needs.

    Parameters
    ----------
    vision_config, text_config
        ``CLIPVisionConfig`` / ``CLIPTextConfig`` dictionaries.
    patch_length, patch_stride
        Patching of the numeric view (use the values you will fine-tune with).
    max_context
        Longest window; checked against the text tower's positions.
    objective
        One of :data:`OBJECTIVES`.
    contrastive_weight
        Weight of the contrastive loss (the temporal loss has weight 1).
    mask_ratio
        Share of masked patches (``"masked"``).
    """

    def __init__(
        self,
        vision_config: dict,
        text_config: dict,
        patch_length: int = 16,
        patch_stride: int = 8,
        max_context: int = 336,
        objective: str = DEFAULT_OBJECTIVE,
        contrastive_weight: float = 1.0,
        mask_ratio: float = 0.3,
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"`objective` must be one of {OBJECTIVES}, got `{objective!r}`.")
        if not 0 < mask_ratio < 1:
            raise ValueError(f"`mask_ratio` must be in (0, 1), got {mask_ratio}.")
        self.objective = objective
        self.contrastive_weight = contrastive_weight
        self.mask_ratio = mask_ratio
        self.numeric = NumericTower(build_text_tower(text_config), max_context, patch_length, patch_stride)
        width = int(text_config["hidden_size"])
        self.vision = VisionTower(build_vision_tower(vision_config), out_dim=width, freeze=False, cache_bytes=0)
        self.alignment = ContrastiveAlignment()
        self.patch_head = nn.Linear(width, patch_length) if objective != "contrastive-only" else None
        self.mask_token = nn.Parameter(torch.randn(width) * 0.02) if objective == "masked" else None

    def forward(self, windows: torch.Tensor, colour_index: torch.Tensor) -> PretrainingLosses:
        """``windows [B, L]`` and chart colours ``colour_index [B]`` -> :class:`PretrainingLosses`."""
        x, _ = instance_normalize(windows.unsqueeze(-1))
        rows = x[..., 0]  # [B, L]
        patches = make_patches(rows, self.numeric.patch_length, self.numeric.patch_stride)  # [B, N, P]
        tokens = self.numeric.tokenizer(patches)
        mask = None
        if self.mask_token is not None:
            mask = torch.rand(patches.shape[:2], device=patches.device) < self.mask_ratio
            mask[:, 0] |= ~mask.any(dim=1)  # at least one masked patch per window
            tokens = torch.where(mask.unsqueeze(-1), self.mask_token.to(tokens.dtype), tokens)
        hidden = self.numeric.encode_tokens(tokens)  # [B, N + 1, D]
        summary = hidden[:, -1]

        image = self.vision(x, colour_index.unsqueeze(1))[:, 0]  # the chart pipeline, one variate per window
        contrastive = self.alignment(image.unsqueeze(1), summary.unsqueeze(1))

        temporal = None
        if self.objective == "next-patch":
            temporal = F.mse_loss(self.patch_head(hidden[:, :-2]), patches[:, 1:])
        elif self.objective == "masked":
            states = hidden[:, :-1][mask]
            temporal = F.mse_loss(self.patch_head(states), patches[mask])
        total = self.contrastive_weight * contrastive + (temporal if temporal is not None else 0.0)
        return PretrainingLosses(total, contrastive, temporal)

    def load_towers(self, vision_model: nn.Module, text_model: nn.Module) -> None:
        """Start from existing tower weights (continued pretraining of a saved backbone)."""
        self.numeric.clip.load_state_dict(text_model.state_dict())
        self.vision.clip.load_state_dict(vision_model.state_dict())
