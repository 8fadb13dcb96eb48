"""The VQ-VAE tokenizer: a convolutional encoder, an EMA-updated codebook with dead-code restarts, a decoder.

Each variate is tokenised on its own (channel independence): ``compression`` time steps become one code vector,
then one of ``codebook_size`` codes (van den Oord et al. 2017; EMA updates as in their appendix; restarts of
unused codes as in Jukebox, Dhariwal et al. 2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class QuantizerOutput:
    """What :class:`EMAVectorQuantizer` returns for ``[N, T, D]`` encoder outputs.

    Attributes
    ----------
    quantized
        ``[N, T, D]`` code vectors, with the straight-through gradient to the encoder outputs.
    codes
        ``[N, T]`` code indices.
    commitment_loss
        Mean squared distance from the encoder outputs to their codes (the codes held fixed).
    perplexity
        ``exp`` of the entropy of the codes used in this batch: the effective number of codes.
    usage
        Fraction of the codebook used at least once in this batch.
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    commitment_loss: torch.Tensor
    perplexity: torch.Tensor
    usage: torch.Tensor


class EMAVectorQuantizer(nn.Module):
    """Nearest-code quantisation with a codebook updated by exponential moving averages.

    The codebook is a buffer, not a parameter: no optimiser touches it. It changes only while :attr:`updating` is
    set and the module is in training mode (the tokenizer stage); on the first such batch it is initialised from
    random encoder outputs, and afterwards every code whose moving-average count falls below
    ``dead_code_threshold`` is restarted on a random encoder output of the batch, so the codebook cannot collapse
    to a handful of codes.
    """

    def __init__(self, codebook_size: int, code_dim: int, decay: float, dead_code_threshold: float) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.decay = decay
        self.dead_code_threshold = dead_code_threshold
        self.eps = 1e-5
        #: Whether forward passes in training mode update the codebook (set by the tokenizer stage only).
        self.updating = False
        self.register_buffer("codebook", torch.randn(codebook_size, code_dim) / math.sqrt(code_dim))
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("embed_sum", self.codebook.clone())
        self.register_buffer("initialised", torch.tensor(False))
        #: Codes restarted since construction (a diagnostic).
        self.register_buffer("restarts", torch.tensor(0, dtype=torch.long))

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code of each ``[M, D]`` row."""
        distances = (
            flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t() + self.codebook.pow(2).sum(1)[None, :]
        )
        return distances.argmin(dim=1)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        flat = z.reshape(-1, z.shape[-1])
        update = self.updating and self.training
        if update and not bool(self.initialised):
            self._initialise(flat.detach())
        codes = self.nearest(flat.detach())
        counts = torch.bincount(codes, minlength=self.codebook_size).to(flat.dtype)
        if update:
            self._update(flat.detach(), codes, counts)
        quantized = F.embedding(codes, self.codebook).view_as(z)
        commitment = F.mse_loss(z, quantized.detach())
        probs = counts / counts.sum().clamp_min(1.0)
        perplexity = torch.exp(-(probs * torch.log(probs.clamp_min(1e-10))).sum())
        return QuantizerOutput(
            quantized=z + (quantized - z).detach(),
            codes=codes.view(z.shape[:-1]),
            commitment_loss=commitment,
            perplexity=perplexity,
            usage=(counts > 0).to(flat.dtype).mean(),
        )

    def lookup(self, weights: torch.Tensor) -> torch.Tensor:
        """Code vectors weighted by ``[..., K]`` weights (e.g. a softmax over codes): ``[..., D]``."""
        return weights @ self.codebook

    @torch.no_grad()
    def _random_rows(self, flat: torch.Tensor, n: int) -> torch.Tensor:
        index = torch.randint(0, flat.shape[0], (n,), device=flat.device)
        return flat[index]

    @torch.no_grad()
    def _initialise(self, flat: torch.Tensor) -> None:
        rows = self._random_rows(flat, self.codebook_size)
        self.codebook.copy_(rows)
        self.embed_sum.copy_(rows)
        self.cluster_size.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> None:
        sums = torch.zeros_like(self.embed_sum).index_add_(0, codes, flat)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.codebook_size * self.eps) * total  # Laplace
        self.codebook.copy_(self.embed_sum / smoothed[:, None])
        dead = self.cluster_size < self.dead_code_threshold
        n_dead = int(dead.sum())
        if n_dead:
            rows = self._random_rows(flat, n_dead)
            self.codebook[dead] = rows
            self.embed_sum[dead] = rows
            self.cluster_size[dead] = 1.0
            self.restarts.add_(n_dead)


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv1d(channels, channels, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class VQVAE(nn.Module):
    """Convolutional VQ-VAE over univariate sequences whose length is a multiple of ``compression``.

    Parameters
    ----------
    codebook_size, code_dim, compression, hidden, ema_decay, dead_code_threshold
        See :class:`~darts_timesclip.vq.VQTransformerConfig`.
    """

    def __init__(
        self,
        codebook_size: int,
        code_dim: int,
        compression: int,
        hidden: int,
        ema_decay: float,
        dead_code_threshold: float,
    ) -> None:
        super().__init__()
        self.compression = compression
        n_halvings = int(math.log2(compression))
        down: list[nn.Module] = [nn.Conv1d(1, hidden, kernel_size=3, padding=1)]
        for _ in range(n_halvings):
            down += [nn.ReLU(), nn.Conv1d(hidden, hidden, kernel_size=4, stride=2, padding=1)]
        self.encoder = nn.Sequential(
            *down, _ResidualBlock(hidden), _ResidualBlock(hidden), nn.ReLU(), nn.Conv1d(hidden, code_dim, 1)
        )
        up: list[nn.Module] = [
            nn.Conv1d(code_dim, hidden, kernel_size=3, padding=1),
            _ResidualBlock(hidden),
            _ResidualBlock(hidden),
        ]
        for _ in range(n_halvings):
            up += [nn.ReLU(), nn.ConvTranspose1d(hidden, hidden, kernel_size=4, stride=2, padding=1)]
        self.decoder = nn.Sequential(*up, nn.ReLU(), nn.Conv1d(hidden, 1, kernel_size=3, padding=1))
        self.quantizer = EMAVectorQuantizer(codebook_size, code_dim, ema_decay, dead_code_threshold)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, T * compression]`` sequences -> ``[N, T, code_dim]`` continuous code vectors."""
        return self.encoder(x.unsqueeze(1)).transpose(1, 2)

    def decode(self, vectors: torch.Tensor) -> torch.Tensor:
        """``[N, T, code_dim]`` code vectors -> ``[N, T * compression]`` sequences."""
        return self.decoder(vectors.transpose(1, 2)).squeeze(1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput]:
        """Reconstruction of ``[N, T * compression]`` sequences through the codebook, and the quantisation."""
        quantised = self.quantizer(self.encode(x))
        return self.decode(quantised.quantized), quantised
