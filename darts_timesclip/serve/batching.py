"""Micro-batching: requests that arrive within a few milliseconds of each other share one forward pass."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

_STOP = object()


class BatcherStopped(RuntimeError):
    """The batcher no longer takes work (the service is shutting down)."""


class MicroBatcher:
    """Gathers submitted items into batches and runs each batch in one call, on a worker thread of its own.

    A batch starts with the first item waiting and takes every item submitted within ``wait_s`` of it, up to
    ``max_batch`` items; items that queued while the previous batch ran are taken at once. ``run_batch(items)``
    returns one result (or exception) per item, which completes that item's future.

    Parameters
    ----------
    run_batch
        Called with a list of items, returns a list of the same length: a result or an ``Exception`` per item.
    max_batch
        Most items per batch.
    wait_s
        Longest wait for further items after the first of a batch.
    on_batch
        Called after each batch with ``(size, seconds)`` (metrics).
    """

    def __init__(
        self,
        run_batch: Callable[[list[Any]], Sequence[Any]],
        max_batch: int = 64,
        wait_s: float = 0.002,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"`max_batch` must be a positive integer, got `{max_batch}`.")
        if wait_s < 0:
            raise ValueError(f"`wait_s` must be >= 0, got `{wait_s}`.")
        self.run_batch, self.max_batch, self.wait_s, self.on_batch = run_batch, max_batch, wait_s, on_batch
        self._queue: queue.Queue = queue.Queue()
        self._accepting = False
        self._submit_lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="forecast-batcher", daemon=True)

    def start(self) -> None:
        self._accepting = True
        self._thread.start()

    def submit(self, item: Any) -> Future:
        """Queue ``item``; its future completes with its result (or raises its exception)."""
        future: Future = Future()
        with self._submit_lock:
            if not self._accepting:
                raise BatcherStopped("the service is shutting down")
            self._queue.put((item, future))
        return future

    def stop(self, timeout: float | None = None) -> None:
        """Take no more work, answer everything queued, and end the worker."""
        with self._submit_lock:
            if not self._accepting:
                return
            self._accepting = False
            self._queue.put(_STOP)
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stopping = False
            deadline = time.monotonic() + self.wait_s
            while len(batch) < self.max_batch:
                try:
                    remaining = deadline - time.monotonic()
                    entry = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if entry is _STOP:  # the last entry: `submit` queues nothing once `stop` has queued it
                    stopping = True
                    break
                batch.append(entry)
            self._run(batch)
            if stopping:
                return

    def _run(self, batch: list[tuple[Any, Future]]) -> None:
        start = time.perf_counter()
        try:
            results = self.run_batch([item for item, _ in batch])
        except Exception as err:  # noqa: BLE001 - every waiting request must hear of it
            results = [err] * len(batch)
        for (_, future), result in zip(batch, results):
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - start)
