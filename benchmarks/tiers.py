"""Named tiers: which datasets, horizons and models a sweep covers, and the compute budget it gets."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.models import DEFAULT_MODELS, OTHER_MODELS, Scale, TrainingCaps


@dataclass(frozen=True)
class Tier:
    """A named sweep preset.

    Parameters
    ----------
    name
        Tier name (``--tier``).
    description
        One line for ``--help`` and the tables.
    datasets
        Registry dataset names.
    horizons
        Forecast horizons; ``None`` for each dataset's own list from the registry.
    models
        Model names.
    scale
        ``official`` model sizes, or ``tiny`` ones for smoke tests.
    caps
        Budget caps by model name; a model not listed (a model of one's own among them) gets ``other_caps``.
    other_caps
        Budget caps of the models ``caps`` does not list. Default: none (their own setup, uncapped).
    """

    name: str
    description: str
    datasets: tuple[str, ...]
    horizons: tuple[int, ...] | None
    models: tuple[str, ...] = DEFAULT_MODELS
    scale: Scale = "official"
    caps: dict[str, TrainingCaps] = field(default_factory=dict)
    other_caps: TrainingCaps = TrainingCaps()

    def caps_for(self, model: str) -> TrainingCaps:
        """Budget caps of one model in this tier (TimesCLIP's configurations share ``timesclip``'s)."""
        key = "timesclip" if model.startswith("timesclip") else model
        return self.caps.get(key, self.other_caps)


# TimesCLIP on 2 CPU cores: 2 epochs over the most recent 4096 train (and val) windows, the paper
# trains 100 epochs over all of them. Measured with the `compact` backbone on an idle machine: an ETTh1
# job (training and 2785 test windows) takes about 2 minutes. PatchTST: 100 epochs with patience 100
# do not fit, 20 epochs do.
# VQTransformer: the same budget for each of its three stages (about 17 minutes per ETTh1 job on one core).
_CPU_CAPS = {
    "timesclip": TrainingCaps(max_epochs=2, max_samples_per_ts=4096),
    "vqtransformer": TrainingCaps(max_epochs=2, max_samples_per_ts=4096),
    "patchtst": TrainingCaps(max_epochs=20),
}

TIERS: dict[str, Tier] = {
    tier.name: tier
    for tier in (
        Tier(
            name="smoke",
            description="seconds: ILI (the smallest dataset) H=24, tiny models, 1 epoch on 64 windows",
            datasets=("national_illness",),
            horizons=(24,),
            scale="tiny",
            other_caps=TrainingCaps(max_epochs=1, max_samples_per_ts=64),  # every model, one's own too
        ),
        Tier(
            name="quick",
            description="ETTh1 and Exchange at H=96, five models and VQTransformer, CPU budget (about 1 h on 2 cores)",
            datasets=("ETTh1", "exchange_rate"),
            horizons=(96,),
            models=(*DEFAULT_MODELS, *OTHER_MODELS),
            caps=dict(_CPU_CAPS),
        ),
        Tier(
            name="standard",
            description="ETTh1/2, ETTm1/2, Weather, Exchange at H=96 and 192, CPU budget for TimesCLIP",
            datasets=("ETTh1", "ETTh2", "ETTm1", "ETTm2", "weather", "exchange_rate"),
            horizons=(96, 192),
            caps={name: _CPU_CAPS[name] for name in ("timesclip", "vqtransformer")},  # VQ on request (--models)
        ),
        Tier(
            name="full",
            description="every dataset and horizon, the authors' full training setup (GPU-sized)",
            datasets=(
                "ETTh1",
                "ETTh2",
                "ETTm1",
                "ETTm2",
                "weather",
                "exchange_rate",
                "national_illness",
                "electricity",
                "traffic",
            ),
            horizons=None,
        ),
    )
}
"""The named tiers, by name."""


def get_tier(name: str) -> Tier:
    """Look a tier up by name.

    Raises
    ------
    ValueError
        If there is no such tier.
    """
    if name not in TIERS:
        raise ValueError(f"Unknown tier `{name}`; choose from {list(TIERS)}.")
    return TIERS[name]
