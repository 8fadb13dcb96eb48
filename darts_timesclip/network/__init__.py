"""Pure-torch TimesCLIP: rendering, patching, towers, alignment, variate selection, generator.

Nothing here imports Darts or pytorch-forecasting; both wrappers use :class:`TimesCLIPNetwork` unchanged.
"""

from darts_timesclip.network.chart_rendering import (
    PALETTE,
    minmax_scale,
    render_line_charts,
    render_line_charts_matplotlib,
    variate_colours,
)
from darts_timesclip.network.embedding_cache import EmbeddingCache
from darts_timesclip.network.heads import ContrastiveAlignment, ForecastGenerator, VariateSelection
from darts_timesclip.network.normalization import PARAMETER_KINDS, denormalize, instance_normalize
from darts_timesclip.network.patching import make_patches, num_patches
from darts_timesclip.network.timesclip import TimesCLIPNetwork, TimesCLIPOutput
from darts_timesclip.network.towers import NumericTower, VisionTower

__all__ = [
    "PALETTE",
    "PARAMETER_KINDS",
    "ContrastiveAlignment",
    "EmbeddingCache",
    "ForecastGenerator",
    "NumericTower",
    "TimesCLIPNetwork",
    "TimesCLIPOutput",
    "VariateSelection",
    "VisionTower",
    "denormalize",
    "instance_normalize",
    "make_patches",
    "minmax_scale",
    "num_patches",
    "render_line_charts",
    "render_line_charts_matplotlib",
    "variate_colours",
]
