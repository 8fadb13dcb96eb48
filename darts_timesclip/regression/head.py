"""The regression head: each variate's pooled tokens of both views -> one vector per series -> the targets."""

from __future__ import annotations

import torch
from torch import nn

from darts_timesclip.network.timesclip import TimesCLIPEncoding


def variate_features(encoding: TimesCLIPEncoding) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-variate features of a series from the encoder's tokens.

    Returns
    -------
    tuple
        ``tokens [B, V, F]``: the numeric summary token, the mean of the patch tokens, the image token and the
        selected token, as far as the encoder has them; ``levels [B, V, 2]``: each variate's instance mean and
        log standard deviation, which instance normalisation hides from the tokens (a yield depends on the level
        of a vegetation index, not only on its shape).
    """
    patches = encoding.patch_tokens.mean(dim=2) if encoding.patch_tokens is not None else None
    tokens = [t for t in (encoding.text, patches, encoding.image, encoding.selected) if t is not None]
    stats = encoding.stats
    levels = torch.stack([stats.mean[:, 0], stats.std[:, 0].log()], dim=-1)
    return torch.cat(tokens, dim=-1), levels


class RegressionHead(nn.Module):
    """Fuse the variates' features into ``n_targets`` outputs.

    Per variate: LayerNorm of its tokens, joined with its standardised levels, then one linear map shared by the
    variates (``hidden_size`` wide) and GELU; the variates' vectors are concatenated in their fixed order (the
    variate count is fixed at fit), then dropout -> linear -> GELU -> dropout -> linear.

    Parameters
    ----------
    n_variates
        Variates per series ``V``.
    token_dim
        Width ``F`` of a variate's tokens.
    n_targets
        Outputs per series.
    hidden_size
        Width of the per-variate projection and of the hidden layer.
    dropout
        Dropout before each of the last two linear layers.
    """

    def __init__(self, n_variates: int, token_dim: int, n_targets: int, hidden_size: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(token_dim)
        self.variate = nn.Sequential(nn.Linear(token_dim + 2, hidden_size), nn.GELU())
        self.fuse = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(n_variates * hidden_size, hidden_size),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, n_targets),
        )

    def forward(self, tokens: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
        """``tokens [B, V, F]``, standardised ``levels [B, V, 2]`` -> ``[B, n_targets]``."""
        per_variate = self.variate(torch.cat([self.norm(tokens), levels], dim=-1))
        return self.fuse(per_variate.flatten(start_dim=1))
