"""The two views of a window: the vision tower (line charts) and the numeric tower (patches)."""

from __future__ import annotations

import torch
from torch import nn

from darts_timesclip.backbones.compat import encode_text_embeddings, vision_pooled_output
from darts_timesclip.network.embedding_cache import EmbeddingCache
from darts_timesclip.network.image_encodings import chart_rows, row_images, window_images
from darts_timesclip.network.patching import make_patches, num_patches, variates_as_rows

#: CLIP's image normalisation (``CLIPImageProcessor`` defaults).
CLIP_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


class VisionTower(nn.Module):
    """Images of each variate (line charts by default) -> CLIP vision tower -> pooled CLS -> trainable projection.

    Parameters
    ----------
    clip_vision
        A ``transformers.CLIPVisionModel``.
    out_dim
        Width ``D`` of the projected image embedding (the text tower's width).
    freeze
        Keep the CLIP vision weights fixed (the paper's setting). Only then are embeddings cached.
    cache_bytes
        Memory bound of the embedding cache. ``0`` disables it. Default: 1 GiB.
    chunk_size
        Charts drawn and encoded per pass; bounds memory for many variates.
    line_width
        Stroke width in pixels. Default: proportional to the image size.
    encoding, period
        How a window becomes an image (:data:`~darts_timesclip.network.image_encodings.IMAGE_ENCODINGS`) and the
        period of the ``"periodic"`` grid.
    """

    def __init__(
        self,
        clip_vision: nn.Module,
        out_dim: int,
        freeze: bool = True,
        cache_bytes: int = 1 << 30,
        chunk_size: int = 256,
        line_width: float | None = None,
        encoding: str = "line",
        period: int | None = None,
    ) -> None:
        super().__init__()
        self.clip = clip_vision
        self.image_size = int(clip_vision.config.image_size)
        self.projection = nn.Linear(clip_vision.config.hidden_size, out_dim)
        self.frozen = freeze
        self.chunk_size = chunk_size
        self.line_width = line_width
        self.encoding = encoding
        self.period = period
        self.register_buffer("pixel_mean", torch.tensor(CLIP_IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(CLIP_IMAGE_STD).view(1, 3, 1, 1), persistent=False)
        self.cache = EmbeddingCache(cache_bytes if freeze else 0)
        if freeze:
            self.clip.requires_grad_(False)
        self.clip.register_load_state_dict_post_hook(self._clear_cache_after_load)

    def _clear_cache_after_load(self, module: nn.Module, incompatible_keys: object) -> None:
        """New weights (a checkpoint, pretrained towers) make cached embeddings stale."""
        self.cache.clear()

    def train(self, mode: bool = True) -> VisionTower:
        super().train(mode)
        if self.frozen:
            self.clip.eval()  # a frozen tower keeps inference behaviour (and deterministic outputs)
        return self

    def images(self, x: torch.Tensor, colour_index: torch.Tensor | None = None) -> torch.Tensor:
        """Windows on their own scale -> the images this tower sees, in ``[0, 1]`` before CLIP's pixel normalisation.

        The chart pipeline (:func:`~darts_timesclip.network.image_encodings.window_images`) with this tower's image
        size, encoding, period and line width: what :class:`~darts_timesclip.network.TimesCLIPNetwork` draws for the
        windows it is given, and what explanations show.

        Parameters
        ----------
        x
            ``[B, L, V]`` windows, as :meth:`TimesCLIPNetwork.encode` takes them (not yet instance-normalised).
        colour_index
            ``[B, V]`` colours; default: variate ``v`` in colour ``v``, as the forecaster draws them.

        Returns
        -------
        torch.Tensor
            ``[B, V, 3, S, S]`` RGB images.
        """
        return window_images(x, self.image_size, self.encoding, self.period, self.line_width, colour_index)

    def render(self, rows: torch.Tensor, colour_index: torch.Tensor) -> torch.Tensor:
        """``[N, L]`` min-max scaled rows -> CLIP-normalised ``[N, 3, S, S]`` pixel values."""
        images = row_images(rows, colour_index, self.image_size, self.encoding, self.period, self.line_width)
        images = (images - self.pixel_mean.to(images.dtype)) / self.pixel_std.to(images.dtype)
        if images.is_cuda:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def _encode(self, rows: torch.Tensor, colour_index: torch.Tensor) -> torch.Tensor:
        """Pooled CLIP embeddings ``[N, H_vision]`` of the charts, in chunks (all at once in an exported graph,
        whose batch dimension a loop over chunks would fix)."""
        if torch.compiler.is_exporting():
            pixels = self.render(rows, colour_index)
            return vision_pooled_output(self.clip, pixels.to(self.projection.weight.dtype))
        out = []
        for start in range(0, rows.shape[0], self.chunk_size):
            chunk = slice(start, start + self.chunk_size)
            pixels = self.render(rows[chunk], colour_index[chunk])
            out.append(vision_pooled_output(self.clip, pixels.to(self.projection.weight.dtype)))
        return torch.cat(out, dim=0)

    def pooled(self, rows: torch.Tensor, colour_index: torch.Tensor) -> torch.Tensor:
        """Pooled embeddings ``[N, H_vision]`` of charts, served from the cache where the tower is frozen.

        With the cache on, every distinct chart is encoded once, in the first batch that holds it, and that one
        result is what every later request receives, from the same batch or a later one: served and freshly
        computed embeddings are the same bits, so predictions do not depend on what was predicted before (while
        the chart stays in the cache).
        """
        if not self.frozen:
            return self._encode(rows, colour_index)
        with torch.no_grad():
            if not self.cache.enabled or torch.compiler.is_exporting():
                # an exported graph (ONNX, torch.export) encodes every chart: the cache is Python state, not graph
                return self._encode(rows, colour_index)
            keys = EmbeddingCache.keys(rows, colour_index)
            first_of: dict[bytes, int] = {}
            distinct = [first_of.setdefault(key, i) for i, key in enumerate(keys)]  # row of each key's first copy
            unique = sorted(set(distinct))
            found = self.cache.lookup([keys[i] for i in unique])
            embeddings = torch.empty(
                (len(unique), self.clip.config.hidden_size), device=rows.device, dtype=self.projection.weight.dtype
            )
            hit = [j for j, row in enumerate(found) if row >= 0]
            if hit:  # gather before inserting: insertion may evict rows of this batch
                store_rows = torch.tensor([found[j] for j in hit], device=rows.device)
                embeddings[hit] = self.cache.gather(store_rows).to(device=rows.device, dtype=embeddings.dtype)
            missing = [j for j, row in enumerate(found) if row < 0]
            if missing:
                source = torch.tensor([unique[j] for j in missing], device=rows.device)
                fresh = self._encode(rows[source], colour_index[source]).to(embeddings.dtype)
                embeddings[missing] = fresh
                self.cache.insert([keys[unique[j]] for j in missing], fresh)
            position = {row: j for j, row in enumerate(unique)}
            return embeddings[torch.tensor([position[r] for r in distinct], device=rows.device)]

    def _apply(self, fn, recurse=True):  # noqa: ANN001 - torch's signature
        # `.to(device)`, `.double()`, ...: cached embeddings follow the tower's device; a new dtype makes them stale
        # (a float32 embedding cast to float64 is not what the float64 tower computes)
        dtype = self.projection.weight.dtype
        result = super()._apply(fn, recurse)
        if self.projection.weight.dtype != dtype:
            self.cache.clear()
        else:
            self.cache.to(self.projection.weight.device)
        return result

    def forward(self, x: torch.Tensor, colour_index: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, L, V]`` instance-normalised windows -> ``[B, V, D]`` image embeddings.

        ``colour_index [B, V]``: the colour of each variate's chart; default: variate ``v`` in colour ``v``.
        """
        batch, _, n_var = x.shape
        rows, colours = chart_rows(x, colour_index)
        return self.projection(self.pooled(rows, colours)).view(batch, n_var, -1)


class NumericTower(nn.Module):
    """Patches -> linear tokenizer -> CLIP text transformer, with a learnt summary token.

    The token sequence is ``[patch_1, ..., patch_N, summary]``. CLIP's text tower is causal (token ``t`` sees
    ``0..t``), as it was pretrained; the summary token is placed last, where CLIP reads its end-of-text token, so
    that it attends to every patch. Put first, it would see nothing but itself.

    Parameters
    ----------
    clip_text
        A ``transformers.CLIPTextModel``; its token embedding is unused and frozen.
    input_length
        Window length ``L``.
    patch_length, patch_stride
        Patch size ``P`` and step.
    """

    def __init__(self, clip_text: nn.Module, input_length: int, patch_length: int, patch_stride: int) -> None:
        super().__init__()
        self.clip = clip_text
        self.patch_length = patch_length
        self.patch_stride = patch_stride
        self.n_patches = num_patches(input_length, patch_length, patch_stride)
        width = int(clip_text.config.hidden_size)
        positions = int(clip_text.config.max_position_embeddings)
        if self.n_patches + 1 > positions:
            raise ValueError(
                f"The window is cut into {self.n_patches} patches (input length {input_length}, `patch_length="
                f"{patch_length}`, `patch_stride={patch_stride}`), which with the summary token exceeds the text "
                f"tower's {positions} positions; use a longer `patch_length` or `patch_stride`."
            )
        self.tokenizer = nn.Linear(patch_length, width)
        self.summary_token = nn.Parameter(torch.randn(width) * 0.02)
        self.clip.get_input_embeddings().requires_grad_(False)

    def encode_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[N, P_count, D]`` patch tokens -> hidden states ``[N, P_count + 1, D]`` (the summary token last)."""
        summary = self.summary_token.to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        return encode_text_embeddings(self.clip, torch.cat([tokens, summary], dim=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, L, V]`` normalised windows -> patch tokens ``[B, V, N, D]`` and summaries ``[B, V, D]``.

        ``L`` may differ from the ``input_length`` the tower was built for, up to the text tower's positions
        (pretraining uses several context lengths).
        """
        batch, _, n_var = x.shape
        patches = make_patches(variates_as_rows(x), self.patch_length, self.patch_stride)  # [B*V, N, P]
        hidden = self.encode_tokens(self.tokenizer(patches))
        hidden = hidden.view(batch, n_var, patches.shape[1] + 1, -1)
        return hidden[:, :, :-1], hidden[:, :, -1]
