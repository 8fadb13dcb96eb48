"""A memory-bounded cache of frozen vision-tower embeddings, keyed by the chart that produced them."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch


class EmbeddingCache:
    """Least-recently-used map from a chart's content to its pooled vision embedding.

    A chart is determined by its min-max scaled values and its colour, so ``key(values, colour)`` is the bytes of
    both. Entries are evicted, oldest first, once their total size passes ``max_bytes``.

    Parameters
    ----------
    max_bytes
        Upper bound of the memory held by keys and embeddings. ``0`` disables the cache.
    """

    _ENTRY_OVERHEAD = 160  # dict slot, OrderedDict links, tensor header (approximate)

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"`max_bytes` must be >= 0, got {max_bytes}.")
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def keys(values: torch.Tensor, colour_index: torch.Tensor) -> list[bytes]:
        """One key per row of ``values [N, L]`` (min-max scaled) and ``colour_index [N]``."""
        rows = values.detach().to("cpu", torch.float32).numpy()
        colours = colour_index.detach().to("cpu", torch.int32).numpy()
        return [c.tobytes() + r.tobytes() for r, c in zip(np.ascontiguousarray(rows), colours)]

    def get(self, key: bytes) -> torch.Tensor | None:
        emb = self._entries.get(key)
        if emb is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return emb

    def put(self, key: bytes, embedding: torch.Tensor) -> None:
        if not self.enabled or key in self._entries:
            return
        size = self._size(key, embedding)
        if size > self.max_bytes:
            return
        self._entries[key] = embedding.detach()
        self.nbytes += size
        while self.nbytes > self.max_bytes:
            old_key, old = self._entries.popitem(last=False)
            self.nbytes -= self._size(old_key, old)

    def clear(self) -> None:
        self._entries.clear()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    def _size(self, key: bytes, embedding: torch.Tensor) -> int:
        return len(key) + embedding.numel() * embedding.element_size() + self._ENTRY_OVERHEAD
