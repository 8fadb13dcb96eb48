"""The parts of TimesCLIP above the towers: alignment loss, variate selection, forecast generator."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ContrastiveAlignment(nn.Module):
    """Symmetric InfoNCE between image and text embeddings, per variate (CLIP's loss).

    For each variate, the ``B`` windows of the batch form ``B`` positive pairs (a window's chart and its
    numbers); every other window's view of the same variate is a negative. The temperature is learnt, starts at
    ``temperature`` and is bounded below by 1/100 as in CLIP.
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``image, text [B, V, D]`` -> scalar loss (0 for a batch of one window)."""
        image = F.normalize(image, dim=-1).transpose(0, 1)  # [V, B, D]
        text = F.normalize(text, dim=-1).transpose(0, 1)
        scale = self.logit_scale.clamp(max=math.log(100.0)).exp()
        logits = scale * image @ text.transpose(1, 2)  # [V, B, B]
        n_var, batch, _ = logits.shape
        labels = torch.arange(batch, device=logits.device).expand(n_var, batch)
        loss_i2t = F.cross_entropy(logits.reshape(-1, batch), labels.reshape(-1))
        loss_t2i = F.cross_entropy(logits.transpose(1, 2).reshape(-1, batch), labels.reshape(-1))
        return (loss_i2t + loss_t2i) / 2


class VariateSelection(nn.Module):
    """Each variate's summary token attends over the tokens of all variates (post-norm transformer block).

    Attention runs through ``scaled_dot_product_attention`` (memory-efficient kernels), so the number of
    variates is bounded by memory only, not by the text tower's positions.
    """

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"Width {dim} is not divisible by {n_heads} attention heads.")
        self.n_heads = n_heads
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.norm_attention = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim)
        )
        self.norm_feed_forward = nn.LayerNorm(dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        return x.view(batch, length, self.n_heads, dim // self.n_heads).transpose(1, 2)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """``query [B, V, D]`` over ``memory [B, M, D]`` -> ``[B, V, D]``."""
        q = self._heads(self.query(query))
        k, v = (self._heads(t) for t in self.key_value(memory).chunk(2, dim=-1))
        p = self.dropout.p if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        attended = attended.transpose(1, 2).reshape(query.shape)
        h = self.norm_attention(query + self.dropout(self.out(attended)))
        return self.norm_feed_forward(h + self.dropout(self.feed_forward(h)))


class ForecastGenerator(nn.Module):
    """Per variate, ``[patch tokens, selected token]`` -> flatten -> linear -> ``H x nr_params`` (shared weights)."""

    def __init__(self, n_tokens: int, dim: int, horizon: int, nr_params: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.horizon = horizon
        self.nr_params = nr_params
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(n_tokens * dim, horizon * nr_params)

    def forward(self, patch_tokens: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
        """``patch_tokens [B, V, N, D]``, ``selected [B, V, D]`` -> ``[B, H, V, nr_params]``."""
        batch, n_var = selected.shape[:2]
        tokens = torch.cat([patch_tokens, selected.unsqueeze(2)], dim=2).flatten(start_dim=2)
        out = self.linear(self.dropout(tokens)).view(batch, n_var, self.horizon, self.nr_params)
        return out.transpose(1, 2)
