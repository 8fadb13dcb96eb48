"""Self-pretraining of TimesCLIP's two CLIP towers on time series (no CLIP weights needed).

``pretrain_backbone(series, output_dir)`` writes a ``CLIPModel.save_pretrained`` directory that
``TimesCLIPModel(backbone=DIR)`` and the pytorch-forecasting adapter load; ``python -m darts_timesclip.pretrain``
is the command line. Pure torch below the entry point (Darts only to read ``TimeSeries``).

Public names are imported lazily (PEP 562), as in :mod:`darts_timesclip`: the objectives' names
(:mod:`darts_timesclip.pretraining.options`) can be read without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from darts_timesclip._lazy import lazy_attributes

#: public name -> module that defines it
_LAZY = {
    "Corpus": "darts_timesclip.pretraining.corpus",
    "build_corpus": "darts_timesclip.pretraining.corpus",
    "DEFAULT_OBJECTIVE": "darts_timesclip.pretraining.options",
    "OBJECTIVES": "darts_timesclip.pretraining.options",
    "TimesCLIPPretrainer": "darts_timesclip.pretraining.objectives",
    "synthetic_series": "darts_timesclip.pretraining.synthetic",
    "DEFAULT_CONTEXT_LENGTHS": "darts_timesclip.pretraining.trainer",
    "pretrain_backbone": "darts_timesclip.pretraining.trainer",
}

__all__ = [
    "DEFAULT_CONTEXT_LENGTHS",
    "DEFAULT_OBJECTIVE",
    "OBJECTIVES",
    "Corpus",
    "TimesCLIPPretrainer",
    "build_corpus",
    "pretrain_backbone",
    "synthetic_series",
]

if TYPE_CHECKING:
    from darts_timesclip.pretraining.corpus import Corpus, build_corpus
    from darts_timesclip.pretraining.objectives import TimesCLIPPretrainer
    from darts_timesclip.pretraining.options import DEFAULT_OBJECTIVE, OBJECTIVES
    from darts_timesclip.pretraining.synthetic import synthetic_series
    from darts_timesclip.pretraining.trainer import DEFAULT_CONTEXT_LENGTHS, pretrain_backbone


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY, __all__)
