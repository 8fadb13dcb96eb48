"""``VQTransformerNetwork``: VQ-VAE tokens, a causal Transformer over them, and a forecast through the decoder.

Pure torch. Three objectives share the modules:

- :meth:`~VQTransformerNetwork.tokenizer_loss` (stage 1): reconstruction through the codebook plus commitment;
- :meth:`~VQTransformerNetwork.pretrain_loss` (stage 2): next-token cross-entropy of the causal Transformer over
  the codes of whole training windows (input and forecast span);
- :meth:`~VQTransformerNetwork.forward` (stage 3): the forecast. The input window's code vectors enter the
  Transformer, followed by learned query tokens for the forecast span (plus the projected past covariates); at
  every position from the last input token on, the pretrained next-token head gives logits over the codebook,
  whose softmax weights the code vectors (plus a learned, zero-initialised correction); the VQ-VAE decoder turns
  the last input code vectors and these forecast code vectors into a series, whose forecast span (plus a small
  zero-initialised correction per step) is the forecast.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from darts_timesclip.network.normalization import InstanceStats, denormalize, instance_normalize
from darts_timesclip.vq.config import VQTransformerConfig
from darts_timesclip.vq.tokenizer import VQVAE

#: Normalised values of the stage 1 and 2 sequences are clipped to +-this: a forecast span far outside a nearly
#: constant input window would otherwise reach hundreds of standard deviations and dominate the objectives.
SEQUENCE_CLIP = 10.0

#: Input tokens decoded with the forecast's: enough to cover the decoder's receptive field at the boundary, so the
#: forecast continues the input smoothly, without decoding the whole input window.
DECODER_CONTEXT_TOKENS = 4

#: The parts that pretraining produces and a fine-tune on other series reuses (channel independent).
PRETRAINED_PARTS = ("tokenizer", "transformer", "future_queries", "stages_done")


@dataclass
class TokenizerLoss:
    """Stage 1 objective and its diagnostics (see :class:`~darts_timesclip.vq.tokenizer.QuantizerOutput`)."""

    loss: torch.Tensor
    reconstruction: torch.Tensor
    commitment: torch.Tensor
    perplexity: torch.Tensor
    usage: torch.Tensor


@dataclass
class PretrainLoss:
    """Stage 2 objective (next-token cross-entropy) and the share of next tokens predicted exactly."""

    loss: torch.Tensor
    accuracy: torch.Tensor


class CausalCodeTransformer(nn.Module):
    """A decoder-only Transformer over code vectors with a next-token head over the codebook."""

    def __init__(self, config: VQTransformerConfig) -> None:
        super().__init__()
        self.input_projection = nn.Linear(config.code_dim, config.d_model)
        self.position = nn.Parameter(torch.randn(1, config.max_tokens, config.d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(
            config.d_model,
            config.n_heads,
            config.d_ff,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.codebook_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[N, T, d_model]`` token embeddings -> ``[N, T, d_model]`` hidden states, each seeing its past only."""
        length = tokens.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device, dtype=tokens.dtype)
        hidden = self.layers(tokens + self.position[:, :length], mask=mask, is_causal=True)
        return self.norm(hidden)


class VQTransformerNetwork(nn.Module):
    """The network of :class:`~darts_timesclip.VQTransformerModel` (see the module docstring).

    Parameters
    ----------
    config
        Its hyperparameters, with ``n_targets`` set.
    """

    def __init__(self, config: VQTransformerConfig) -> None:
        super().__init__()
        if config.n_targets < 1:
            raise ValueError("`n_targets` must be set (>= 1) before building the network.")
        self.config = config
        self.tokenizer = VQVAE(
            config.codebook_size,
            config.code_dim,
            config.compression,
            config.tokenizer_hidden,
            config.ema_decay,
            config.dead_code_threshold,
        )
        self.transformer = CausalCodeTransformer(config)
        self.future_queries = nn.Parameter(torch.randn(1, max(config.forecast_tokens - 1, 1), config.d_model) * 0.02)
        self.covariate_projection = (
            nn.Linear(config.input_chunk_length * config.n_past_covariates, config.d_model)
            if config.n_past_covariates
            else None
        )
        if self.covariate_projection is not None:  # starts neutral: the pretrained path decides at first
            nn.init.zeros_(self.covariate_projection.weight)
            nn.init.zeros_(self.covariate_projection.bias)
        #: A zero-initialised correction of the forecast code vectors, so that the fine-tune is not confined to the
        #: convex hull of the codebook.
        self.latent_head = nn.Linear(config.d_model, config.code_dim)
        nn.init.zeros_(self.latent_head.weight)
        nn.init.zeros_(self.latent_head.bias)
        n_params = len(config.parameter_kinds)
        self.parameter_head = nn.Linear(config.d_model, config.compression * n_params)
        nn.init.zeros_(self.parameter_head.weight)
        nn.init.zeros_(self.parameter_head.bias)
        #: Which pretraining stages have run (tokenizer, Transformer): saved with the weights.
        self.register_buffer("stages_done", torch.zeros(2, dtype=torch.bool))

    # ------------------------------------------------------------------ sequences of tokens
    def _pad_context(self, context: torch.Tensor) -> torch.Tensor:
        """Left-pad ``[N, L]`` by repeating the first value, to whole tokens."""
        missing = self.config.context_tokens * self.config.compression - context.shape[1]
        return F.pad(context.unsqueeze(1), (missing, 0), mode="replicate").squeeze(1) if missing else context

    def _pad_future(self, future: torch.Tensor) -> torch.Tensor:
        """Right-pad ``[N, shift + H]`` by repeating the last value, to whole tokens."""
        missing = self.config.forecast_tokens * self.config.compression - future.shape[1]
        return F.pad(future.unsqueeze(1), (0, missing), mode="replicate").squeeze(1) if missing else future

    def sequences(self, windows: torch.Tensor) -> torch.Tensor:
        """``[N, L + shift + H]`` univariate training windows -> normalised, padded ``[N, max_tokens * c]``.

        Each window is normalised by its input part's statistics, as at forecast time, and clipped to
        ``+-SEQUENCE_CLIP``.
        """
        length = self.config.input_chunk_length
        normalised, stats = instance_normalize(windows[:, :length, None])
        future = (windows[:, length:, None] - stats.mean) / stats.std
        sequences = torch.cat([self._pad_context(normalised[..., 0]), self._pad_future(future[..., 0])], dim=1)
        return sequences.clamp(-SEQUENCE_CLIP, SEQUENCE_CLIP)

    # ------------------------------------------------------------------ stage 1 and 2 objectives
    def tokenizer_loss(self, windows: torch.Tensor) -> TokenizerLoss:
        """Reconstruction MSE of normalised windows through the codebook + ``commitment_weight`` x commitment."""
        sequences = self.sequences(windows)
        reconstruction, quantised = self.tokenizer(sequences)
        error = F.mse_loss(reconstruction, sequences)
        loss = error + self.config.commitment_weight * quantised.commitment_loss
        return TokenizerLoss(loss, error, quantised.commitment_loss, quantised.perplexity, quantised.usage)

    def pretrain_loss(self, windows: torch.Tensor) -> PretrainLoss:
        """Next-token cross-entropy of the Transformer over the (fixed) codes of the windows."""
        with torch.no_grad():
            quantised = self.tokenizer.quantizer(self.tokenizer.encode(self.sequences(windows)))
        hidden = self.transformer(self.transformer.input_projection(quantised.quantized[:, :-1]))
        logits = self.transformer.head(hidden)
        targets = quantised.codes[:, 1:]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        accuracy = (logits.argmax(-1) == targets).float().mean()
        return PretrainLoss(loss, accuracy)

    # ------------------------------------------------------------------ stage 3: the forecast
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecast from ``[B, L, n_targets + n_past_covariates]`` windows.

        Returns
        -------
        torch.Tensor
            ``[B, H, n_targets, n_parameters]`` in the scale of the input.
        """
        config = self.config
        batch, length, _ = x.shape
        n_targets, c = config.n_targets, config.compression
        normalised, stats = instance_normalize(x)
        context = self._pad_context(normalised[..., :n_targets].transpose(1, 2).reshape(batch * n_targets, length))
        context_vectors = self.tokenizer.quantizer(self.tokenizer.encode(context)).quantized  # [N, T_in, D]

        n_queries = config.forecast_tokens - 1
        tokens = [self.transformer.input_projection(context_vectors)]
        if n_queries:
            queries = self.future_queries[:, :n_queries].expand(batch * n_targets, -1, -1)
            if self.covariate_projection is not None:
                covariates = normalised[..., n_targets:].reshape(batch, -1)
                queries = queries + self.covariate_projection(covariates).repeat_interleave(n_targets, 0)[:, None]
            tokens.append(queries)
        hidden = self.transformer(torch.cat(tokens, dim=1))
        forecast_hidden = hidden[:, config.context_tokens - 1 :]  # [N, P, d]: position t predicts token t + 1
        weights = torch.softmax(self.transformer.head(forecast_hidden) / config.code_temperature, dim=-1)
        forecast_vectors = self.tokenizer.quantizer.lookup(weights) + self.latent_head(forecast_hidden)
        kept = min(config.context_tokens, DECODER_CONTEXT_TOKENS)
        decoded = self.tokenizer.decode(torch.cat([context_vectors[:, -kept:], forecast_vectors], dim=1))

        start = kept * c + config.output_chunk_shift
        steps = slice(config.output_chunk_shift, config.output_chunk_shift + config.output_chunk_length)
        location = decoded[:, start : start + config.output_chunk_length]  # [N, H]
        raw = self.parameter_head(forecast_hidden).reshape(batch * n_targets, -1, len(config.parameter_kinds))
        raw = raw[:, steps]
        params = [
            location + raw[..., i] if kind == "location" else raw[..., i]
            for i, kind in enumerate(config.parameter_kinds)
        ]
        out = torch.stack(params, dim=-1).reshape(batch, n_targets, config.output_chunk_length, -1).transpose(1, 2)
        return denormalize(out, InstanceStats(stats.mean, stats.std), config.parameter_kinds)

    # ------------------------------------------------------------------ reuse across models
    def pretrained_state(self) -> dict[str, torch.Tensor]:
        """The weights pretraining produces (tokenizer, Transformer, forecast queries): channel independent."""
        return {
            name: value.detach().clone()
            for name, value in self.state_dict().items()
            if name.split(".")[0] in PRETRAINED_PARTS
        }

    def load_pretrained_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load :meth:`pretrained_state` of a network with the same tokenizer and Transformer sizes.

        Raises
        ------
        ValueError
            Where the sizes differ (the message names the first differing weight).
        """
        own = self.state_dict()
        for name, value in state.items():
            if name not in own or own[name].shape != value.shape:
                expected = tuple(own[name].shape) if name in own else "no such weight"
                raise ValueError(
                    f"The pretrained weights do not fit this model: `{name}` has shape {tuple(value.shape)}, this "
                    f"model expects {expected}. Pretrain with the same tokenizer and Transformer sizes and the same "
                    "`input_chunk_length` / `output_chunk_length`."
                )
        self.load_state_dict(state, strict=False)
