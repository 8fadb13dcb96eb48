"""``TimesCLIPConfig``: every hyperparameter of the TimesCLIP network, documented and validated once.

The Darts model and the pytorch-forecasting adapter translate their own arguments into one config and pass it
down; nothing else lists the settings. A new hyperparameter is a new field here (with its ``doc``), plus the code
that uses it: both wrappers accept it as a keyword argument and show its documentation without further edits.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from darts_timesclip._checks import check_positive_int
from darts_timesclip.backbones.loading import DEFAULT_BACKBONE, resolve_backbone
from darts_timesclip.config_options import DocumentedConfig, document_parameters, option
from darts_timesclip.network.image_encodings import IMAGE_ENCODINGS
from darts_timesclip.network.normalization import AFFINE_KINDS, NORMALIZATIONS, PARAMETER_KINDS
from darts_timesclip.network.patching import num_patches

#: What the contrastive loss aligns (see ``TimesCLIPConfig.alignment``).
ALIGNMENTS = ("variate", "sample", "hybrid")

#: Version of the config layout; a checkpoint made with another version is refused with a clear error.
CONFIG_VERSION = 2

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class TimesCLIPConfig(DocumentedConfig):
    """Hyperparameters of :class:`~darts_timesclip.network.TimesCLIPNetwork`.

    Built by the wrappers from their arguments (``TimesCLIPModel``, the pytorch-forecasting ``TimesCLIP``), or
    directly for the pure-torch network. Every value is checked when the config is created; an invalid one raises a
    ``ValueError`` that names the parameter, as the caller calls it, and the value. ``to_dict`` / ``from_dict``
    round-trip it (checkpoints store the dictionary). The backbone is resolved on creation (configurations only,
    no weights), so a config carries the two tower configurations and rebuilds the network without the backbone's
    files.

    Parameters
    ----------
    input_chunk_length
        Window length ``L``.
    output_chunk_length
        Forecast length ``H``.
    n_targets
        Number of leading variates of a window that are forecast; the others (covariates) are seen, not forecast.
    parameter_kinds
        One entry of ``PARAMETER_KINDS`` per forecast parameter: how it returns to the input's scale
        (``("location",)`` for point forecasts, ``("location", "softplus_scale")`` for a Gaussian, ...). Kinds other
        than ``"location"`` and ``"softplus_scale"`` need ``normalization="adaptive"``.
    {parameters}
    vision_config, text_config
        ``CLIPVisionConfig`` / ``CLIPTextConfig`` dictionaries. Default: resolved from ``backbone``.
    argument_names
        What the caller calls the parameters in error messages, e.g. ``{"input_chunk_length": "context_length"}``
        for pytorch-forecasting. Not part of the config's value (not compared, not serialised).
    """

    input_chunk_length: int
    output_chunk_length: int
    n_targets: int = 1
    parameter_kinds: tuple[str, ...] = ("location",)
    backbone: str = option(
        DEFAULT_BACKBONE,
        "CLIP backbone: a hub id, a local directory saved with ``CLIPModel.save_pretrained``, or a random-weight "
        'preset (``"compact"``, a CPU-sized model; ``"tiny"``, for tests). '
        'Default: ``"openai/clip-vit-base-patch16"``, the paper\'s.',
    )
    pretrained: bool | None = option(
        None,
        "Load the backbone's pretrained weights (``True``) or use its architecture with random weights "
        "(``False``). Default: ``None``, pretrained for hub ids and directories, random for presets.",
    )
    patch_length: int = option(16, "Length of the patches of the numeric view.")
    patch_stride: int = option(8, "Step between patches (at most ``patch_length``).")
    use_vision: bool = option(True, "Use the chart (vision) view.")
    use_numeric: bool = option(
        True,
        "Use the numeric (text-tower) view. ``False`` is the vision-only ablation: each variate is forecast from "
        "its image token (needs ``use_vision=True`` and ``use_alignment=False``).",
    )
    use_alignment: bool = option(True, "Add the contrastive alignment loss between the two views (needs both views).")
    alignment: str = option(
        "variate",
        "What the contrastive loss aligns: ``\"variate\"``, each variate's chart with its numbers (the batch's "
        "other windows as negatives; the paper's); ``\"sample\"``, a window's variates pooled, one ``[B, B]`` "
        'similarity; ``"hybrid"``, ``alignment_mix`` x variate + (1 - ``alignment_mix``) x global, where global '
        "aligns the concatenated variates of a window.",
    )
    alignment_mix: float = option(0.5, 'Share of the per-variate loss in ``alignment="hybrid"`` (in [0, 1]).')
    use_variate_selection: bool = option(
        True,
        "Use the variate-selection block; without it each variate's summary token (plus its image embedding) "
        "feeds the generator directly.",
    )
    alignment_weight: float | str = option(
        0.1,
        "Weight of the alignment loss: loss = forecast loss + ``alignment_weight`` x alignment loss (paper: 0.1); "
        'or ``"auto"``: both losses weighted by learnt homoscedastic uncertainties (Kendall et al., 2018), the '
        "alignment's weight relative to the forecast's kept at 0.01 or more, and logged as "
        "``{stage}_alignment_weight``.",
    )
    temperature: float = option(0.07, "Initial temperature of the contrastive loss (learnt; CLIP's start).")
    freeze_vision: bool = option(
        True, "Keep the CLIP vision tower frozen (paper). Only a frozen tower caches its embeddings."
    )
    text_tower_lr: float = option(
        1e-4,
        "Learning rate of the pretrained text transformer; every other trainable parameter uses the wrapper's "
        "learning rate (paper: 1e-4 against 1e-3).",
    )
    cosine_schedule: bool = option(
        True,
        "Decay every learning rate to 0 by a per-step cosine over all training steps, where the wrapper has no "
        "scheduler of its own (Darts: no ``lr_scheduler_cls``).",
    )
    text_tower_width: int | None = option(
        None,
        "Width of the numeric view's text tower when it has random weights (a preset, or ``pretrained=False``): "
        "hidden size ``D``, feed-forward ``4 D``, ``D / 32`` attention heads (at least one). ``None``: the "
        "backbone's. Pretrained towers keep their shape.",
    )
    text_tower_layers: int | None = option(
        None,
        "Depth (transformer layers) of the numeric view's text tower when it has random weights. ``None``: the "
        "backbone's.",
    )
    normalization: str | None = option(
        None,
        'How windows are normalised and forecasts returned to scale: ``"instance"``, each variate of each window by '
        'its own mean and standard deviation (the paper\'s); ``"adaptive"``, the towers see the same normalised '
        "windows, but forecasts return to scale through a learnt blend, per target variate, of the window's statistics "
        "and running reference statistics of the training windows, and the window's statistics relative to the "
        "reference reach the generator as one more token (calibrated probabilistic forecasts; families beyond "
        'location-scale need it). ``None``: ``"instance"`` for point forecasts (one ``"location"`` output), '
        '``"adaptive"`` for every likelihood.',
    )
    dropout: float = option(0.1, "Dropout of the variate selection and the generator.")
    embedding_cache_mb: float = option(
        1024.0, "Memory bound, in MiB, of the cache of frozen vision embeddings (per chart); ``0`` disables it."
    )
    vision_chunk_size: int = option(
        256, "Charts rendered and encoded per pass; lower it for many variates on a small GPU."
    )
    image_encoding: str = option(
        "line",
        "How the vision tower sees a window: ``\"line\"``, a line chart in the variate's colour (the paper's); "
        '``"gasf"`` / ``"gadf"``, Gramian angular summation / difference fields; ``"periodic"``, '
        "VisionTS' grid of the window folded by its ``period``.",
    )
    period: int | None = option(
        None,
        'Period of the ``"periodic"`` encoding, in time steps. ``None``: the Darts model derives it from the '
        "training series' frequency (24 for hourly data, 7 for daily, ...); the network itself needs it set.",
    )
    vision_config: dict[str, Any] | None = field(default=None, repr=False)
    text_config: dict[str, Any] | None = field(default=None, repr=False)
    argument_names: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    # ------------------------------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        name = self.argument_name
        integers = ("input_chunk_length", "output_chunk_length", "n_targets", "patch_length", "patch_stride")
        for key in (*integers, "vision_chunk_size"):
            check_positive_int(name(key), getattr(self, key))
            object.__setattr__(self, key, int(getattr(self, key)))  # numpy integers become plain ints
        switches = ("use_vision", "use_numeric", "use_alignment", "use_variate_selection", "freeze_vision")
        for key in (*switches, "cosine_schedule"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"`{name(key)}` must be True or False, got `{getattr(self, key)!r}`.")
        if self.pretrained is not None and not isinstance(self.pretrained, bool):
            raise ValueError(f"`{name('pretrained')}` must be True, False or None, got `{self.pretrained!r}`.")

        length = self.input_chunk_length
        if length < 2:
            raise ValueError(
                f"`{name('input_chunk_length')}` must be at least 2 (a chart needs two points), got {length}."
            )
        if self.patch_length > length:
            raise ValueError(
                f"`{name('patch_length')}={self.patch_length}` is longer than `{name('input_chunk_length')}={length}`."
            )
        if self.patch_stride > self.patch_length:
            raise ValueError(
                f"`{name('patch_stride')}={self.patch_stride}` is longer than `{name('patch_length')}="
                f"{self.patch_length}`: values would be skipped."
            )
        if self.alignment_weight != "auto":
            if isinstance(self.alignment_weight, str):
                raise ValueError(
                    f"`{name('alignment_weight')}` must be a number >= 0 or 'auto', got `{self.alignment_weight!r}`."
                )
            _check_real(name("alignment_weight"), self.alignment_weight, minimum=0.0, inclusive=True)
        _check_real(name("embedding_cache_mb"), self.embedding_cache_mb, minimum=0.0, inclusive=True)
        if not (_is_real(self.alignment_mix) and 0 <= self.alignment_mix <= 1):
            raise ValueError(f"`{name('alignment_mix')}` must be in [0, 1], got {self.alignment_mix}.")
        for key, allowed in (("alignment", ALIGNMENTS), ("image_encoding", IMAGE_ENCODINGS)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"`{name(key)}` must be one of {allowed}, got `{getattr(self, key)!r}`.")
        if self.period is not None:
            check_positive_int(name("period"), self.period)
            object.__setattr__(self, "period", int(self.period))
        _check_real(name("text_tower_lr"), self.text_tower_lr, minimum=0.0, inclusive=False)
        _check_real(name("temperature"), self.temperature, minimum=0.0, inclusive=False)
        if not (_is_real(self.dropout) and 0 <= self.dropout < 1):
            raise ValueError(f"`{name('dropout')}` must be in [0, 1), got {self.dropout}.")
        if not (self.use_vision or self.use_numeric):
            raise ValueError(
                f"`{name('use_vision')}=False` and `{name('use_numeric')}=False` leave no view to forecast from."
            )
        for view in ("use_vision", "use_numeric"):
            if self.use_alignment and not getattr(self, view):
                raise ValueError(
                    f"`{name('use_alignment')}=True` needs `{name(view)}=True`; pass "
                    f"`{name('use_alignment')}=False` without {'vision' if view == 'use_vision' else 'numbers'}."
                )
        kinds = tuple(self.parameter_kinds)
        if not kinds or any(k not in PARAMETER_KINDS for k in kinds):
            raise ValueError(f"`parameter_kinds` must be a non-empty tuple of {PARAMETER_KINDS}, got {kinds}.")
        object.__setattr__(self, "parameter_kinds", kinds)
        object.__setattr__(self, "argument_names", dict(self.argument_names))
        if self.normalization is None:
            object.__setattr__(self, "normalization", "instance" if kinds == ("location",) else "adaptive")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"`{name('normalization')}` must be one of {NORMALIZATIONS} or None, got `{self.normalization!r}`."
            )
        scale_only = sorted({k for k in kinds if k not in AFFINE_KINDS})
        if scale_only and self.normalization != "adaptive":
            raise ValueError(
                f"`{name('normalization')}='{self.normalization}'` cannot return parameters of kinds {scale_only} to "
                f"scale: they depend on the window's level, which instance normalisation hides from the network; pass "
                f"`{name('normalization')}='adaptive'` (or None)."
            )

        if (self.vision_config is None) != (self.text_config is None):
            raise ValueError("`vision_config` and `text_config` must be given together (or both left None).")
        for key in ("text_tower_width", "text_tower_layers"):
            if getattr(self, key) is not None:
                check_positive_int(name(key), getattr(self, key))
                object.__setattr__(self, key, int(getattr(self, key)))
        if self.vision_config is None:  # resolve the backbone: configurations only, no weights
            spec = resolve_backbone(self.backbone, self.pretrained)
            object.__setattr__(self, "pretrained", spec.pretrained)
            object.__setattr__(self, "vision_config", dict(spec.vision_config))
            object.__setattr__(self, "text_config", self._sized_text_config(dict(spec.text_config)))
        elif self.pretrained is None:
            object.__setattr__(self, "pretrained", False)

        tokens = self.n_patches + 1
        positions = int(self.text_config["max_position_embeddings"])
        if tokens > positions:
            raise ValueError(
                f"`{name('input_chunk_length')}={length}` with `{name('patch_length')}={self.patch_length}` and "
                f"`{name('patch_stride')}={self.patch_stride}` gives {tokens - 1} patches plus a summary token, more "
                f"than the {positions} positions of `{self.backbone}`'s text tower; increase "
                f"`{name('patch_length')}` or `{name('patch_stride')}`."
            )
        width, heads = int(self.text_config["hidden_size"]), int(self.text_config["num_attention_heads"])
        if width % heads:
            raise ValueError(f"The text tower's width {width} is not divisible by its {heads} attention heads.")

    def _sized_text_config(self, text_config: dict[str, Any]) -> dict[str, Any]:
        """The text tower's configuration with ``text_tower_width`` / ``text_tower_layers`` applied."""
        width, layers = self.text_tower_width, self.text_tower_layers
        if width is None and layers is None:
            return text_config
        if self.pretrained:
            which = "text_tower_width" if width is not None else "text_tower_layers"
            raise ValueError(
                f"`{self.argument_name(which)}` resizes a random-weight text tower, but `{self.backbone}` loads "
                f"pretrained weights; pass `{self.argument_name('pretrained')}=False` or leave it unset."
            )
        if width is not None:
            text_config.update(hidden_size=width, intermediate_size=4 * width, num_attention_heads=max(1, width // 32))
        if layers is not None:
            text_config["num_hidden_layers"] = layers
        return text_config

    def argument_name(self, key: str) -> str:
        """What the caller calls the config field ``key`` (for error messages)."""
        return self.argument_names.get(key, key)

    # ------------------------------------------------------------------------------------------ derived
    @property
    def n_patches(self) -> int:
        """Patches per window of the numeric view."""
        return num_patches(self.input_chunk_length, self.patch_length, self.patch_stride)

    @property
    def min_input_length(self) -> int:
        """Shortest series the network encodes: one patch, and two points for a chart."""
        return max(2, self.patch_length) if self.use_numeric else 2

    @property
    def max_input_length(self) -> int | None:
        """Longest series the numeric tower encodes (its patches and summary token fill the text tower's positions);
        ``None`` without the numeric view (charts are drawn at any length)."""
        if not self.use_numeric:
            return None
        positions = int(self.text_config["max_position_embeddings"])
        # num_patches(L) = (L - P) // S + 2 <= positions - 1
        return self.patch_length + (positions - 2) * self.patch_stride - 1

    @property
    def width(self) -> int:
        """Token width ``D`` (the text tower's hidden size)."""
        return int(self.text_config["hidden_size"])

    @property
    def embedding_cache_bytes(self) -> int:
        return int(self.embedding_cache_mb * 2**20)

    # ------------------------------------------------------------------------------------------ (de)serialising
    def replace(self, **changes: Any) -> TimesCLIPConfig:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dictionary of the config, with its layout version (``from_dict`` takes it back)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "argument_names"}
        values["parameter_kinds"] = list(self.parameter_kinds)
        values["config_version"] = CONFIG_VERSION
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], **argument_names: str) -> TimesCLIPConfig:
        """Rebuild a config from :meth:`to_dict`'s output.

        Raises
        ------
        ValueError
            For a dictionary of another config version (a checkpoint made before this layout) or unknown keys.
        """
        values = dict(values)
        version = values.pop("config_version", None)
        if version != CONFIG_VERSION:
            raise ValueError(
                f"This TimesCLIP config (or checkpoint) has config version {version!r}; this darts-timesclip reads "
                f"version {CONFIG_VERSION}. Checkpoints saved by darts-timesclip 0.1 cannot be loaded: retrain the "
                "model (or load it with the version that saved it)."
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown TimesCLIP config keys {unknown}; known: {sorted(known)}.")
        values["parameter_kinds"] = tuple(values.get("parameter_kinds", ("location",)))
        values.setdefault("normalization", "instance")  # saved before the option existed: the paper's
        return cls(**values, argument_names=argument_names)


#: The paper, as both wrappers' docstrings cite it (``[1]_``).
REFERENCES = """References
----------
.. [1] S. Dong, W. Fan, T. Wu, Y. Fu, "Teaching Time Series to See and Speak: Forecasting with Aligned
       Visual and Textual Perspectives", arXiv:2506.24124, 2025."""


def document_config_parameters(func: _F) -> _F:
    """Fill the ``{timesclip_parameters}`` and ``{timesclip_references}`` lines of ``func``'s docstring.

    The wrappers' public docstrings share the config's parameter entries and the paper's reference this way.
    """
    return document_parameters(
        {"{timesclip_parameters}": TimesCLIPConfig.parameters_doc, "{timesclip_references}": lambda: REFERENCES}
    )(func)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_real(name: str, value: Any, minimum: float, inclusive: bool) -> None:
    ok = _is_real(value) and (value >= minimum if inclusive else value > minimum)
    if not ok:
        raise ValueError(f"`{name}` must be {'>=' if inclusive else '>'} {minimum:g}, got {value}.")


TimesCLIPConfig.__doc__ = TimesCLIPConfig.__doc__.replace("{parameters}", TimesCLIPConfig.parameters_doc(indent=4))
