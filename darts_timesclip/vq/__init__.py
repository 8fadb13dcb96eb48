"""The VQ-VAE tokenizer + causal Transformer forecaster.

``darts_timesclip.vq.network`` and ``.tokenizer`` need torch (not Darts or Lightning); :class:`VQTransformerModel`
(Darts) is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from darts_timesclip.vq.config import VQTransformerConfig
from darts_timesclip.vq.network import VQTransformerNetwork
from darts_timesclip.vq.tokenizer import VQVAE, EMAVectorQuantizer

__all__ = ["VQVAE", "EMAVectorQuantizer", "VQTransformerConfig", "VQTransformerModel", "VQTransformerNetwork"]

if TYPE_CHECKING:
    from darts_timesclip.vq.model import VQTransformerModel


def __getattr__(name: str) -> Any:
    if name == "VQTransformerModel":
        from darts_timesclip.vq.model import VQTransformerModel

        return VQTransformerModel
    raise AttributeError(f"module 'darts_timesclip.vq' has no attribute '{name}'")
