"""Pure-torch TimesCLIP: config, the chart pipeline, patching, towers, alignment, variate selection, generator, losses.

Nothing here imports Darts, Lightning or pytorch-forecasting (a test enforces it); both wrappers build one
:class:`TimesCLIPConfig` and use :class:`TimesCLIPNetwork` unchanged.
"""

from darts_timesclip.network.chart_rendering import (
    PALETTE,
    minmax_scale,
    render_line_charts,
    render_line_charts_matplotlib,
    variate_colours,
)
from darts_timesclip.network.config import TimesCLIPConfig, document_config_parameters
from darts_timesclip.network.embedding_cache import EmbeddingCache
from darts_timesclip.network.heads import ContrastiveAlignment, ForecastGenerator, VariateSelection
from darts_timesclip.network.image_encodings import IMAGE_ENCODINGS, chart_rows, row_images, window_images
from darts_timesclip.network.losses import TimesCLIPLosses, combine_losses
from darts_timesclip.network.normalization import PARAMETER_KINDS, denormalize, instance_normalize
from darts_timesclip.network.patching import make_patches, num_patches, variates_as_rows
from darts_timesclip.network.timesclip import TimesCLIPEncoding, TimesCLIPNetwork, TimesCLIPOutput
from darts_timesclip.network.towers import NumericTower, VisionTower

__all__ = [
    "IMAGE_ENCODINGS",
    "PALETTE",
    "PARAMETER_KINDS",
    "ContrastiveAlignment",
    "EmbeddingCache",
    "ForecastGenerator",
    "NumericTower",
    "TimesCLIPConfig",
    "TimesCLIPEncoding",
    "TimesCLIPLosses",
    "TimesCLIPNetwork",
    "TimesCLIPOutput",
    "VariateSelection",
    "VisionTower",
    "chart_rows",
    "combine_losses",
    "denormalize",
    "document_config_parameters",
    "instance_normalize",
    "make_patches",
    "minmax_scale",
    "num_patches",
    "render_line_charts",
    "render_line_charts_matplotlib",
    "row_images",
    "variate_colours",
    "variates_as_rows",
    "window_images",
]
