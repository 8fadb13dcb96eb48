"""Instance normalisation of input windows and de-normalisation of forecasts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: How each forecast parameter returns to the original scale:
#: ``"location"``: ``y * std + mean`` (point forecasts, quantiles, a Gaussian's mean);
#: ``"softplus_scale"``: a raw output whose softplus is a scale (a Gaussian's sigma), mapped so that
#: ``softplus(y') = softplus(y) * std``.
PARAMETER_KINDS = ("location", "softplus_scale")


@dataclass
class InstanceStats:
    """Per-window, per-variate statistics ``[B, 1, V]`` kept to de-normalise forecasts."""

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
        The statistics of the first ``V`` variates of the input (``[B, 1, >=V]``).
    parameter_kinds
        One of :data:`PARAMETER_KINDS` per parameter.
    """
    n_var = y.shape[2]
    mean = stats.mean[:, :, :n_var, None]
    std = stats.std[:, :, :n_var, None]
    if all(kind == "location" for kind in parameter_kinds):
        return y * std + mean
    out = []
    for i, kind in enumerate(parameter_kinds):
        param = y[..., i : i + 1]
        if kind == "location":
            out.append(param * std + mean)
        else:  # softplus_scale
            out.append(_inverse_softplus(F.softplus(param) * std))
    return torch.cat(out, dim=-1)
