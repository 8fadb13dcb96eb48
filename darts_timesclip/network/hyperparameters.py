"""Validation of TimesCLIP's hyperparameters, shared by the Darts model and the pytorch-forecasting adapter.

Errors are ``ValueError`` s that name the parameter and its value, raised when a model is constructed.
"""

from __future__ import annotations

from typing import Any

from darts_timesclip.network.patching import num_patches


def check_positive_int(**values: Any) -> None:
    """Each value must be an ``int`` (not a ``bool``) of at least 1."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got `{value!r}`.")


def check_timesclip_hyperparameters(
    *,
    input_length: int,
    output_length: int,
    patch_length: int,
    patch_stride: int,
    use_vision: bool,
    use_alignment: bool,
    alignment_weight: float,
    text_tower_lr: float,
    dropout: float,
    embedding_cache_mb: float,
    vision_chunk_size: int,
    backbone: str,
    max_text_positions: int,
    length_names: tuple[str, str] = ("input_chunk_length", "output_chunk_length"),
) -> None:
    """Raise ``ValueError`` for the first invalid value; names follow ``TimesCLIPModel``'s arguments.

    Parameters
    ----------
    input_length, output_length
        Window and forecast lengths.
    patch_length, patch_stride, use_vision, use_alignment, alignment_weight, text_tower_lr, dropout,
    embedding_cache_mb, vision_chunk_size
        As in :class:`~darts_timesclip.TimesCLIPModel`.
    backbone, max_text_positions
        The backbone's name and its text tower's number of positions (for the patch count check).
    length_names
        What the wrapper calls the two lengths: Darts' ``input_chunk_length`` / ``output_chunk_length``,
        pytorch-forecasting's ``context_length`` / ``prediction_length``.
    """
    in_name, out_name = length_names
    check_positive_int(**{in_name: input_length, out_name: output_length})
    check_positive_int(patch_length=patch_length, patch_stride=patch_stride, vision_chunk_size=vision_chunk_size)
    if input_length < 2:
        raise ValueError(f"`{in_name}` must be at least 2 (a chart needs two points), got {input_length}.")
    if patch_length > input_length:
        raise ValueError(f"`patch_length={patch_length}` is longer than `{in_name}={input_length}`.")
    if patch_stride > patch_length:
        raise ValueError(
            f"`patch_stride={patch_stride}` is longer than `patch_length={patch_length}`: values would be skipped."
        )
    for name, value in (("alignment_weight", alignment_weight), ("embedding_cache_mb", embedding_cache_mb)):
        if not value >= 0:  # also rejects NaN
            raise ValueError(f"`{name}` must be >= 0, got {value}.")
    if not text_tower_lr > 0:
        raise ValueError(f"`text_tower_lr` must be > 0, got {text_tower_lr}.")
    if not 0 <= dropout < 1:
        raise ValueError(f"`dropout` must be in [0, 1), got {dropout}.")
    if use_alignment and not use_vision:
        raise ValueError("`use_alignment=True` needs `use_vision=True`; pass `use_alignment=False` without vision.")
    n_tokens = num_patches(input_length, patch_length, patch_stride) + 1
    if n_tokens > max_text_positions:
        raise ValueError(
            f"`{in_name}={input_length}` with `patch_length={patch_length}` and `patch_stride="
            f"{patch_stride}` gives {n_tokens - 1} patches plus a summary token, more than the "
            f"{max_text_positions} positions of `{backbone}`'s text tower; increase `patch_length` or `patch_stride`."
        )
