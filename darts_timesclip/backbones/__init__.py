"""CLIP backbones for TimesCLIP: presets, loading from the hub or a local directory, version differences."""

from darts_timesclip.backbones.loading import (
    DEFAULT_BACKBONE,
    BackboneNotAvailableError,
    BackboneSpec,
    build_text_tower,
    build_vision_tower,
    load_pretrained_towers,
    resolve_backbone,
    tower_config_kwargs,
)
from darts_timesclip.backbones.presets import KNOWN_ARCHITECTURES, PRESETS, BackbonePreset

__all__ = [
    "DEFAULT_BACKBONE",
    "KNOWN_ARCHITECTURES",
    "PRESETS",
    "BackboneNotAvailableError",
    "BackbonePreset",
    "BackboneSpec",
    "build_text_tower",
    "build_vision_tower",
    "load_pretrained_towers",
    "resolve_backbone",
    "tower_config_kwargs",
]
