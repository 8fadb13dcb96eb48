"""``VQTransformerConfig``: every hyperparameter of the VQ-VAE tokenizer and the causal Transformer, checked once."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from darts_timesclip.config_options import DocumentedConfig, option
from darts_timesclip.network.normalization import AFFINE_KINDS


@dataclass(frozen=True)
class VQTransformerConfig(DocumentedConfig):
    """Hyperparameters of :class:`~darts_timesclip.vq.VQTransformerNetwork`.

    The defaults are the original scripts' (codebook 256, compression 4, ``d_model`` 128, 3 layers, 8 heads,
    ``d_ff`` 256, dropout 0.1); their context of 512 steps became 128 tokens, the long-horizon protocol's 96 steps
    become 24. The code and hidden widths (64, 128) are TOTEM's (Talukder et al. 2024).

    Built by :class:`~darts_timesclip.vq.VQTransformerModel` from its arguments, or directly for the pure-torch
    network. Every value is checked when the config is created; an invalid one raises a ``ValueError`` that names
    the parameter and the value.

    Parameters
    ----------
    input_chunk_length
        Steps per input window.
    output_chunk_length
        Steps forecast at once.
    output_chunk_shift
        Steps between the input window and the forecast.
    n_targets
        Target variates (each forecast on its own: the model is channel independent). ``0`` until known.
    n_past_covariates
        Past-covariate variates; they inform the forecast of every target through one linear projection.
    parameter_kinds
        How each forecast parameter returns to scale (``"location"`` or ``"softplus_scale"``), one per parameter.
    {parameters}
    """

    input_chunk_length: int
    output_chunk_length: int
    output_chunk_shift: int = 0
    n_targets: int = 0
    n_past_covariates: int = 0
    parameter_kinds: tuple[str, ...] = ("location",)
    tokenizer_epochs: int = option(5, "Epochs of the tokenizer stage (the network ignores it; the model runs it).")
    pretrain_epochs: int = option(5, "Epochs of the Transformer's next-token pretraining (run by the model).")
    pretrain_lr: float = option(1e-3, "Learning rate of the tokenizer and pretraining stages (AdamW).")
    codebook_size: int = option(256, "Number of codes ``K`` (at least 2).")
    compression: int = option(4, "Time steps per token: a power of two (1 keeps every step).")
    code_dim: int = option(64, "Width of a code vector.")
    tokenizer_hidden: int = option(128, "Channels of the tokenizer's convolutions.")
    commitment_weight: float = option(0.25, "Weight of the VQ-VAE commitment loss (beta).")
    ema_decay: float = option(0.99, "Decay of the exponential moving averages that update the codebook.")
    dead_code_threshold: float = option(
        1.0, "A code whose moving-average count falls below this is restarted on a random encoder output."
    )
    d_model: int = option(128, "Width of the causal Transformer (divisible by ``n_heads``).")
    n_layers: int = option(3, "Layers of the Transformer.")
    n_heads: int = option(8, "Attention heads of the Transformer.")
    d_ff: int = option(256, "Width of the Transformer's feed-forward layers.")
    dropout: float = option(0.1, "Dropout of the Transformer (in [0, 1)).")
    code_temperature: float = option(
        1.0, "Temperature of the softmax over codes that turns the Transformer's forecast logits into code vectors."
    )

    def __post_init__(self) -> None:
        positive = (
            "input_chunk_length",
            "output_chunk_length",
            "codebook_size",
            "compression",
            "code_dim",
            "tokenizer_hidden",
            "d_model",
            "n_layers",
            "n_heads",
            "d_ff",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got `{value!r}`.")
        for name in ("output_chunk_shift", "n_targets", "n_past_covariates", "tokenizer_epochs", "pretrain_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative integer, got `{value!r}`.")
        if self.codebook_size < 2:
            raise ValueError(f"`codebook_size` must be at least 2, got `{self.codebook_size}`.")
        if self.compression & (self.compression - 1):
            raise ValueError(f"`compression` must be a power of two (1, 2, 4, 8, ...), got `{self.compression}`.")
        if self.d_model % self.n_heads:
            raise ValueError(f"`d_model={self.d_model}` must be divisible by `n_heads={self.n_heads}`.")
        for name, low, high in (("dropout", 0.0, 1.0), ("ema_decay", 0.0, 1.0)):
            value = getattr(self, name)
            if not low <= value < high:
                raise ValueError(f"`{name}` must lie in [{low}, {high}), got `{value}`.")
        for name in ("commitment_weight", "dead_code_threshold"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"`{name}` must be a finite number >= 0, got `{value}`.")
        lr = self.pretrain_lr
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"`pretrain_lr` must be a finite number > 0, got `{self.pretrain_lr!r}`.")
        if not (self.code_temperature > 0 and math.isfinite(self.code_temperature)):
            raise ValueError(f"`code_temperature` must be a finite number > 0, got `{self.code_temperature}`.")
        kinds = tuple(self.parameter_kinds)
        if not kinds or any(kind not in AFFINE_KINDS for kind in kinds):
            raise ValueError(f"`parameter_kinds` must be a non-empty tuple of {AFFINE_KINDS}, got {kinds}.")
        object.__setattr__(self, "parameter_kinds", kinds)

    # ------------------------------------------------------------------ derived sizes
    @property
    def context_tokens(self) -> int:
        """Tokens of an input window (left-padded to a multiple of ``compression``)."""
        return math.ceil(self.input_chunk_length / self.compression)

    @property
    def forecast_tokens(self) -> int:
        """Tokens covering the shift and the forecast (right-padded to a multiple of ``compression``)."""
        return math.ceil((self.output_chunk_shift + self.output_chunk_length) / self.compression)

    @property
    def max_tokens(self) -> int:
        """Longest code sequence the Transformer sees: a whole training window."""
        return self.context_tokens + self.forecast_tokens

    # ------------------------------------------------------------------ (de)serialisation
    def replace(self, **changes: Any) -> VQTransformerConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (Lightning hyperparameters, checkpoints)."""
        values = dataclasses.asdict(self)
        values["parameter_kinds"] = list(self.parameter_kinds)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VQTransformerConfig:
        """Inverse of :meth:`to_dict`."""
        values = dict(values)
        values["parameter_kinds"] = tuple(values.get("parameter_kinds", ("location",)))
        return cls(**values)


VQTransformerConfig.__doc__ = VQTransformerConfig.__doc__.replace(
    "{parameters}", VQTransformerConfig.parameters_doc(indent=4)
)
