"""Optional dependencies: which extra brings what, and an error that says which one to install."""

from __future__ import annotations

import importlib

#: extra name -> modules it brings that the package imports
EXTRAS: dict[str, tuple[str, ...]] = {
    "serve": ("fastapi", "uvicorn", "prometheus_client"),
    "onnx": ("onnx", "onnxscript"),
    "onnxruntime": ("onnxruntime",),
    "pytorch-forecasting": ("pytorch_forecasting", "lightning"),
    "benchmark": ("neuralforecast",),
}

#: The extra that installs each importable name above (``onnxruntime`` comes with the ``onnx`` extra).
_INSTALLED_BY = {"onnxruntime": "onnx"}


class MissingExtraError(ModuleNotFoundError):
    """A feature's optional dependencies are not installed; the message names the extra that brings them."""


def require_extra(extra: str, feature: str) -> None:
    """Import the modules of ``extra``, or raise :class:`MissingExtraError` naming it.

    Parameters
    ----------
    extra
        A key of :data:`EXTRAS`.
    feature
        What needs it, for the message (e.g. "`darts-timesclip serve`").

    Raises
    ------
    MissingExtraError
        Where one of the extra's modules cannot be imported.
    """
    if extra not in EXTRAS:
        raise ValueError(f"Unknown extra `{extra}`; known: {sorted(EXTRAS)}.")
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError as err:
            package = _INSTALLED_BY.get(extra, extra)
            raise MissingExtraError(
                f"{feature} needs the `{package}` extra, and `{module}` cannot be imported ({err}). Install it with "
                f'`pip install "darts-timesclip[{package}]"` (from a clone: `pip install ".[{package}]"`).',
                name=module,
            ) from err
