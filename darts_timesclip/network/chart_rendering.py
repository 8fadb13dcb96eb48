"""Line charts of time-series windows, drawn in batch by torch (and, for reference, by matplotlib).

TimesCLIP shows each variate of a window to the CLIP vision tower as a line chart: white background, one
colour per variate, an anti-aliased line of fixed width, the whole window spanning the image. The torch
rasteriser works on any device and draws ``[N, L]`` windows in one pass with no Python loop over images:

for every pixel column it finds the lowest and highest point the polyline reaches within half a line width of
the column (segment end points interpolated at the column's edges, vertices inside it), widens that span by half
a line width, and covers each pixel by the fraction of its height that the span overlaps. Horizontal runs thus
get exactly ``line_width`` pixels of ink, steep runs the full vertical extent of the stroke, and edges are
anti-aliased by partial coverage.
"""

from __future__ import annotations

import torch

#: Matplotlib's ``tab10`` colours (RGB in [0, 1]); variate ``v`` is drawn in ``PALETTE[v % 10]``.
PALETTE: tuple[tuple[float, float, float], ...] = (
    (0.122, 0.467, 0.706),
    (1.000, 0.498, 0.055),
    (0.173, 0.627, 0.173),
    (0.839, 0.153, 0.157),
    (0.580, 0.404, 0.741),
    (0.549, 0.337, 0.294),
    (0.890, 0.467, 0.761),
    (0.498, 0.498, 0.498),
    (0.737, 0.741, 0.133),
    (0.090, 0.745, 0.812),
)

#: Fraction of the image left empty on each side, so that extremes are not cut by the border.
MARGIN = 0.05


def variate_colours(n_variates: int, device: torch.device | None = None, dtype=torch.float32) -> torch.Tensor:
    """``[V, 3]`` RGB colours of variates ``0..V-1`` (cycling through :data:`PALETTE`)."""
    idx = torch.arange(n_variates) % len(PALETTE)
    return torch.tensor(PALETTE, dtype=dtype, device=device)[idx.to(device)]


def colours_of(colour_index: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """``[N, 3]`` RGB colours of the variates numbered by ``colour_index`` (:func:`variate_colours`' cycle), with
    no data-dependent shape, so that the rendering traces into exported graphs (ONNX, ``torch.export``)."""
    palette = torch.tensor(PALETTE, dtype=dtype, device=colour_index.device)
    return palette[colour_index % len(PALETTE)]


def default_line_width(image_size: int) -> float:
    """Line width in pixels: about 1.5 % of the image, at least 1 pixel (3.4 px at 224)."""
    return max(1.0, image_size / 64.0)


def minmax_scale(x: torch.Tensor) -> torch.Tensor:
    """Scale each row of ``[N, L]`` to [0, 1]; a constant row becomes 0.5 (a flat line mid-chart)."""
    lo = x.amin(dim=-1, keepdim=True)
    span = x.amax(dim=-1, keepdim=True) - lo
    flat = span <= torch.finfo(x.dtype).eps * (1.0 + lo.abs())
    scaled = (x - lo) / torch.where(flat, torch.ones_like(span), span)
    return torch.where(flat, torch.full_like(x, 0.5), scaled)


def _pixel_coordinates(values: torch.Tensor, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-space ``x [L]`` and ``y [N, L]`` (row axis pointing down) of min-max scaled values."""
    n_points = values.shape[-1]
    inner = image_size * (1.0 - 2.0 * MARGIN)
    start = image_size * MARGIN
    xs = start + torch.linspace(0.0, 1.0, n_points, device=values.device, dtype=values.dtype) * inner
    ys = start + (1.0 - values) * inner
    return xs, ys


def _interpolate(xs: torch.Tensor, ys: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``y`` at positions ``at [S]`` (clamped to the polyline's x-range) -> ``[N, S]``."""
    at = at.clamp(xs[0], xs[-1])
    # searchsorted(xs, at) for the sorted xs, written as a count so that it exports to ONNX (which has no such op)
    right = (xs[None, :] < at[:, None]).sum(dim=-1).clamp(1, xs.shape[0] - 1)
    left = right - 1
    weight = (at - xs[left]) / (xs[right] - xs[left])
    return ys[:, left] + (ys[:, right] - ys[:, left]) * weight


def render_line_charts(
    values: torch.Tensor,
    colours: torch.Tensor,
    image_size: int,
    line_width: float | None = None,
) -> torch.Tensor:
    """Draw each row of ``values`` as an anti-aliased line chart.

    Parameters
    ----------
    values
        ``[N, L]`` windows, already min-max scaled to [0, 1] (see :func:`minmax_scale`), ``L >= 2``.
    colours
        ``[N, 3]`` RGB line colours in [0, 1].
    image_size
        Side ``S`` of the square image in pixels.
    line_width
        Stroke width in pixels. Default: :func:`default_line_width`.

    Returns
    -------
    torch.Tensor
        ``[N, 3, S, S]`` RGB images in [0, 1] on a white background, on ``values``' device and dtype.
    """
    if values.ndim != 2 or values.shape[-1] < 2:
        raise ValueError(f"`values` must have shape [N, L] with L >= 2, got {tuple(values.shape)}.")
    width = default_line_width(image_size) if line_width is None else float(line_width)
    half = width / 2.0
    xs, ys = _pixel_coordinates(values, image_size)
    n_points = xs.shape[0]

    columns = torch.arange(image_size, device=values.device, dtype=values.dtype)
    left_edge, right_edge = columns + 0.5 - half, columns + 0.5 + half  # the column widened by the stroke
    y_left, y_right = _interpolate(xs, ys, left_edge), _interpolate(xs, ys, right_edge)
    lo = torch.minimum(y_left, y_right)
    hi = torch.maximum(y_left, y_right)

    # vertices inside each widened column: [S, L] mask, reduced over L
    # (no `if inside.any()`: a column with no vertex leaves lo / hi unchanged, and exported graphs need no branch)
    inside = (xs[None, :] >= left_edge[:, None]) & (xs[None, :] <= right_edge[:, None])
    big = torch.finfo(values.dtype).max
    ys_b = ys[:, None, :].expand(-1, image_size, n_points)
    lo = torch.minimum(lo, torch.where(inside, ys_b, big).amin(dim=-1))
    hi = torch.maximum(hi, torch.where(inside, ys_b, -big).amax(dim=-1))

    # columns wholly outside the polyline's x-range get no ink
    drawn = (right_edge >= xs[0]) & (left_edge <= xs[-1])
    # horizontal coverage of the column by the stroke's caps, anti-aliasing the two ends
    horizontal = (torch.minimum(right_edge, xs[-1] + half) - torch.maximum(left_edge, xs[0] - half)) / width
    horizontal = horizontal.clamp(0.0, 1.0) * drawn

    top, bottom = lo - half, hi + half  # [N, S]
    rows = columns  # pixel row r covers [r, r + 1)
    coverage = (
        torch.minimum(bottom[:, None, :], rows[None, :, None] + 1.0)
        - torch.maximum(top[:, None, :], rows[None, :, None])
    ).clamp(0.0, 1.0)  # [N, S(rows), S(cols)]
    coverage = coverage * horizontal[None, None, :]

    ink = (colours - 1.0)[:, :, None, None]  # how much each channel darkens at full coverage (negative)
    # one fused pass over the [N, 3, S, S] output: 1 + coverage * ink
    return torch.addcmul(torch.ones((), dtype=values.dtype, device=values.device), coverage[:, None], ink)


def render_line_charts_matplotlib(
    values,
    colours,
    image_size: int,
    line_width: float | None = None,
):
    """Reference renderer: the same charts drawn by matplotlib (Agg), one reused figure.

    Slow (a Python loop over images); kept for tests and for benchmarking the torch rasteriser.
    Takes and returns numpy arrays: ``values [N, L]`` in [0, 1], ``colours [N, 3]`` -> ``[N, 3, S, S]``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = np.asarray(values, dtype=np.float64)
    colours = np.asarray(colours, dtype=np.float64)
    width = default_line_width(image_size) if line_width is None else float(line_width)
    dpi = 100.0
    fig = Figure(figsize=(image_size / dpi, image_size / dpi), dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    # the same pixel mapping as the torch renderer: data x in [0, 1] spans [margin, 1 - margin] of the image
    ax.set_xlim(-MARGIN / (1 - 2 * MARGIN), 1 + MARGIN / (1 - 2 * MARGIN))
    ax.set_ylim(-MARGIN / (1 - 2 * MARGIN), 1 + MARGIN / (1 - 2 * MARGIN))
    xs = np.linspace(0.0, 1.0, values.shape[1])
    (line,) = ax.plot(xs, values[0], linewidth=width * 72.0 / dpi, antialiased=True, solid_capstyle="butt")
    images = np.empty((values.shape[0], 3, image_size, image_size), dtype=np.float32)
    for i in range(values.shape[0]):
        line.set_ydata(values[i])
        line.set_color(colours[i])
        canvas.draw()
        rgba = np.asarray(canvas.buffer_rgba())
        images[i] = rgba[:, :, :3].transpose(2, 0, 1) / 255.0
    return images
