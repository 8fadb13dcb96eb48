"""Self-pretraining of TimesCLIP's two CLIP towers on time series (no CLIP weights needed).

``pretrain_backbone(series, output_dir)`` writes a ``CLIPModel.save_pretrained`` directory that
``TimesCLIPModel(backbone=DIR)`` and the pytorch-forecasting adapter load; ``python -m darts_timesclip.pretrain``
is the command line. Pure torch below the entry point (Darts only to read ``TimeSeries``).
"""

from darts_timesclip.pretraining.corpus import Corpus, build_corpus
from darts_timesclip.pretraining.objectives import OBJECTIVES, TimesCLIPPretrainer
from darts_timesclip.pretraining.synthetic import synthetic_series
from darts_timesclip.pretraining.trainer import DEFAULT_CONTEXT_LENGTHS, pretrain_backbone

__all__ = [
    "DEFAULT_CONTEXT_LENGTHS",
    "OBJECTIVES",
    "Corpus",
    "TimesCLIPPretrainer",
    "build_corpus",
    "pretrain_backbone",
    "synthetic_series",
]
