"""Every difference between transformers versions that TimesCLIP depends on, in one place.

transformers 5 removed ``CLIPTextTransformer`` (``CLIPTextModel`` now holds ``embeddings``, ``encoder`` and
``final_layer_norm`` itself) and ``CLIPTextModel.forward`` accepts ``input_ids`` only. TimesCLIP drives the text
tower with its own patch embeddings, so it goes through the sub-modules directly. transformers 4.x kept the same
sub-modules one level down, under ``.text_model``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import nn


def text_submodules(text_model: nn.Module) -> nn.Module:
    """Return the module that holds ``embeddings``, ``encoder`` and ``final_layer_norm``.

    transformers 5: the ``CLIPTextModel`` itself; transformers 4: its ``.text_model`` (``CLIPTextTransformer``).
    """
    if hasattr(text_model, "encoder") and hasattr(text_model, "final_layer_norm"):
        return text_model
    inner = getattr(text_model, "text_model", None)
    if inner is not None and hasattr(inner, "encoder"):
        return inner
    raise TypeError(
        f"`{type(text_model).__name__}` does not look like a CLIP text model: it has no `encoder` and "
        "`final_layer_norm`."
    )


def causal_mask(text_model: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor | None:
    """The causal attention mask that ``CLIPTextModel`` builds for ``input_ids``, for embedding inputs.

    Returns ``None`` where the attention implementation applies causality itself (``is_causal=True``).
    """
    try:  # transformers >= 4.53 / 5.x
        from transformers.masking_utils import create_causal_mask
    except ImportError:  # pragma: no cover - transformers 4.x before masking_utils
        from transformers.modeling_attn_mask_utils import _create_4d_causal_attention_mask

        bsz, seq_len = hidden_states.shape[:2]
        return _create_4d_causal_attention_mask((bsz, seq_len), hidden_states.dtype, hidden_states.device)
    return create_causal_mask(
        config=text_model.config,
        inputs_embeds=hidden_states,
        attention_mask=None,
        past_key_values=None,
    )


def encode_text_embeddings(text_model: nn.Module, inputs_embeds: torch.Tensor) -> torch.Tensor:
    """Run a CLIP text tower on token embeddings instead of token ids.

    Parameters
    ----------
    text_model
        A ``transformers.CLIPTextModel``.
    inputs_embeds
        ``[N, T, D]`` token embeddings, ``T <= max_position_embeddings``.

    Returns
    -------
    torch.Tensor
        ``[N, T, D]`` hidden states after the final layer norm. The tower keeps CLIP's causal mask: token ``t``
        attends to tokens ``0..t``.
    """
    inner = text_submodules(text_model)
    hidden = inner.embeddings(inputs_embeds=inputs_embeds)  # adds position embeddings
    mask = causal_mask(text_model, hidden)
    encoded = inner.encoder(inputs_embeds=hidden, attention_mask=mask, is_causal=True)
    last_hidden = encoded[0] if isinstance(encoded, tuple) else encoded.last_hidden_state
    return inner.final_layer_norm(last_hidden)


def vision_pooled_output(vision_model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Pooled ``post_layernorm(CLS)`` output of a ``CLIPVisionModel`` for ``[N, 3, S, S]`` images."""
    out = vision_model(pixel_values=pixel_values)
    return out.pooler_output if hasattr(out, "pooler_output") else out[1]


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' per-load reports (missing / unexpected keys, load tables) for the duration."""
    from transformers.utils import logging as hf_logging

    previous = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights" bars
    # transformers 5 also prints a load report through the `transformers.modeling_utils` logger
    loggers = [logging.getLogger(name) for name in ("transformers", "transformers.modeling_utils")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
