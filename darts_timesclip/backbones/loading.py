"""Resolve a ``backbone=`` argument to CLIP configurations, and load pretrained tower weights.

``backbone`` is one of

- a preset name (:data:`~darts_timesclip.backbones.presets.PRESETS`): random weights only;
- a local directory in ``save_pretrained`` layout of a ``CLIPModel``;
- a Hugging Face hub id such as ``"openai/clip-vit-base-patch16"``.

Resolution reads configurations only (cheap, and done when a model is constructed so that bad values fail
early); weights are loaded later by :func:`load_pretrained_towers`.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from darts_timesclip.backbones.compat import quiet_transformers
from darts_timesclip.backbones.presets import KNOWN_ARCHITECTURES, PRESETS

DEFAULT_BACKBONE = "openai/clip-vit-base-patch16"

#: Seconds to wait for a TCP connection to the hub before calling it unreachable.
HUB_PROBE_TIMEOUT = 3.0

_T = TypeVar("_T")


class BackboneNotAvailableError(OSError):
    """The CLIP backbone could be neither found locally nor downloaded."""


@dataclass(frozen=True)
class BackboneSpec:
    """A resolved backbone: where it comes from and the two tower configurations.

    Attributes
    ----------
    name
        What the user passed as ``backbone``.
    kind
        ``"preset"``, ``"directory"`` or ``"hub"``.
    pretrained
        Whether pretrained weights are to be loaded from ``name``.
    vision_config
        ``CLIPVisionConfig`` as a dictionary (``to_dict()``), enough to rebuild the tower with random weights.
    text_config
        ``CLIPTextConfig`` as a dictionary.
    """

    name: str
    kind: str
    pretrained: bool
    vision_config: dict[str, Any]
    text_config: dict[str, Any]

    @property
    def image_size(self) -> int:
        return int(self.vision_config["image_size"])

    @property
    def max_text_positions(self) -> int:
        return int(self.text_config["max_position_embeddings"])


def _how_to_fix(name: str) -> str:
    known = ", ".join(f"`{k}`" for k in KNOWN_ARCHITECTURES)
    return (
        f"What to do: run once where the hub is reachable "
        f"`transformers.CLIPModel.from_pretrained('{name}').save_pretrained(DIR)` and pass `backbone=DIR`; "
        f'or use the CPU-sized random-weight preset, `backbone="compact"`; or keep `{name}`\'s architecture with '
        f"random weights, `pretrained=False` (known offline: {known})."
    )


def hub_unreachable_reason(timeout: float = HUB_PROBE_TIMEOUT) -> str | None:
    """Why the Hugging Face hub cannot be reached from here, or ``None`` where it can (or may) be.

    ``transformers`` retries a failing hub for about half a minute before it gives up; one TCP connection with a short
    timeout answers the same question at once. The endpoint is ``$HF_ENDPOINT`` (default ``https://huggingface.co``);
    where an HTTPS proxy is configured, the proxy is probed instead. Offline mode (``HF_HUB_OFFLINE=1``) is a reason.
    """
    from huggingface_hub.constants import ENDPOINT, is_offline_mode

    if is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        return "offline mode is on (HF_HUB_OFFLINE)"
    endpoint = os.environ.get("HF_ENDPOINT") or ENDPOINT
    proxy = next(
        (os.environ[k] for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy") if k in os.environ), None
    )
    target = urllib.parse.urlsplit(proxy or endpoint)
    host, port = target.hostname, target.port or (443 if target.scheme == "https" else 80)
    if host is None:
        return None  # nothing we can probe: let the hub client try
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as err:
        return f"{'proxy ' if proxy else ''}{host}:{port} is unreachable: {err}"


def _hub_call(load: Callable[..., _T], name: str, what: str) -> _T:
    """``load(name)`` from the local cache, else from the hub where it answers; never half a minute of retries."""
    with quiet_transformers():
        try:
            return load(name, local_files_only=True)
        except OSError:
            pass  # not cached: try the hub, if it can be reached at all
        reason = hub_unreachable_reason()
        if reason is not None:
            raise BackboneNotAvailableError(
                f"Could not load {what} of the CLIP backbone `{name}`: it is not in the local Hugging Face cache and "
                f"the hub cannot be reached ({reason}). {_how_to_fix(name)}"
            )
        try:
            return load(name)
        except OSError as err:
            raise BackboneNotAvailableError(
                f"Could not load {what} of the CLIP backbone `{name}` ({type(err).__name__}: {err}). "
                f"{_how_to_fix(name)}"
            ) from err


def _configs_from_clip_config(source: str, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from transformers import CLIPConfig

    with quiet_transformers():
        config = CLIPConfig.from_pretrained(source, **kwargs)
    return config.vision_config.to_dict(), config.text_config.to_dict()


def _configs_from_preset(preset_kwargs: dict[str, Any], text_kwargs: dict[str, Any]) -> tuple[dict, dict]:
    from transformers import CLIPTextConfig, CLIPVisionConfig

    return CLIPVisionConfig(**preset_kwargs).to_dict(), CLIPTextConfig(**text_kwargs).to_dict()


def resolve_backbone(backbone: str, pretrained: bool | None = None) -> BackboneSpec:
    """Resolve ``backbone`` and ``pretrained`` to a :class:`BackboneSpec` without loading weights.

    Parameters
    ----------
    backbone
        A preset name, a local ``save_pretrained`` directory of a ``CLIPModel``, or a hub id.
    pretrained
        Load pretrained weights (``True``), use random weights (``False``), or ``None``: pretrained for
        directories and hub ids, random for presets.

    Raises
    ------
    ValueError
        For an unknown preset name, or ``pretrained=True`` with a preset.
    BackboneNotAvailableError
        For a hub id that is neither cached nor downloadable (offline).
    """
    if not isinstance(backbone, str) or not backbone:
        raise ValueError(f"`backbone` must be a non-empty string, got `{backbone!r}`.")

    if backbone in PRESETS:
        if pretrained:
            raise ValueError(
                f"`backbone='{backbone}'` is a random-weight preset and has no pretrained weights; "
                "pass `pretrained=False` (or leave it unset)."
            )
        preset = PRESETS[backbone]
        vision, text = _configs_from_preset(preset.vision, preset.text)
        return BackboneSpec(backbone, "preset", False, vision, text)

    load_weights = True if pretrained is None else bool(pretrained)
    if os.path.isdir(backbone):
        if not os.path.isfile(os.path.join(backbone, "config.json")):
            raise ValueError(
                f"`backbone='{backbone}'` is a directory without a `config.json`; it must be a "
                "`CLIPModel.save_pretrained()` directory."
            )
        vision, text = _configs_from_clip_config(backbone)
        return BackboneSpec(backbone, "directory", load_weights, vision, text)

    if "/" not in backbone:
        raise ValueError(
            f"`backbone='{backbone}'` is neither a preset ({', '.join(PRESETS)}), an existing local directory, "
            "nor a hub id of the form 'organisation/name'."
        )

    if not load_weights and backbone in KNOWN_ARCHITECTURES:
        arch = KNOWN_ARCHITECTURES[backbone]
        vision, text = _configs_from_preset(arch.vision, arch.text)
        return BackboneSpec(backbone, "hub", False, vision, text)

    from transformers import CLIPConfig

    config = _hub_call(CLIPConfig.from_pretrained, backbone, "the configuration")
    vision, text = config.vision_config.to_dict(), config.text_config.to_dict()
    return BackboneSpec(backbone, "hub", load_weights, vision, text)


def build_vision_tower(config: dict[str, Any]) -> nn.Module:
    """A randomly initialised ``CLIPVisionModel`` from a ``CLIPVisionConfig`` dictionary."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    with quiet_transformers():
        return CLIPVisionModel(CLIPVisionConfig(**tower_config_kwargs(config)))


def build_text_tower(config: dict[str, Any]) -> nn.Module:
    """A randomly initialised ``CLIPTextModel`` from a ``CLIPTextConfig`` dictionary."""
    from transformers import CLIPTextConfig, CLIPTextModel

    with quiet_transformers():
        return CLIPTextModel(CLIPTextConfig(**tower_config_kwargs(config)))


def tower_config_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """A tower configuration dictionary (``CLIPVisionConfig`` / ``CLIPTextConfig.to_dict()``) as keyword arguments
    of its config class, or of ``CLIPConfig(text_config=..., vision_config=...)``: without the bookkeeping keys
    (``model_type``, ``transformers_version``, ...) that ``to_dict()`` adds and the constructors do not take back."""
    drop = {"model_type", "transformers_version", "architectures", "_name_or_path"}
    return {k: v for k, v in config.items() if k not in drop}


def load_pretrained_towers(backbone: str) -> tuple[nn.Module, nn.Module]:
    """Load the pretrained ``CLIPVisionModel`` and ``CLIPTextModel`` of ``backbone`` (a hub id or a directory).

    Raises
    ------
    BackboneNotAvailableError
        Where the weights cannot be found locally nor downloaded.
    """
    from transformers import CLIPTextModel, CLIPVisionModel

    if os.path.isdir(backbone):
        try:
            with quiet_transformers():
                return CLIPVisionModel.from_pretrained(backbone), CLIPTextModel.from_pretrained(backbone)
        except OSError as err:
            raise BackboneNotAvailableError(
                f"Could not load the weights of the CLIP backbone directory `{backbone}` ({type(err).__name__}: "
                f"{err}). It must hold what `CLIPModel.save_pretrained` writes (`config.json` and the weights)."
            ) from err
    vision = _hub_call(CLIPVisionModel.from_pretrained, backbone, "the weights")
    text = _hub_call(CLIPTextModel.from_pretrained, backbone, "the weights")
    return vision, text
