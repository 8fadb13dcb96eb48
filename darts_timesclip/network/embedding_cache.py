"""A memory-bounded cache of frozen vision-tower embeddings, keyed by the chart that produced them."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch


class EmbeddingCache:
    """Least-recently-used map from a chart's content to its pooled vision embedding.

    A chart is determined by its min-max scaled values and its colour, so a key is the bytes of both. The
    embeddings live in one preallocated ``[capacity, D]`` tensor on the device they were computed on (grown by
    doubling up to the memory bound); the Python side holds only ``key -> row`` in insertion/use order. This keeps
    lookups to one gather and leaves the garbage collector nothing to scan (a dict of many small tensors would
    slow every allocation down as the cache fills).

    Parameters
    ----------
    max_bytes
        Upper bound of the memory held by keys and embeddings. ``0`` disables the cache.
    """

    ENTRY_OVERHEAD = 100  # dict slot and int object per entry, approximately

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"`max_bytes` must be >= 0, got {max_bytes}.")
        self.max_bytes = int(max_bytes)
        self._rows: OrderedDict[bytes, int] = OrderedDict()
        self._store: torch.Tensor | None = None
        self._capacity = 0
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def capacity(self) -> int:
        """Most entries the memory bound allows (0 until the first embedding fixes the entry size)."""
        return self._capacity

    @staticmethod
    def keys(values: torch.Tensor, colour_index: torch.Tensor) -> list[bytes]:
        """One key per row of ``values [N, L]`` (min-max scaled) and ``colour_index [N]``."""
        rows = np.ascontiguousarray(values.detach().to("cpu", torch.float32).numpy())
        colours = colour_index.detach().to("cpu", torch.int32).numpy()
        return [c.tobytes() + r.tobytes() for r, c in zip(rows, colours)]

    def lookup(self, keys: Sequence[bytes]) -> list[int]:
        """Row of each key in the store, ``-1`` where absent; found keys become most recently used."""
        rows = []
        for key in keys:
            row = self._rows.get(key, -1)
            if row >= 0:
                self._rows.move_to_end(key)
            rows.append(row)
        found = sum(r >= 0 for r in rows)
        self.hits += found
        self.misses += len(rows) - found
        return rows

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[M, D]`` at store rows ``rows [M]`` (from :meth:`lookup`)."""
        if self._store is None:
            raise RuntimeError("The cache is empty.")
        return self._store[rows.to(self._store.device)]

    def insert(self, keys: Sequence[bytes], embeddings: torch.Tensor) -> None:
        """Store ``embeddings [M, D]`` under ``keys``, evicting the least recently used entries past the bound.

        The store is always a normal tensor, never an inference tensor, even where the first embeddings arrive under
        ``torch.inference_mode()`` (Lightning predicts in it): a store made there could not be written to by a later
        training step ("Inplace update to inference tensor outside InferenceMode").
        """
        if not self.enabled or not len(keys):
            return
        with torch.inference_mode(False):
            self._insert(keys, embeddings.detach())

    def _insert(self, keys: Sequence[bytes], embeddings: torch.Tensor) -> None:
        if self._store is None:
            entry = len(keys[0]) + embeddings[0].numel() * embeddings.element_size() + self.ENTRY_OVERHEAD
            self._capacity = self.max_bytes // entry
            if self._capacity == 0:
                return
            self._store = embeddings.new_empty((min(self._capacity, max(1024, len(keys))), embeddings.shape[1]))
        for key, embedding in zip(keys, embeddings):
            if key in self._rows:
                continue
            row = self._free_row()  # may grow (replace) the store: take the row before indexing it
            self._store[row] = embedding
            self._rows[key] = row

    def _free_row(self) -> int:
        """A row to write: the next unused one (growing the store), else the least recently used entry's."""
        used = len(self._rows)
        if used < self._capacity:
            if used == self._store.shape[0]:
                grown = min(self._capacity, 2 * used)
                store = self._store.new_empty((grown, self._store.shape[1]))
                store[:used] = self._store
                self._store = store
            return used
        _, row = self._rows.popitem(last=False)
        return row

    def to(self, device: torch.device | str) -> None:
        """Move the stored embeddings to ``device`` (the module they serve moved)."""
        if self._store is not None:
            with torch.inference_mode(False):
                self._store = self._store.to(device)

    def clear(self) -> None:
        self._rows.clear()
        self._store = None
        self._capacity = 0
        self.hits = 0
        self.misses = 0
