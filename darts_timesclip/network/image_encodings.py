"""How a window becomes an image: the line chart (the paper's), Gramian angular fields, a periodic grid.

Every encoding is batched torch on any device (no Python loop over images) and returns ``[N, 3, S, S]`` values in
``[0, 1]`` for rows ``[N, L]`` that are min-max scaled to ``[0, 1]``:

- ``"line"``: the line chart in the variate's colour (``chart_rendering.render_line_charts``);
- ``"gasf"`` / ``"gadf"``: Gramian angular summation / difference fields (Wang & Oates, 2015): with
  ``x`` rescaled to ``[-1, 1]`` and ``phi = arccos(x)``, ``cos(phi_i + phi_j)`` and ``sin(phi_i - phi_j)``, an
  ``L x L`` field in ``[-1, 1]`` mapped to grey levels and resized to ``S x S``;
- ``"periodic"``: VisionTS' grid (Chen et al., 2024): the window cut into segments of one ``period`` (the oldest
  segment padded at its start with its first value), segments side by side as columns, grey levels, resized.

The chart pipeline, used by the vision tower, the explainer and pretraining, is here once:
:func:`window_images` = instance normalisation (as the network does before both towers) -> :func:`chart_rows`
(one min-max scaled row per variate, and its colour) -> :func:`row_images` (colours and the encoding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from darts_timesclip.network.chart_rendering import colours_of, minmax_scale, render_line_charts
from darts_timesclip.network.normalization import instance_normalize
from darts_timesclip.network.patching import variates_as_rows

IMAGE_ENCODINGS = ("line", "gasf", "gadf", "periodic")


def gramian_angular_field(rows: torch.Tensor, method: str = "summation") -> torch.Tensor:
    """``[N, L]`` rows in ``[0, 1]`` -> ``[N, L, L]`` Gramian angular field in ``[-1, 1]``.

    ``method="summation"``: ``cos(phi_i + phi_j)``; ``"difference"``: ``sin(phi_i - phi_j)``, with ``i`` the row and
    ``j`` the column (pyts' convention).
    """
    x = (2 * rows - 1).clamp(-1, 1)
    s = (1 - x * x).clamp_min(0).sqrt()  # sin(phi) for phi = arccos(x) in [0, pi]
    if method == "summation":
        return x.unsqueeze(-1) * x.unsqueeze(-2) - s.unsqueeze(-1) * s.unsqueeze(-2)
    if method == "difference":
        return s.unsqueeze(-1) * x.unsqueeze(-2) - x.unsqueeze(-1) * s.unsqueeze(-2)
    raise ValueError(f"`method` must be 'summation' or 'difference', got `{method!r}`.")


def periodic_grid(rows: torch.Tensor, period: int) -> torch.Tensor:
    """``[N, L]`` rows -> ``[N, period, ceil(L / period)]``: column ``k`` is the ``k``-th period segment."""
    n_rows, length = rows.shape
    n_segments = -(-length // period)
    pad = n_segments * period - length
    if pad:
        rows = torch.cat([rows[:, :1].expand(n_rows, pad), rows], dim=1)
    return rows.view(n_rows, n_segments, period).transpose(1, 2)


def _grey(field: torch.Tensor, image_size: int) -> torch.Tensor:
    """``[N, H, W]`` values in ``[0, 1]`` -> ``[N, 3, S, S]`` grey images (bilinear resize)."""
    image = F.interpolate(field.unsqueeze(1), size=(image_size, image_size), mode="bilinear", align_corners=False)
    return image.clamp(0, 1).expand(-1, 3, -1, -1)


def encode_images(
    rows: torch.Tensor,
    colours: torch.Tensor,
    image_size: int,
    encoding: str = "line",
    period: int | None = None,
    line_width: float | None = None,
) -> torch.Tensor:
    """Images ``[N, 3, S, S]`` in ``[0, 1]`` of min-max scaled rows ``[N, L]`` (``colours [N, 3]``: line charts).

    Raises
    ------
    ValueError
        For an unknown ``encoding``, or ``"periodic"`` without a ``period`` of at least 1.
    """
    if encoding == "line":
        return render_line_charts(rows, colours, image_size, line_width)
    if encoding in ("gasf", "gadf"):
        field = gramian_angular_field(rows, "summation" if encoding == "gasf" else "difference")
        return _grey((field + 1) / 2, image_size)
    if encoding == "periodic":
        if period is None or period < 1:
            raise ValueError(f"The periodic encoding needs a `period` of at least 1, got `{period!r}`.")
        return _grey(periodic_grid(rows, period), image_size)
    raise ValueError(f"`image_encoding` must be one of {IMAGE_ENCODINGS}, got `{encoding!r}`.")


def chart_rows(x: torch.Tensor, colour_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Instance-normalised windows -> the rows their charts are drawn from, and each row's colour.

    Parameters
    ----------
    x
        ``[B, L, V]`` windows, instance-normalised (:func:`~darts_timesclip.network.instance_normalize`).
    colour_index
        ``[B, V]`` colour of each variate of each window (:data:`~darts_timesclip.network.PALETTE`, cycled).
        Default: variate ``v`` in colour ``v``.

    Returns
    -------
    tuple
        Rows ``[B * V, L]`` min-max scaled to ``[0, 1]`` (sample-major, variate-minor) and their colour index
        ``[B * V]``.
    """
    batch, _, n_var = x.shape
    if colour_index is None:
        colour_index = torch.arange(n_var, device=x.device).repeat(batch)
    elif colour_index.shape != (batch, n_var):
        raise ValueError(f"`colour_index` must have shape [B, V] = {[batch, n_var]}, got {list(colour_index.shape)}.")
    return minmax_scale(variates_as_rows(x)), colour_index.reshape(-1)


def row_images(
    rows: torch.Tensor,
    colour_index: torch.Tensor,
    image_size: int,
    encoding: str = "line",
    period: int | None = None,
    line_width: float | None = None,
) -> torch.Tensor:
    """Images ``[N, 3, S, S]`` in ``[0, 1]`` of min-max scaled rows ``[N, L]`` drawn in colours ``colour_index [N]``
    (:func:`encode_images` with the palette's colours)."""
    return encode_images(rows, colours_of(colour_index, rows.dtype), image_size, encoding, period, line_width)


def window_images(
    x: torch.Tensor,
    image_size: int,
    encoding: str = "line",
    period: int | None = None,
    line_width: float | None = None,
    colour_index: torch.Tensor | None = None,
) -> torch.Tensor:
    """The chart pipeline: windows on their own scale -> the images a vision tower sees, before CLIP's pixel
    normalisation.

    Each variate of each window is instance-normalised, min-max scaled and drawn in its colour
    (:func:`chart_rows`, :func:`row_images`); :meth:`~darts_timesclip.network.VisionTower.images` calls this with
    the tower's settings.

    Parameters
    ----------
    x
        ``[B, L, V]`` windows, each variate on its own scale.
    image_size
        Side ``S`` of the images in pixels.
    encoding, period, line_width
        See :func:`encode_images`.
    colour_index
        ``[B, V]`` colours; default: variate ``v`` in colour ``v``.

    Returns
    -------
    torch.Tensor
        ``[B, V, 3, S, S]`` images in ``[0, 1]``.
    """
    batch, _, n_var = x.shape
    rows, colours = chart_rows(instance_normalize(x)[0], colour_index)
    images = row_images(rows, colours, image_size, encoding, period, line_width)
    return images.view(batch, n_var, *images.shape[1:])


def period_from_freq(freq: object) -> int | None:
    """The natural period, in steps, of a pandas frequency: steps per day below a day; a week of days (business
    days); a year of weeks, months or quarters. ``None`` where there is none (yearly, integer-indexed series)."""
    import pandas as pd

    if freq is None or isinstance(freq, int):
        return None
    offset = pd.tseries.frequencies.to_offset(freq)
    n = max(1, int(getattr(offset, "n", 1)))
    code = offset.rule_code.split("-")[0]
    per_cycle = {"D": 7, "B": 5, "W": 52, "SMS": 24, "SME": 24, "MS": 12, "ME": 12, "BMS": 12, "BME": 12}
    per_cycle.update({"QS": 4, "QE": 4, "BQS": 4, "BQE": 4})
    if code in per_cycle:
        steps = per_cycle[code]
    else:
        try:
            seconds = pd.Timedelta(offset).total_seconds() / n
        except (ValueError, TypeError):
            return None
        if not 0 < seconds < 86400:
            return None
        steps = round(86400 / seconds)
    return steps // n if steps % n == 0 and steps // n >= 2 else None
