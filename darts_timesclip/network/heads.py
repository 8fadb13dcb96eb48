"""The parts of TimesCLIP above the towers: alignment loss, variate selection, forecast generator."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of ``G`` groups of ``B`` pairs, ``a, b [G, B, D]`` (L2-normalised): pair ``i`` of a group
    is the positive, the group's other ``B - 1`` the negatives."""
    logits = scale * a @ b.transpose(1, 2)  # [G, B, B]
    groups, batch, _ = logits.shape
    labels = torch.arange(batch, device=logits.device).expand(groups, batch).reshape(-1)
    loss_a2b = F.cross_entropy(logits.reshape(-1, batch), labels)
    loss_b2a = F.cross_entropy(logits.transpose(1, 2).reshape(-1, batch), labels)
    return (loss_a2b + loss_b2a) / 2


class ContrastiveAlignment(nn.Module):
    """Symmetric InfoNCE between image and text embeddings (CLIP's loss), at one of three levels.

    - ``"variate"`` (the paper's): for each variate, the ``B`` windows of the batch form ``B`` positive pairs (a
      window's chart and its numbers); every other window's view of the same variate is a negative;
    - ``"sample"``: each window's variates are pooled (mean of the normalised embeddings), one ``[B, B]`` problem;
    - ``"hybrid"``: ``mix`` x variate + (1 - ``mix``) x global, where global aligns a window's concatenated
      (normalised) variate embeddings.

    The temperature is learnt, starts at ``temperature`` and is bounded below by 1/100 as in CLIP.
    """

    def __init__(self, temperature: float = 0.07, level: str = "variate", mix: float = 0.5) -> None:
        super().__init__()
        if level not in ("variate", "sample", "hybrid"):
            raise ValueError(f"`level` must be 'variate', 'sample' or 'hybrid', got `{level!r}`.")
        self.level = level
        self.mix = mix
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``image, text [B, V, D]`` -> scalar loss (0 for a batch of one window)."""
        image, text = F.normalize(image, dim=-1), F.normalize(text, dim=-1)
        scale = self.logit_scale.clamp(max=math.log(100.0)).exp()
        if self.level == "sample":
            pooled = [F.normalize(view.mean(dim=1), dim=-1).unsqueeze(0) for view in (image, text)]
            return _info_nce(*pooled, scale)
        per_variate = _info_nce(image.transpose(0, 1), text.transpose(0, 1), scale)
        if self.level == "variate":
            return per_variate
        joined = [F.normalize(view.flatten(start_dim=1), dim=-1).unsqueeze(0) for view in (image, text)]
        return self.mix * per_variate + (1 - self.mix) * _info_nce(*joined, scale)


class UncertaintyWeighting(nn.Module):
    """Learnt weights of the forecast and alignment losses (homoscedastic uncertainty, Kendall et al., 2018).

    ``total = exp(-s_f) * forecast + exp(-s_a) * alignment + s_f + s_a``: at its optimum each weight is the inverse
    of its loss, so neither loss can be switched off by driving its weight to zero (a zero weight would cost an
    unbounded ``s``). To keep that so in finite training, the alignment's weight relative to the forecast's,
    ``exp(s_f - s_a)``, is held at ``min_relative_weight`` or more.
    """

    def __init__(self, min_relative_weight: float = 0.01) -> None:
        super().__init__()
        self.log_variances = nn.Parameter(torch.zeros(2))  # s_f, s_a
        self.max_gap = math.log(1.0 / min_relative_weight)

    def forward(self, forecast: torch.Tensor, alignment: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ``(total, relative alignment weight exp(s_f - s_a))``."""
        s_f = self.log_variances[0]
        s_a = torch.minimum(self.log_variances[1], s_f + self.max_gap)
        total = torch.exp(-s_f) * forecast + torch.exp(-s_a) * alignment + s_f + s_a
        return total, torch.exp(s_f - s_a).detach()


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

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``query [B, V, D]`` over ``memory [B, M, D]`` -> ``[B, V, D]`` (and, when asked, the attention weights
        ``[B, heads, V, M]``, computed explicitly instead of by the fused kernel)."""
        q = self._heads(self.query(query))
        k, v = (self._heads(t) for t in self.key_value(memory).chunk(2, dim=-1))
        weights = None
        if return_attention:
            weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
            attended = self.dropout(weights) @ v
        else:
            p = self.dropout.p if self.training else 0.0
            attended = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        attended = attended.transpose(1, 2).reshape(query.shape)
        h = self.norm_attention(query + self.dropout(self.out(attended)))
        out = self.norm_feed_forward(h + self.dropout(self.feed_forward(h)))
        return (out, weights) if return_attention else out


class ForecastGenerator(nn.Module):
    """Per variate, ``[patch tokens, selected token]`` -> flatten -> linear -> ``H x nr_params`` (shared weights).

    Without the numeric view (vision-only) there are no patch tokens: the selected token alone feeds the linear. With
    ``normalization="adaptive"`` the statistics token follows the selected one (``n_tokens`` counts it).
    """

    def __init__(self, n_tokens: int, dim: int, horizon: int, nr_params: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.horizon = horizon
        self.nr_params = nr_params
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(n_tokens * dim, horizon * nr_params)

    def forward(
        self, patch_tokens: torch.Tensor | None, selected: torch.Tensor, extra: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``patch_tokens [B, V, N, D]`` (or ``None``), ``selected [B, V, D]``, ``extra [B, V, D]`` (or ``None``) ->
        ``[B, H, V, nr_params]``."""
        batch, n_var = selected.shape[:2]
        tokens = selected.unsqueeze(2)
        if patch_tokens is not None:
            tokens = torch.cat([patch_tokens, tokens], dim=2)
        if extra is not None:
            tokens = torch.cat([tokens, extra.unsqueeze(2)], dim=2)
        tokens = tokens.flatten(start_dim=2)
        out = self.linear(self.dropout(tokens)).view(batch, n_var, self.horizon, self.nr_params)
        return out.transpose(1, 2)
