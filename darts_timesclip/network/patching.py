"""Per-variate rows of windows, and their patches for the numeric (text) tower."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def variates_as_rows(x: torch.Tensor) -> torch.Tensor:
    """``[B, L, V]`` windows -> ``[B * V, L]`` rows, one per variate of each window (sample-major, variate-minor)."""
    batch, length, n_var = x.shape
    return x.permute(0, 2, 1).reshape(batch * n_var, length)


def num_patches(input_length: int, patch_length: int, patch_stride: int) -> int:
    """Number of patches of a window: PatchTST's count with the end padded by one stride."""
    return (input_length - patch_length) // patch_stride + 2


def make_patches(x: torch.Tensor, patch_length: int, patch_stride: int) -> torch.Tensor:
    """``[N, L]`` series -> ``[N, num_patches, patch_length]`` patches.

    The end is padded by repeating the last value ``patch_stride`` times (PatchTST's ``padding_patch="end"``),
    so the most recent values always fall in a full patch.
    """
    padded = F.pad(x.unsqueeze(1), (0, patch_stride), mode="replicate").squeeze(1)
    return padded.unfold(dimension=-1, size=patch_length, step=patch_stride)
