"""Model configurations and factories; every model's hyperparameters live here and only here.

Baselines use the authors' scripts (see ``../shared/ANCHORS.md``, next to the repository):

- NLinear: LTSF-Linear ``scripts/EXP-LongForecasting/Linear/*.sh`` (one linear layer shared by all
  channels, i.e. ``individual=False`` = Darts ``shared_weights=True``; Adam; 10 epochs, patience 3,
  learning rate halved every epoch after the first, ``lradj=type1``; per-dataset rate and batch).
- DLinear: Time-Series-Library's L = 96 scripts (``scripts/long_term_forecast/*/DLinear*.sh``), the
  setup behind the published L = 96 numbers: ``run.py`` defaults (rate 1e-4, batch 32, 10 epochs,
  patience 3, ``type1``), shared layers initialised to the mean (TSLib's ``DLinear.py``). LTSF-Linear's
  own scripts (rates up to 0.05) are tuned for L = 336; see ``results/NOTES.md``.
- PatchTST: ``PatchTST_supervised/scripts`` (``run_longExp.py`` defaults: RevIN without affine,
  subtract-mean, end padding, 100 epochs, patience 100, ``lradj=type3``).
- iTransformer: ``scripts/multivariate_forecasting`` (``run.py`` defaults: 8 heads, dropout 0.1,
  10 epochs, patience 3, learning rate 1e-4, batch 32, ``lradj=type1``).
- VQTransformer: the project's original VQ-VAE + causal Transformer scripts (codebook 256, compression 4,
  ``d_model`` 128, 3 layers, 8 heads, ``d_ff`` 256, dropout 0.1, learning rate 1e-4), context 512 scaled to the
  protocol's 96 (128 tokens become 24); code and tokenizer widths (64, 128) and the stages' rate 1e-3 are TOTEM's;
  10 epochs per stage, fine-tune with patience 3 and ``type1`` as the Time-Series-Library baselines.
- TimesCLIP: the paper's training setup (AdamW, cosine decay to 0, 100 epochs, batch 64, learning
  rate 1e-3 for the new modules, alignment weight 0.1, patience 30).

All models are Darts ``TorchForecastingModel`` s; PatchTST and iTransformer are neuralforecast's,
wrapped by Darts' ``NeuralForecastModel``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from darts.utils.serialization import add_safe_globals

if TYPE_CHECKING:
    from darts.models.forecasting.forecasting_model import ForecastingModel

Family = Literal["darts", "neuralforecast", "timesclip", "vq", "external"]
Scale = Literal["official", "tiny"]
LRSchedule = Literal["type1", "type3", "constant", "tst", "cosine"]

TIMESCLIP_CONFIGURATIONS: dict[str, dict[str, Any]] = {
    "full": {},
    "no-alignment": {"use_alignment": False},
    "no-variate-selection": {"use_variate_selection": False},
    "language-only": {"use_vision": False, "use_alignment": False},
    "vision-only": {"use_numeric": False, "use_alignment": False},
    "sample-alignment": {"alignment": "sample"},
    "hybrid-alignment": {"alignment": "hybrid", "alignment_mix": 0.5},
    "auto-weight": {"alignment_weight": "auto"},
    "gasf": {"image_encoding": "gasf"},
    "periodic": {"image_encoding": "periodic"},
}
"""TimesCLIP's configurations, the one table of them: name -> the ``TimesCLIPModel`` arguments it changes from
``full`` (the paper's model: both views, per-variate alignment with weight 0.1, variate selection, line charts).

============================  =====================================================================================
``full``                      both views, per-variate alignment (weight 0.1), variate selection, line charts
``no-alignment``              no contrastive loss
``no-variate-selection``      no cross-variate attention (the generator reads each variate's own tokens)
``language-only``             numeric view alone (no vision tower, hence no alignment)
``vision-only``               image view alone (no numeric tower, hence no alignment)
``sample-alignment``          one ``[B, B]`` similarity over a window's pooled variates
``hybrid-alignment``          0.5 x per-variate + 0.5 x whole-window alignment
``auto-weight``               learnt uncertainty weighting of the two losses instead of 0.1
``gasf``                      Gramian angular summation field images instead of line charts
``periodic``                  VisionTS-style grid of the window folded by the dataset's natural period
============================  =====================================================================================

The model of configuration ``c`` is named ``timesclip-c`` (the ablation study's names, in its run ids); the suite's
``timesclip`` is ``full`` under the name its results have always had.
"""

TIMESCLIP_MODELS: dict[str, str] = {
    "timesclip": "full",
    **{f"timesclip-{configuration}": configuration for configuration in TIMESCLIP_CONFIGURATIONS},
}
"""TimesCLIP model name -> its configuration in ``TIMESCLIP_CONFIGURATIONS``."""

RENAMED_MODELS: dict[str, str] = {"timesclip-no-vision": "timesclip-language-only"}
"""Former model names -> today's: result files written under a former name are read as today's model."""

BASELINES = ("nlinear", "dlinear", "patchtst", "itransformer")
OTHER_MODELS = ("vqtransformer",)
"""This package's second model (``VQTransformerModel``): run on request and in the quick tier."""
PROBABILISTIC_BASELINES = ("tide",)
"""Darts models run beside the baselines in the probabilistic study (``python -m benchmarks probabilistic``)."""
TUNED_MODELS = ("timesclip-tuned", *(f"{name}-tuned" for name in BASELINES))
"""A model with the configuration its validation-split search found (``python -m benchmarks tune``)."""
MODEL_NAMES: tuple[str, ...] = (
    *TIMESCLIP_MODELS,
    *BASELINES,
    *OTHER_MODELS,
    *PROBABILISTIC_BASELINES,
    *TUNED_MODELS,
)
"""Every model name the suite accepts (besides a factory of one's own, see :func:`external_config`)."""

DEFAULT_MODELS = ("timesclip", *BASELINES)
"""The five models of the comparison."""


@dataclass(frozen=True)
class TrainingCaps:
    """Compute budget of one job: caps applied on top of a model's own training setup.

    Parameters
    ----------
    max_epochs
        Upper bound on epochs (the model's configured epochs otherwise). Default: ``None``.
    max_steps
        Upper bound on optimiser steps. Default: ``None``.
    max_samples_per_ts
        Train and validate on at most this many (the most recent) windows of each split, Darts'
        ``max_samples_per_ts``. Default: ``None`` (all windows).
    """

    max_epochs: int | None = None
    max_steps: int | None = None
    max_samples_per_ts: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_epochs", "max_steps", "max_samples_per_ts"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"`{name}` must be a positive integer or None, got `{value}`.")

    def to_dict(self) -> dict[str, int | None]:
        """Plain-dict form, for result files and run ids."""
        return asdict(self)

    def override(self, other: TrainingCaps | None) -> TrainingCaps:
        """These caps with each cap that ``other`` sets put in place of this one's (``None``: unchanged)."""
        if other is None:
            return self
        return TrainingCaps(**{k: self.to_dict()[k] if v is None else v for k, v in other.to_dict().items()})


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines one model's training run, apart from data, seed and budget.

    Parameters
    ----------
    name
        Model name as in the results tables (``MODEL_NAMES``, or the name given to a factory of one's own).
    family
        Which factory builds it (``external``: the factory named in ``architecture["factory"]``).
    architecture
        Architecture keyword arguments of the underlying model.
    n_epochs, batch_size, learning_rate
        Training setup.
    patience
        Early-stopping patience in epochs on the validation loss; ``None`` for no early stopping.
    lr_schedule
        Learning-rate schedule: Time-Series-Library's ``type1`` (halve every epoch after the first),
        ``type3`` (constant for 4 epochs, then x0.9 per epoch), ``constant``, ``tst`` (one-cycle
        over all steps, PatchTST's ``TST``) or ``cosine`` (to 0; TimesCLIPModel's own per-step decay).
    pct_start
        Warm-up fraction of the ``tst`` schedule.
    optimizer
        ``adam`` or ``adamw``.
    weight_decay
        The optimizer's weight decay; ``None``: its default (Adam 0, AdamW 0.01).
    source
        Where the hyperparameters come from.
    backbone
        TimesCLIP's CLIP backbone (preset, hub id or directory); ``n/a`` for baselines.
    pretrained
        Whether the backbone starts from pretrained weights.
    """

    name: str
    family: Family
    architecture: dict[str, Any] = field(default_factory=dict)
    n_epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-4
    patience: int | None = 3
    lr_schedule: LRSchedule = "type1"
    pct_start: float = 0.3
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float | None = None
    source: str = ""
    backbone: str = "n/a"
    pretrained: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form, for result files."""
        return copy.deepcopy(asdict(self))

    def config_hash(self) -> str:
        """Short stable hash of the configuration (independent of the Python process and of where it runs).

        A backbone directory enters by its contents, not its path (see :func:`backbone_identity`), so that a
        study's results directory, cloned or moved elsewhere with its backbones, resumes its finished jobs.
        """
        payload = self.to_dict()
        payload["backbone"] = backbone_identity(self.backbone)
        for key, default in _LATER_FIELDS.items():  # fields added later enter ids only when set
            if payload.get(key) == default:
                payload.pop(key)
        return stable_hash(payload)


#: Fields added to ``ModelConfig`` after results were committed, with the default that leaves a job's id unchanged.
_LATER_FIELDS: dict[str, Any] = {"weight_decay": None}


def backbone_identity(backbone: str) -> str:
    """How a TimesCLIP backbone enters a job's id.

    A preset or hub id enters as named, a preset name even where a directory of that name exists, as the model's
    loader (:mod:`darts_timesclip.backbones.loading`) reads it. A local backbone directory (one holding a
    ``config.json``) enters as ``dir:<digest>``, a SHA-256 over its ``config.json`` and weight files
    (``*.safetensors``, ``*.bin``): the same weights give the same id wherever the directory lies, and different
    weights under the same path never share one. Bookkeeping files (``pretraining.json``, a resume
    ``checkpoint.pt``) are left out.
    """
    from darts_timesclip.backbones.presets import PRESETS

    path = Path(backbone).expanduser()
    if backbone in PRESETS or not (path / "config.json").is_file():
        return backbone
    files = sorted(
        f for f in path.iterdir() if f.is_file() and (f.name == "config.json" or f.suffix in (".safetensors", ".bin"))
    )
    stamp = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return "dir:" + _directory_digest(str(path.resolve()), stamp)


@functools.lru_cache(maxsize=64)
def _directory_digest(path: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    """SHA-256 over the named files of ``path``; ``stamp`` (names, sizes, mtimes) keys the cache."""
    digest = hashlib.sha256()
    for name, _, _ in stamp:
        digest.update(name.encode("utf-8") + b"\0")
        with open(Path(path) / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def stable_hash(payload: Any, length: int = 10) -> str:
    """Hex digest of a JSON-serialisable payload, stable across processes and platforms."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


# --------------------------------------------------------------------------------------------
# hyperparameter tables (authors' scripts); keys are registry dataset names


def _linear_setup(dataset: str) -> tuple[float, int]:
    """(learning rate, batch size) of LTSF-Linear's scripts (written for L = 336; used for NLinear)."""
    table = {
        "ETTh1": (0.005, 32),
        "ETTh2": (0.05, 32),
        "ETTm1": (0.0001, 8),
        "ETTm2": (0.001, 32),
        "weather": (0.0001, 16),
        "exchange_rate": (0.0005, 8),
        "national_illness": (0.01, 32),
        "electricity": (0.001, 16),
        "traffic": (0.05, 16),
    }
    return table[dataset]


_PATCHTST_SMALL = {  # ETTh1/ETTh2 script; also used for Exchange, which has no official script
    "encoder_layers": 3,
    "n_heads": 4,
    "hidden_size": 16,
    "linear_hidden_size": 128,
    "dropout": 0.3,
    "fc_dropout": 0.3,
}
_PATCHTST_LARGE = {
    "encoder_layers": 3,
    "n_heads": 16,
    "hidden_size": 128,
    "linear_hidden_size": 256,
    "dropout": 0.2,
    "fc_dropout": 0.2,
}


def _patchtst_setup(dataset: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(architecture, training) of PatchTST's supervised scripts."""
    arch: dict[str, Any]
    if dataset in ("ETTh1", "ETTh2", "exchange_rate"):
        arch, train = dict(_PATCHTST_SMALL), {"batch_size": 128, "patience": 100, "lr_schedule": "type3"}
    elif dataset in ("ETTm1", "ETTm2"):
        arch = dict(_PATCHTST_LARGE)
        train = {"batch_size": 128, "patience": 20, "lr_schedule": "tst", "pct_start": 0.4}
    elif dataset == "weather":
        arch, train = dict(_PATCHTST_LARGE), {"batch_size": 128, "patience": 20, "lr_schedule": "type3"}
    elif dataset in ("electricity", "traffic"):
        arch = dict(_PATCHTST_LARGE)
        train = {
            "batch_size": 32 if dataset == "electricity" else 24,
            "patience": 10,
            "lr_schedule": "tst",
            "pct_start": 0.2,
        }
    else:  # national_illness
        arch = dict(_PATCHTST_SMALL, patch_len=24, stride=2)
        train = {"batch_size": 16, "patience": 100, "lr_schedule": "constant", "learning_rate": 0.0025}
    arch = {
        "patch_len": 16,
        "stride": 8,
        "head_dropout": 0.0,
        "revin": True,
        "revin_affine": False,
        "revin_subtract_last": False,
        **arch,
    }
    return arch, {"n_epochs": 100, "learning_rate": 1e-4, **train}


def _itransformer_setup(dataset: str, horizon: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(architecture, training) of iTransformer's multivariate-forecasting scripts."""
    train: dict[str, Any] = {}
    if dataset == "ETTh1":
        width, layers = (256 if horizon <= 192 else 512), 2
    elif dataset in ("ETTh2", "ETTm1", "ETTm2", "exchange_rate"):
        width, layers = 128, 2
    elif dataset == "weather":
        width, layers = 512, 3
    elif dataset == "electricity":
        width, layers = 512, 3
        train = {"batch_size": 16, "learning_rate": 0.0005}
    elif dataset == "traffic":
        width, layers = 512, 4
        train = {"batch_size": 16, "learning_rate": 0.001}
    else:  # national_illness: no script; run.py defaults
        width, layers = 512, 2
    d_ff = 2048 if dataset == "national_illness" else width
    arch = {
        "hidden_size": width,
        "d_ff": d_ff,
        "e_layers": layers,
        "n_heads": 8,
        "dropout": 0.1,
        "factor": 1,
        "use_norm": True,
    }
    return arch, {"n_epochs": 10, "batch_size": 32, "learning_rate": 1e-4, "patience": 3, **train}


_TINY_OVERRIDES: dict[str, dict[str, Any]] = {
    "tide": {"hidden_size": 16, "decoder_output_dim": 4, "temporal_decoder_hidden": 8},
    "patchtst": {"encoder_layers": 1, "n_heads": 2, "hidden_size": 8, "linear_hidden_size": 16},
    "itransformer": {"hidden_size": 16, "d_ff": 16, "e_layers": 1, "n_heads": 2},
    "vqtransformer": {
        "codebook_size": 16,
        "code_dim": 8,
        "tokenizer_hidden": 16,
        "d_model": 16,
        "n_heads": 2,
        "d_ff": 16,
        "n_layers": 1,
    },
}

#: The stage epochs of ``vqtransformer`` (its fine-tune epochs are ``ModelConfig.n_epochs``); a budget's
#: ``max_epochs`` caps them too.
VQ_STAGE_EPOCHS = ("tokenizer_epochs", "pretrain_epochs")


def model_config(
    name: str,
    dataset: str,
    horizon: int,
    *,
    scale: Scale = "official",
    backbone: str = "compact",
    pretrained: bool = False,
) -> ModelConfig:
    """The configuration of model ``name`` for a dataset and horizon.

    Parameters
    ----------
    name
        One of ``MODEL_NAMES``, or a factory of one's own, ``[NAME=]package.module:factory``
        (:func:`external_config`).
    dataset
        Registry name of the dataset (hyperparameters are per dataset, as in the authors' scripts).
    horizon
        Forecast horizon (iTransformer widens for long ETTh1 horizons).
    scale
        ``official`` for the published setup, ``tiny`` for smoke tests (same structure, tiny widths).
    backbone
        TimesCLIP's backbone: a preset (``compact``, ``tiny``), a hub id or a local directory.
        Ignored for baselines. With ``scale="tiny"`` the ``tiny`` preset is used.
    pretrained
        Whether TimesCLIP's backbone loads pretrained weights. Ignored for baselines.

    Returns
    -------
    ModelConfig
        The configuration.
    """
    if ":" in name:
        return external_config(name)
    if name not in MODEL_NAMES:
        renamed = f" (it is `{RENAMED_MODELS[name]}` now)" if name in RENAMED_MODELS else ""
        raise ValueError(f"Unknown model `{name}`{renamed}; choose from {list(MODEL_NAMES)}.")
    if name in TUNED_MODELS:
        from benchmarks.studies.tune import TUNED_SUFFIX, tuned_config

        base = model_config(
            name.removesuffix(TUNED_SUFFIX), dataset, horizon, scale=scale, backbone=backbone, pretrained=pretrained
        )
        return tuned_config(base, dataset, horizon)
    if scale not in ("official", "tiny"):
        raise ValueError(f"`scale` must be 'official' or 'tiny', got `{scale}`.")
    if name == "nlinear":
        lr, batch = _linear_setup(dataset)
        config = ModelConfig(
            name=name,
            family="darts",
            architecture={"shared_weights": True, "const_init": False, "normalize": True},
            batch_size=batch,
            learning_rate=lr,
            source="LTSF-Linear scripts/EXP-LongForecasting/Linear (run_longExp.py defaults)",
        )
    elif name == "dlinear":
        config = ModelConfig(
            name=name,
            family="darts",
            architecture={"shared_weights": True, "const_init": True, "kernel_size": 25},
            source="Time-Series-Library scripts/long_term_forecast DLinear (run.py defaults)",
        )
    elif name == "tide":
        config = ModelConfig(
            name=name,
            family="darts",
            architecture={
                "num_encoder_layers": 2,
                "num_decoder_layers": 2,
                "decoder_output_dim": 8,
                "hidden_size": 256,
                "temporal_decoder_hidden": 128,
                "use_layer_norm": True,
                "dropout": 0.3,
                "use_reversible_instance_norm": True,
            },
            learning_rate=1e-3,
            source="TiDE paper (arXiv 2304.08424) long-horizon widths with RevIN; Darts' optimiser defaults",
        )
    elif name == "patchtst":
        arch, train = _patchtst_setup(dataset)
        source = "PatchTST_supervised scripts (run_longExp.py defaults)"
        if dataset == "exchange_rate":
            source += "; no Exchange script, ETTh settings"
        config = ModelConfig(name=name, family="neuralforecast", architecture=arch, source=source, **train)
    elif name == "itransformer":
        arch, train = _itransformer_setup(dataset, horizon)
        source = "iTransformer scripts/multivariate_forecasting (run.py defaults)"
        if dataset == "national_illness":
            source += "; no ILI script, run.py defaults"
        config = ModelConfig(name=name, family="neuralforecast", architecture=arch, source=source, **train)
    elif name == "vqtransformer":
        config = ModelConfig(
            name=name,
            family="vq",
            architecture={
                "codebook_size": 256,
                "compression": 4,
                "code_dim": 64,
                "tokenizer_hidden": 64,
                "d_model": 128,
                "n_layers": 3,
                "n_heads": 8,
                "d_ff": 256,
                "dropout": 0.1,
                "tokenizer_epochs": 10,
                "pretrain_epochs": 10,
                "pretrain_lr": 1e-3,
            },
            n_epochs=10,
            batch_size=32,
            learning_rate=1e-3,
            patience=3,
            lr_schedule="type1",
            source="original VQ-VAE + Transformer scripts, context scaled to L=96; TOTEM widths",
        )
    else:
        arch = {
            "patch_length": 16,
            "patch_stride": 8,
            "use_vision": True,
            "use_alignment": True,
            "use_variate_selection": True,
            "alignment_weight": 0.1,
            "text_tower_lr": 1e-4,
            **_configuration_changes(TIMESCLIP_MODELS[name], dataset),
        }
        config = ModelConfig(
            name=name,
            family="timesclip",
            architecture=arch,
            n_epochs=100,
            batch_size=64,
            learning_rate=1e-3,
            patience=30,
            lr_schedule="cosine",
            optimizer="adamw",
            source="TimesCLIP paper (arXiv 2506.24124) training setup",
            backbone="tiny" if scale == "tiny" else backbone,
            pretrained=pretrained,
        )
    if scale == "tiny":
        tiny_arch = dict(config.architecture, **_TINY_OVERRIDES.get(name, {}))
        config = replace(config, architecture=tiny_arch, batch_size=32)
    return config


def _configuration_changes(configuration: str, dataset: str) -> dict[str, Any]:
    """What a TimesCLIP configuration changes from ``full`` on ``dataset``.

    ``periodic`` folds the window by the dataset's natural period, given here: the suite's series are
    integer-indexed, so the model cannot derive it from their frequency.

    Raises
    ------
    ValueError
        For ``periodic`` on a dataset whose frequency has no natural period.
    """
    changes = dict(TIMESCLIP_CONFIGURATIONS[configuration])
    if changes.get("image_encoding") == "periodic":
        from benchmarks.registry import get_spec
        from darts_timesclip.network.image_encodings import period_from_freq

        freq = get_spec(dataset).freq
        period = period_from_freq(freq)
        if period is None:
            raise ValueError(
                f"Configuration `{configuration}` needs a period; `{dataset}`'s frequency `{freq}` has none."
            )
        changes["period"] = period
    return changes


def canonical_model_name(name: str) -> str:
    """Today's name of a model that result files may name by a former one (``RENAMED_MODELS``)."""
    return RENAMED_MODELS.get(name, name)


def external_config(spec: str) -> ModelConfig:
    """The configuration of a model of one's own: ``[NAME=]package.module:factory``.

    The factory is imported and called by :func:`build_model` (see :func:`build_external` for what it receives).
    ``NAME`` names the model in run ids and tables (default: the factory's name); where it matches a published
    model's name (``dlinear``, ``patchtst``, ...), the report prints the published numbers beside it.

    Raises
    ------
    ValueError
        If ``spec`` is not of that form, or the factory cannot be imported or is not callable.
    """
    from benchmarks.study import load_object

    name, _, target = spec.rpartition("=")
    factory = load_object(target, what="model factory")
    if not callable(factory):
        raise ValueError(f"Model factory `{target}` is not callable (it is a {type(factory).__name__}).")
    name = name or target.rpartition(":")[2]
    if not name or any(c in name for c in "/:= "):
        raise ValueError(f"Model name `{name}` (from `{spec}`) must be non-empty, without `/`, `:`, `=` or spaces.")
    try:  # the factory's code enters the run id: an edited factory is a new job, not a finished one
        code = stable_hash(inspect.getsource(factory))
    except (OSError, TypeError):
        code = "unavailable"
    return ModelConfig(
        name=name.lower(),
        family="external",
        architecture={"factory": target, "code": code},
        patience=None,  # the factory's model stops as it likes (its own callbacks); the best epoch is still restored
        source=f"factory {target}",
    )


# --------------------------------------------------------------------------------------------
# factories


@dataclass(frozen=True)
class EpochLRFactor:
    """Per-epoch learning-rate multiplier of Time-Series-Library's ``adjust_learning_rate``.

    TSLib sets the rate after epoch ``e`` (1-based) for the next one, so the 0-based epoch ``k``
    trains with ``type1``: ``0.5 ** max(0, k - 1)``; ``type3``: ``1`` for ``k <= 3``, then
    ``0.9 ** (k - 3)``; ``constant``: ``1``.
    """

    kind: Literal["type1", "type3", "constant"]

    def __call__(self, epoch: int) -> float:
        if self.kind == "type1":
            return 0.5 ** max(0, epoch - 1)
        if self.kind == "type3":
            return 1.0 if epoch <= 3 else 0.9 ** (epoch - 3)
        return 1.0


# a model's hyperparameters hold it, so its checkpoints hold it: Darts' safe checkpoint loading (the resume
# of an interrupted job, `read_epoch_checkpoint`) must allow it, as the package registers its own classes
add_safe_globals([EpochLRFactor])


def _lr_scheduler_kwargs(config: ModelConfig, epochs: int, steps_per_epoch: int) -> dict[str, Any]:
    """Darts ``lr_scheduler_cls`` / ``lr_scheduler_kwargs`` for a configuration's schedule."""
    import torch

    if config.lr_schedule == "tst":
        return {
            "lr_scheduler_cls": torch.optim.lr_scheduler.OneCycleLR,
            "lr_scheduler_kwargs": {
                "max_lr": config.learning_rate,
                "epochs": epochs,
                "steps_per_epoch": steps_per_epoch,
                "pct_start": config.pct_start,
                "interval": "step",
            },
        }
    if config.lr_schedule not in ("type1", "type3", "constant"):
        raise ValueError(f"`lr_schedule={config.lr_schedule!r}` is not a Darts-side schedule.")
    return {
        "lr_scheduler_cls": torch.optim.lr_scheduler.LambdaLR,
        "lr_scheduler_kwargs": {"lr_lambda": EpochLRFactor(config.lr_schedule)},
    }


def effective_epochs(config: ModelConfig, caps: TrainingCaps) -> int:
    """Epochs a job trains for at most: the model's own, capped by the budget."""
    return config.n_epochs if caps.max_epochs is None else min(config.n_epochs, caps.max_epochs)


def build_model(
    config: ModelConfig,
    *,
    lookback: int,
    horizon: int,
    seed: int,
    caps: TrainingCaps,
    n_train_windows: int,
    callbacks: list[Any],
    progress_bar: bool = False,
    accelerator: str = "auto",
) -> ForecastingModel:
    """Instantiate the Darts model of a configuration (a factory of one's own: :func:`build_external`).

    Parameters
    ----------
    config
        The model configuration.
    lookback, horizon
        Darts' ``input_chunk_length`` and ``output_chunk_length``.
    seed
        Darts' ``random_state``.
    caps
        Budget caps (epochs, steps; ``max_samples_per_ts`` is applied at ``fit``).
    n_train_windows
        Number of training windows used per epoch (sizes the one-cycle schedule).
    callbacks
        Lightning callbacks (early stopping, best-weights restore), from ``pytorch_lightning``.
    progress_bar
        Show Lightning's progress bar.
    accelerator
        Lightning accelerator. Default: ``auto`` (a GPU when there is one).

    Returns
    -------
    ForecastingModel
        The untrained model (a ``TorchForecastingModel`` for every family but ``external``).
    """
    import torch

    epochs = effective_epochs(config, caps)
    trainer_kwargs: dict[str, Any] = {
        "accelerator": accelerator,
        "enable_progress_bar": progress_bar,
        "enable_model_summary": False,
        "logger": False,
        "callbacks": callbacks,
    }
    if caps.max_steps is not None:
        trainer_kwargs["max_steps"] = caps.max_steps
    if config.family == "external":  # its factory chose its epochs, optimiser and schedule
        return build_external(config.architecture["factory"], lookback, horizon, seed, trainer_kwargs)
    optimizer_cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    common: dict[str, Any] = {
        "input_chunk_length": lookback,
        "output_chunk_length": horizon,
        "batch_size": config.batch_size,
        "n_epochs": epochs,
        "optimizer_cls": optimizer_cls,
        "optimizer_kwargs": {"lr": config.learning_rate}
        | ({} if config.weight_decay is None else {"weight_decay": config.weight_decay}),
        "random_state": seed,
        "pl_trainer_kwargs": trainer_kwargs,
    }
    arch = dict(config.architecture)
    if "likelihood" in arch:  # by name in the configuration (and so in the job's id), as an object in the model
        from benchmarks.probabilistic import make_likelihood

        arch["likelihood"] = make_likelihood(arch["likelihood"])
    steps_per_epoch = math.ceil(n_train_windows / config.batch_size)
    if config.family == "timesclip":
        # TimesCLIPModel schedules itself (per-step cosine to 0, lower rate for the text tower); other schedules
        # are Darts' scheduler over both of its parameter groups
        if config.lr_schedule != "cosine":
            arch["cosine_schedule"] = False
            common.update(_lr_scheduler_kwargs(config, epochs, steps_per_epoch))
        return _build_timesclip(config, arch, common)
    common.update(_lr_scheduler_kwargs(config, epochs, steps_per_epoch))
    if config.family == "vq":
        from darts_timesclip import VQTransformerModel

        for name in VQ_STAGE_EPOCHS:  # the budget caps every stage
            arch[name] = effective_epochs(replace(config, n_epochs=arch[name]), caps)
        return VQTransformerModel(**arch, **common)
    if config.family == "darts":
        from darts.models import DLinearModel, NLinearModel, TiDEModel

        model_cls = {"nlinear": NLinearModel, "dlinear": DLinearModel, "tide": TiDEModel}[config.name]
        return model_cls(use_static_covariates=False, **arch, **common)
    from darts.models import NeuralForecastModel

    nf_name = {"patchtst": "PatchTST", "itransformer": "iTransformer"}[config.name]
    return NeuralForecastModel(model=nf_name, model_kwargs=arch, use_static_covariates=False, **common)


def _build_timesclip(config: ModelConfig, arch: dict[str, Any], common: dict[str, Any]):
    try:
        from darts_timesclip import TimesCLIPModel
    except ImportError as err:
        raise ImportError(
            "Model `timesclip` needs the `darts_timesclip` package (`pip install -e .` from the "
            f"repository root); importing it failed: {err}"
        ) from err
    return TimesCLIPModel(backbone=config.backbone, pretrained=config.pretrained, **arch, **common)


FACTORY_ARGUMENTS = ("input_chunk_length", "output_chunk_length", "random_state", "pl_trainer_kwargs")
"""What a model factory of one's own receives, by keyword (those of them its signature names, or all with
``**kwargs``): the lookback ``L``, the horizon ``H``, the job's seed and, for a torch model, the Lightning trainer
arguments that the protocol needs (its callbacks: best-epoch restore, the progress line, the epoch checkpoint;
the accelerator, the progress bar, ``max_steps``), to be passed on to the model unchanged."""


def build_external(
    target: str, lookback: int, horizon: int, seed: int, trainer_kwargs: dict[str, Any]
) -> ForecastingModel:
    """Call a model factory of one's own (``package.module:function``) with :data:`FACTORY_ARGUMENTS`.

    Returns
    -------
    ForecastingModel
        A Darts global forecasting model (fitted once, it forecasts any window: ``historical_forecasts`` with
        ``retrain=False`` over the test split), with input length ``lookback``.

    Raises
    ------
    ValueError
        If the factory returns something else than a global model, or a torch model of another input length or
        without the trainer arguments it was given.
    """
    from darts.models.forecasting.forecasting_model import GlobalForecastingModel
    from darts.models.forecasting.torch_forecasting_model import TorchForecastingModel

    from benchmarks.study import load_object

    factory = load_object(target, what="model factory")
    offered = dict(zip(FACTORY_ARGUMENTS, (lookback, horizon, seed, trainer_kwargs)))
    parameters = inspect.signature(factory).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    model = factory(**{k: v for k, v in offered.items() if takes_all or k in parameters})
    if not isinstance(model, GlobalForecastingModel):
        raise ValueError(
            f"Model factory `{target}` returned a {type(model).__name__}; the protocol needs a Darts global "
            "forecasting model (fitted once, it forecasts every test window with `retrain=False`)."
        )
    if isinstance(model, TorchForecastingModel):
        if model.input_chunk_length != lookback:
            raise ValueError(
                f"Model factory `{target}` built `input_chunk_length={model.input_chunk_length}`; the job's "
                f"lookback is {lookback} (pass the `input_chunk_length` it receives on to the model)."
            )
        installed = model.trainer_params.get("callbacks", [])
        if not all(any(c is i for i in installed) for c in trainer_kwargs["callbacks"]):
            raise ValueError(
                f"Model factory `{target}` did not pass `pl_trainer_kwargs` on to its model; the protocol's "
                "callbacks (best-epoch restore, epoch checkpoints) need them."
            )
    return model
