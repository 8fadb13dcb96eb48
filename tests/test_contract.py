"""The Darts contract, table-driven: every configuration of TimesCLIPModel must learn, round-trip and behave.

In the style of Darts' ``test_global_forecasting_models.py``: one table of configurations with an error ceiling
each. A new variant is a new row. Each row must

- lower its training loss over three epochs, and
- forecast a deterministic two-variate series with signal (``make_signal_series``) with an MSE below
  ``ceiling`` x the MSE of the naive forecast (the last value repeated), over every held-out window.

Probabilistic rows are scored on their location parameter (mean, or median quantile).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from darts.models import NaiveSeasonal
from darts.utils.likelihood_models import GaussianLikelihood, LaplaceLikelihood, QuantileRegression

from darts_timesclip import TimesCLIPModel
from tests._helpers import (
    OUT_LEN,
    LossHistory,
    air_passengers,
    held_out_ratio,
    model_kwargs,
)

#: name -> (TimesCLIPModel arguments, ceiling on MSE / naive MSE). Observed on this project's 2-core CPU after three
#: epochs: 0.06-0.10 for the point rows, 0.11 (quantiles) to 0.22 (Gaussian) for the likelihoods; the ceilings leave
#: room for other BLAS builds and still fail a model that stops learning (an untrained one scores about 1).
CONFIGURATIONS = {
    "default": ({}, 0.25),
    "no-alignment": ({"use_alignment": False}, 0.25),
    "no-variate-selection": ({"use_variate_selection": False}, 0.25),
    "language-only": ({"use_vision": False, "use_alignment": False}, 0.25),
    "unfrozen-vision": ({"freeze_vision": False}, 0.25),
    "no-cache": ({"embedding_cache_mb": 0}, 0.25),
    "vision-only": ({"use_numeric": False, "use_alignment": False}, 0.7),  # observed 0.44: 32-pixel charts only
    "sample-alignment": ({"alignment": "sample"}, 0.25),
    "hybrid-alignment": ({"alignment": "hybrid", "alignment_mix": 0.3}, 0.25),
    "auto-weight": ({"alignment_weight": "auto"}, 0.25),
    "gasf": ({"image_encoding": "gasf"}, 0.25),
    "gadf": ({"image_encoding": "gadf"}, 0.25),
    "periodic": ({"image_encoding": "periodic"}, 0.25),  # period 24 from the hourly index
    "quantiles": ({"likelihood": QuantileRegression([0.1, 0.5, 0.9])}, 0.5),
    "gaussian": ({"likelihood": GaussianLikelihood()}, 0.6),
    "laplace": ({"likelihood": LaplaceLikelihood()}, 0.6),
}


@pytest.mark.parametrize("name", list(CONFIGURATIONS))
def test_configuration_learns_and_beats_the_naive_forecast(name, signal, quiet_trainer):
    overrides, ceiling = CONFIGURATIONS[name]
    train, held_out, naive_mse = signal
    history = LossHistory()
    quiet_trainer["callbacks"] = [history]
    model = TimesCLIPModel(
        **model_kwargs(n_epochs=3, batch_size=32, output_chunk_length=OUT_LEN, pl_trainer_kwargs=quiet_trainer),
        **overrides,
    ).fit(train)

    assert len(history.losses) == 3
    assert history.losses[-1] < history.losses[0], f"{name}: training did not lower the loss {history.losses}"

    ratio = held_out_ratio(model, held_out, naive_mse, overrides.get("likelihood"))
    assert ratio < ceiling, f"{name}: MSE is {ratio:.3f} x the naive forecast's (ceiling {ceiling})"


# ----------------------------------------------------------------------- Darts' global-model contract, ported
@pytest.fixture(scope="module")
def passengers():
    from darts.dataprocessing.transformers import Scaler

    series = Scaler().fit_transform(air_passengers())
    return series[:-36], series[-36:]


@pytest.mark.parametrize("cache_mb", [1024, 0])
def test_same_result_for_repeated_predictions_of_many_copies(passengers, cache_mb):
    """Darts' ``test_same_result_with_different_n_jobs``: two identical predictions are equal, exactly.

    Ten copies of one series put identical charts in one batch; the cached embedding must be the bits every copy
    received, so that the second call (served from the cache) equals the first (computed).
    """
    train, _ = passengers
    copies = [train] * 10
    model = TimesCLIPModel(**model_kwargs(output_chunk_length=12, embedding_cache_mb=cache_mb)).fit(copies)
    first = model.predict(n=36, series=copies, n_jobs=1)
    second = model.predict(n=36, series=copies, n_jobs=-1)
    assert all(a == b for a, b in zip(first, second, strict=True))


def test_same_result_for_repeated_probabilistic_predictions(passengers):
    train, _ = passengers
    model = TimesCLIPModel(**model_kwargs(output_chunk_length=12, likelihood=GaussianLikelihood())).fit([train] * 3)
    state = copy.deepcopy(model._random_instance)
    first = model.predict(n=24, series=[train] * 3, num_samples=4)
    model._random_instance = state
    assert first == model.predict(n=24, series=[train] * 3, num_samples=4)


def test_untrained_model_has_the_same_parameters():
    model = TimesCLIPModel(**model_kwargs(use_variate_selection=False, temperature=0.05))
    clone = model.untrained_model()
    assert clone.model_params == model.model_params
    assert clone.config == model.config


def test_single_and_several_series_forecast_air_passengers(passengers):
    train, held_out = passengers
    other = train + 0.01
    model = TimesCLIPModel(**model_kwargs(output_chunk_length=12, n_epochs=5)).fit([train, other])
    with pytest.raises(ValueError, match="Input `series` must be provided"):
        model.predict(n=1)
    forecasts = model.predict(n=36, series=[train, other])
    assert len(forecasts) == 2
    naive = NaiveSeasonal(K=12).fit(train).predict(36)  # last year repeated: a strong baseline here
    error = float(np.mean((forecasts[0].values() - held_out.values()) ** 2))
    naive_error = float(np.mean((naive.values() - held_out.values()) ** 2))
    # seed 0 gives 0.55x the seasonal naive's error, seeds 1 and 2 0.80x and 1.14x: 1.5x is a model that learnt
    # the season, with room for other platforms
    assert error < 1.5 * naive_error, (error, naive_error)
