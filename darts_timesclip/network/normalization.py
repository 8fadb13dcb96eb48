"""Normalisation of input windows and de-normalisation of forecasts.

Two normalisations (``TimesCLIPConfig.normalization``):

- ``"instance"`` (the paper's): every variate of every window is normalised by its own mean and standard deviation
  and the forecast returned to scale with them. The network never sees them, so the location and spread of every
  forecast are tied to one window's noisy statistics;
- ``"adaptive"``: the towers still see instance-normalised windows, but the forecast returns to scale through a
  learnt blend of the window's statistics and reference statistics of the training data (running averages, kept
  like batch normalisation's), per target variate, and the window's statistics relative to the reference reach the
  generator as one more token (RevIN, Kim et al. 2022, returns what normalisation removed; the non-stationary
  transformer, Liu et al. 2022, feeds it back to the network). A stationary series then forecasts around its
  long-run level and spread, a non-stationary one around its window's, as training decides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: How each forecast parameter returns to the original scale, with the de-normalisation location ``m`` and spread
#: ``s > 0`` of the window (its own statistics, or the adaptive blend), and its level ``l = sqrt(m^2 + (s / 1000)^2)``,
#: a positive scale for positive data (about ``|m|``). ``softplus(y)`` is what Darts' likelihoods apply to the raw
#: output of a positive parameter.
#:
#: - ``"location"``: ``y * s + m`` (point forecasts, quantiles, a location parameter);
#: - ``"softplus_scale"``: a spread, ``softplus(y') = softplus(y) * s`` (a Gaussian's sigma);
#: - ``"softplus_level"``: a positive parameter that scales with positive data, ``softplus(y') = softplus(y) * l``
#:   (a Poisson rate, a negative binomial's mean);
#: - ``"softplus_inverse_level"``: a rate, ``softplus(y') = softplus(y) / l`` (a gamma's rate);
#: - ``"log_level_shift"``: a log-scale location, ``y' = y + log(l)`` (a log-normal's mu);
#: - ``"invariant"``: a parameter that does not change with the data's scale, ``y' = y`` (shape parameters, a
#:   negative binomial's dispersion, a beta's alpha and beta).
PARAMETER_KINDS = (
    "location",
    "softplus_scale",
    "softplus_level",
    "softplus_inverse_level",
    "log_level_shift",
    "invariant",
)

#: The kinds whose mapping holds under any affine normalisation ``(x - m) / s``; the others map under a positive
#: rescaling only, or not at all, and need the window's statistics in the network (``"adaptive"``).
AFFINE_KINDS = ("location", "softplus_scale")

#: The normalisations of ``TimesCLIPConfig.normalization``.
NORMALIZATIONS = ("instance", "adaptive")


@dataclass
class InstanceStats:
    """Per-window, per-variate statistics ``[B, 1, V]``: the location and scale that de-normalise forecasts."""

    mean: torch.Tensor
    std: torch.Tensor


def instance_normalize(x: torch.Tensor) -> tuple[torch.Tensor, InstanceStats]:
    """Normalise each variate of each window to zero mean and unit standard deviation.

    Robust where plain ``(x - mean) / sqrt(var + eps)`` is not: the spread is computed on values divided by
    their largest deviation first (no overflow for series of scale 1e20 in float32), and a constant variate
    gets ``std = 1`` (its forecast is then its level plus the network's output).

    Parameters
    ----------
    x
        ``[B, L, V]`` windows.

    Returns
    -------
    tuple
        The normalised ``[B, L, V]`` windows and their :class:`InstanceStats`.
    """
    mean = x.mean(dim=1, keepdim=True)
    centred = x - mean
    largest = centred.abs().amax(dim=1, keepdim=True)
    tiny = torch.finfo(x.dtype).eps * (1.0 + mean.abs())
    flat = largest <= tiny
    largest = torch.where(flat, torch.ones_like(largest), largest)
    std = largest * (centred / largest).pow(2).mean(dim=1, keepdim=True).sqrt()
    std = torch.where(flat | (std <= tiny), torch.ones_like(std), std)
    return centred / std, InstanceStats(mean=mean, std=std)


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    y = y.clamp_min(torch.finfo(y.dtype).tiny)
    return y + torch.log(-torch.expm1(-y))


def denormalize(y: torch.Tensor, stats: InstanceStats, parameter_kinds: tuple[str, ...]) -> torch.Tensor:
    """Return forecasts to the scale of the input windows.

    Parameters
    ----------
    y
        ``[B, H, V, P]`` forecasts in normalised space, ``P = len(parameter_kinds)``.
    stats
        The de-normalisation location and scale of the first ``V`` variates of the input (``[B, 1, >=V]``).
    parameter_kinds
        One of :data:`PARAMETER_KINDS` per parameter.
    """
    n_var = y.shape[2]
    mean = stats.mean[:, :, :n_var, None]
    std = stats.std[:, :, :n_var, None]
    if all(kind == "location" for kind in parameter_kinds):
        return y * std + mean
    level = torch.hypot(mean, std * 1e-3)
    out = []
    for i, kind in enumerate(parameter_kinds):
        param = y[..., i : i + 1]
        if kind == "location":
            out.append(param * std + mean)
        elif kind == "softplus_scale":
            out.append(_inverse_softplus(F.softplus(param) * std))
        elif kind == "softplus_level":
            out.append(_inverse_softplus(F.softplus(param) * level))
        elif kind == "softplus_inverse_level":
            out.append(_inverse_softplus(F.softplus(param) / level))
        elif kind == "log_level_shift":
            out.append(param + torch.log(level))
        elif kind == "invariant":
            out.append(param)
        else:
            raise ValueError(f"Unknown parameter kind `{kind!r}`; expected one of {PARAMETER_KINDS}.")
    return torch.cat(out, dim=-1)


class AdaptiveNormalization(nn.Module):
    """The ``"adaptive"`` normalisation's statistics: reference statistics, learnt blends, statistics features.

    Per target variate ``v`` it keeps reference statistics of the training windows: ``reference_mean`` (running
    average of each batch's median window mean) and ``reference_log_scale`` (of its median log window standard
    deviation; medians, so that heavy tails do not move them), updated in training mode only, as batch normalisation
    keeps its running statistics (the first batch sets them, then an average over at least the last
    ``1 / momentum`` batches). Forecasts return to scale with

    ``location = a_v * window mean + (1 - a_v) * reference mean``,
    ``log scale = b_v * log window std + (1 - b_v) * reference log scale``,

    where ``a_v = sigmoid(gain * p_v)`` and ``b_v = sigmoid(gain * q_v)`` are learnt (start 0.5). The window's mean
    and log standard deviation relative to the reference, ``asinh((mean - reference mean) / reference scale)`` and
    ``log(std / reference scale)`` (held within +-half the log of the dtype's largest number, so that a constant or
    an enormous window still gives a finite token), are the features a linear layer embeds as the generator's
    statistics token. The
    generator's weights are shared by all variates; a learnt offset per target variate and forecast parameter,
    ``gain * o_vp``, added to its normalised output, lets every variate have its own level of noise (as RevIN's
    per-variate affine parameters do). The gain lets Adam-type optimisers move blends and offsets across their range
    in a few hundred steps, not thousands.

    Parameters
    ----------
    n_targets
        Number of forecast variates.
    n_params
        Forecast parameters per variate and step.
    width
        Width ``D`` of the statistics token.
    momentum
        Smallest weight of a new batch in the running reference statistics.
    gain
        Multiplier of the blend parameters.
    """

    def __init__(self, n_targets: int, n_params: int, width: int, momentum: float = 0.01, gain: float = 10.0) -> None:
        super().__init__()
        self.momentum = momentum
        self.gain = gain
        self.register_buffer("reference_mean", torch.zeros(n_targets))
        self.register_buffer("reference_log_scale", torch.zeros(n_targets))
        self.register_buffer("batches_tracked", torch.zeros((), dtype=torch.long))
        self.location_blend = nn.Parameter(torch.zeros(n_targets))
        self.scale_blend = nn.Parameter(torch.zeros(n_targets))
        self.output_offsets = nn.Parameter(torch.zeros(n_targets, n_params))
        self.statistics_token = nn.Linear(2, width)

    @property
    def blends(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The weights ``(a, b)`` ``[V_target]`` of the window's own location and scale (1: instance, 0: reference)."""
        return torch.sigmoid(self.gain * self.location_blend), torch.sigmoid(self.gain * self.scale_blend)

    def offset(self, y: torch.Tensor) -> torch.Tensor:
        """The generator's normalised output ``[B, H, V_target, P]`` plus every variate's learnt offsets."""
        return y + self.gain * self.output_offsets.to(y.dtype)

    @torch.no_grad()
    def update(self, stats: InstanceStats) -> None:
        """Fold a training batch's window statistics (``[B, 1, >= V_target]``) into the reference statistics."""
        n = self.reference_mean.shape[0]
        mean = stats.mean[:, 0, :n].float().median(dim=0).values
        log_scale = torch.log(stats.std[:, 0, :n].float()).median(dim=0).values
        weight = max(1.0 / (int(self.batches_tracked) + 1), self.momentum)
        self.reference_mean.lerp_(mean.to(self.reference_mean.dtype), weight)
        self.reference_log_scale.lerp_(log_scale.to(self.reference_log_scale.dtype), weight)
        self.batches_tracked += 1

    def forward(self, stats: InstanceStats) -> tuple[InstanceStats, torch.Tensor]:
        """Window statistics of the targets ``[B, 1, >= V_target]`` -> (de-normalisation statistics ``[B, 1,
        V_target]``, statistics tokens ``[B, V_target, D]``)."""
        n = self.reference_mean.shape[0]
        dtype = stats.mean.dtype
        mean, std = stats.mean[:, :, :n], stats.std[:, :, :n]
        ref_mean = self.reference_mean.to(dtype)
        ref_log_scale = self.reference_log_scale.to(dtype)
        log_std = torch.log(std)
        a, b = (blend.to(dtype) for blend in self.blends)
        location = a * mean + (1 - a) * ref_mean
        scale = torch.exp(b * log_std + (1 - b) * ref_log_scale)
        limit = math.log(torch.finfo(dtype).max) / 2
        features = torch.stack(
            [
                torch.asinh((mean - ref_mean) * torch.exp(-ref_log_scale)),
                (log_std - ref_log_scale).clamp(-limit, limit),
            ],
            dim=-1,
        )[:, 0]  # [B, V, 2]
        token = self.statistics_token(features.to(self.statistics_token.weight.dtype))
        return InstanceStats(mean=location, std=scale), token
