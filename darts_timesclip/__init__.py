"""darts-timesclip: the TimesCLIP forecaster (arXiv 2506.24124) for Darts.

Public names are imported lazily (PEP 562): ``import darts_timesclip`` loads nothing heavy, ``from darts_timesclip
import TimesCLIPConfig`` needs torch and transformers only, and Darts is imported when ``TimesCLIPModel`` is first
used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from darts_timesclip._lazy import lazy_attributes

__version__ = "0.2.0"

#: public name -> module that defines it
_LAZY = {
    "TimesCLIPModel": "darts_timesclip.model",
    "TimesCLIPEmbeddings": "darts_timesclip.model",
    "TimesCLIPRegressor": "darts_timesclip.regression",
    "VQTransformerModel": "darts_timesclip.vq.model",
    "VQTransformerConfig": "darts_timesclip.vq.config",
    "TimesCLIPExplainer": "darts_timesclip.explainability",
    "TimesCLIPExplainabilityResult": "darts_timesclip.explainability",
    "TimesCLIPConfig": "darts_timesclip.network.config",
    "TimesCLIPNetwork": "darts_timesclip.network.timesclip",
    "TimesCLIPOutput": "darts_timesclip.network.timesclip",
    "PRESETS": "darts_timesclip.backbones.presets",
    "BackboneNotAvailableError": "darts_timesclip.backbones.loading",
    "resolve_backbone": "darts_timesclip.backbones.loading",
}

__all__ = [
    "PRESETS",
    "BackboneNotAvailableError",
    "TimesCLIPConfig",
    "TimesCLIPEmbeddings",
    "TimesCLIPExplainabilityResult",
    "TimesCLIPExplainer",
    "TimesCLIPModel",
    "TimesCLIPNetwork",
    "TimesCLIPOutput",
    "TimesCLIPRegressor",
    "VQTransformerConfig",
    "VQTransformerModel",
    "__version__",
    "resolve_backbone",
]

if TYPE_CHECKING:
    from darts_timesclip.backbones.loading import BackboneNotAvailableError, resolve_backbone
    from darts_timesclip.backbones.presets import PRESETS
    from darts_timesclip.explainability import TimesCLIPExplainabilityResult, TimesCLIPExplainer
    from darts_timesclip.model import TimesCLIPEmbeddings, TimesCLIPModel
    from darts_timesclip.network.config import TimesCLIPConfig
    from darts_timesclip.network.timesclip import TimesCLIPNetwork, TimesCLIPOutput
    from darts_timesclip.regression import TimesCLIPRegressor
    from darts_timesclip.vq.config import VQTransformerConfig
    from darts_timesclip.vq.model import VQTransformerModel


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY, __all__)
