"""What this package's models print: a progress bar (or nothing), not the dependencies' chatter.

Every Darts ``fit``, ``predict`` and ``historical_forecasts`` builds a Lightning trainer, and every trainer logs a
banner ("GPU available: ...", "TPU available: ...", an advertisement for litlogger), "Loading `train_dataloader` to
estimate number of stepping batches" and "`Trainer.fit` stopped: ..." at INFO, and warns about version skew between
Lightning and torch and about pinned memory without an accelerator. An ONNX export prints its progress and warns that
torchvision is missing. None of it is actionable for a forecaster's user.

:func:`quiet_lightning` and :func:`quiet_onnx_export` silence exactly those messages, for the duration of one call,
and restore the loggers' levels and the warning filters afterwards. Lightning's warnings that matter (a failing
dataloader, a bad argument) and every error still show; ``-v`` users of Lightning can read its INFO messages by
setting ``logging.getLogger("pytorch_lightning").setLevel(logging.INFO)`` themselves outside these calls.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: Loggers whose INFO messages are Lightning's banner, tips and loop notices.
LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning")

#: Warnings every trainer raises whatever the user does (message regular expressions).
LIGHTNING_NOISE = (
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",  # Lightning 2.6 against torch 2.13's pytree
    r".*'pin_memory' argument is set as true but no accelerator is found.*",  # Darts pins memory by default
    r".*Total length of `.*` across ranks is zero.*",  # no validation series
    r".*does not have many workers which may be a bottleneck.*",
    r".*The number of training batches \(\d+\) is smaller than the logging interval.*",
)

#: The ONNX exporter's loggers (torchvision's missing operators are announced at WARNING).
ONNX_LOGGERS = ("torch.onnx", "torch.onnx._internal.exporter._registration")


@contextmanager
def _levels(names: tuple[str, ...], level: int) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        if logger.getEffectiveLevel() < level:
            logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, before):
            logger.setLevel(old)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Within the block, Lightning logs warnings and errors only, and its unavoidable warnings are not shown."""
    with _levels(LIGHTNING_LOGGERS, logging.WARNING), warnings.catch_warnings():
        for pattern in LIGHTNING_NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        yield


@contextmanager
def quiet_onnx_export() -> Iterator[None]:
    """Within the block, an ONNX export logs errors only (no progress lines, no "torchvision is not installed")."""
    with _levels(ONNX_LOGGERS, logging.ERROR), quiet_lightning():
        yield
