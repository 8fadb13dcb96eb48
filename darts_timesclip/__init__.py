"""darts-timesclip: the TimesCLIP forecaster (arXiv 2506.24124) for Darts."""

from darts_timesclip.backbones import PRESETS, BackboneNotAvailableError, resolve_backbone
from darts_timesclip.model import TimesCLIPModel
from darts_timesclip.network import TimesCLIPNetwork

__version__ = "0.1.0"

__all__ = [
    "PRESETS",
    "BackboneNotAvailableError",
    "TimesCLIPModel",
    "TimesCLIPNetwork",
    "resolve_backbone",
    "__version__",
]


def _register_safe_globals() -> None:
    """Let ``TimesCLIPModel.load`` work without ``trusted=True`` (Darts' restricted unpickler)."""
    try:
        from darts.utils.serialization import add_safe_globals
    except ImportError:  # pragma: no cover - darts without safe loading
        return
    from darts_timesclip.backbones.loading import BackboneSpec

    add_safe_globals([TimesCLIPModel, BackboneSpec])


_register_safe_globals()
