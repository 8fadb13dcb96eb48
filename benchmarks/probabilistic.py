"""Probabilistic scores over every stride-1 test window: CRPS and central-interval coverage.

The protocol is the suite's (:mod:`benchmarks.protocol`: train-split scaling, every stride-1 test window,
``historical_forecasts(retrain=False)``), with distributions instead of points. A model predicts its likelihood's
parameters once per window (``predict_likelihood_parameters=True``), and the distribution is scored from them:

- ``QuantileRegression``: the CRPS from the predicted quantiles, ``CRPS = 2 * sum_k w_k * pinball_k`` (the quantile
  decomposition of the CRPS, each level standing for the probability between the midpoints to its neighbours, the
  end levels for the tails: the weights sum to 1); the intervals are the predicted quantiles (80 %: 0.1 to 0.9; 95 %:
  0.025 to 0.975);
- ``GaussianLikelihood`` and ``LaplaceLikelihood``: the CRPS in closed form (Gneiting and Raftery 2007) and the
  intervals from the predicted distribution's quantiles, exactly;
- another location-scale likelihood (Cauchy, Gumbel): ``num_samples`` draws per window, step and variate from the
  predicted distribution, the CRPS from the samples (``E|X - y| - E|X - X'| / 2``) and the intervals from their
  empirical quantiles. Drawing from the predicted parameters is what Darts' ``predict(num_samples=...)`` does, without
  its one forward pass per sample.

The point forecast scored by MSE and MAE is the median. Every score is averaged over windows, steps and variates on
the standardised scale, and computed in chunks of windows, so that memory stays bounded for many variates and samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.protocol import PreparedData, TestScore, count_test_windows, example_window, forecast_test_windows

if TYPE_CHECKING:
    from darts.models.forecasting.torch_forecasting_model import TorchForecastingModel

#: The quantile levels that quantile-regression models predict: the 80 % and 95 % intervals' ends, the median, and
#: a grid between them for the CRPS.
QUANTILE_LEVELS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.975)
#: Nominal coverages of the central intervals scored.
INTERVALS = (0.8, 0.95)
#: The likelihoods a benchmark job can name (``ModelConfig.architecture["likelihood"]``): quantile regression at
#: :data:`QUANTILE_LEVELS`, or a location-scale family scored in closed form.
LIKELIHOODS = ("quantile", "gaussian", "laplace")


def make_likelihood(name: str) -> Any:
    """The Darts likelihood of a name in :data:`LIKELIHOODS`.

    Raises
    ------
    ValueError
        For any other name.
    """
    from darts.utils.likelihood_models import GaussianLikelihood, LaplaceLikelihood, QuantileRegression

    if name == "quantile":
        return QuantileRegression(list(QUANTILE_LEVELS))
    if name == "gaussian":
        return GaussianLikelihood()
    if name == "laplace":
        return LaplaceLikelihood()
    raise ValueError(f"`likelihood` must be one of {LIKELIHOODS}, got `{name!r}`.")


def quantile_weights(levels: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Midpoint-rule weights of quantile levels for the CRPS: level ``k`` covers ``[(t_{k-1} + t_k) / 2, (t_k +
    t_{k+1}) / 2]``, the first from 0 and the last to 1; the weights sum to 1.

    Raises
    ------
    ValueError
        If the levels are not strictly increasing in (0, 1).
    """
    tau = np.asarray(levels, dtype=np.float64)
    if tau.ndim != 1 or tau.size < 1 or np.any(np.diff(tau) <= 0) or tau[0] <= 0 or tau[-1] >= 1:
        raise ValueError(f"`levels` must be strictly increasing in (0, 1), got {list(levels)}.")
    edges = np.concatenate([[0.0], (tau[1:] + tau[:-1]) / 2, [1.0]])
    return np.diff(edges)


def crps_from_quantiles(quantiles: np.ndarray, levels: tuple[float, ...], truth: np.ndarray) -> np.ndarray:
    """CRPS of quantile forecasts, ``2 * sum_k w_k * pinball_{t_k}(y - q_k)`` (:func:`quantile_weights`).

    Parameters
    ----------
    quantiles
        ``[..., K]`` predicted quantiles at ``levels``.
    levels
        The ``K`` increasing quantile levels.
    truth
        ``[...]`` observations.

    Returns
    -------
    numpy.ndarray
        ``[...]`` CRPS per observation.
    """
    tau = np.asarray(levels, dtype=np.float64)
    error = truth[..., None] - quantiles
    pinball = np.maximum(tau * error, (tau - 1) * error)
    return 2.0 * pinball @ quantile_weights(levels)


def crps_from_samples(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """CRPS of an ensemble, ``E|X - y| - E|X - X'| / 2`` over its ``S`` members (the empirical distribution's CRPS).

    Parameters
    ----------
    samples
        ``[..., S]`` draws of the forecast distribution.
    truth
        ``[...]`` observations.

    Returns
    -------
    numpy.ndarray
        ``[...]`` CRPS per observation.
    """
    n = samples.shape[-1]
    ordered = np.sort(samples, axis=-1)
    to_truth = np.abs(ordered - truth[..., None]).mean(axis=-1)
    # sum_{i,j} |x_i - x_j| = 2 * sum_i (2 i - n - 1) x_(i) for sorted x, i = 1..n
    rank_weights = 2.0 * np.arange(1, n + 1) - n - 1
    spread = 2.0 * (ordered @ rank_weights) / n**2
    return to_truth - 0.5 * spread


def crps_closed_form(likelihood: Any, parameters: np.ndarray, truth: np.ndarray) -> np.ndarray | None:
    """The CRPS ``[...]`` of Gaussian or Laplace forecasts with parameters ``[..., 2]`` (location, scale), in closed
    form: ``s * (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))`` and ``s * (|z| + exp(-|z|) - 3 / 4)`` for
    ``z = (y - loc) / s``; ``None`` for another likelihood."""
    from darts.utils.likelihood_models import GaussianLikelihood, LaplaceLikelihood
    from scipy import special

    loc, scale = parameters[..., 0], parameters[..., 1]
    z = (truth - loc) / scale
    if isinstance(likelihood, GaussianLikelihood):
        cdf, pdf = special.ndtr(z), np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
        return scale * (z * (2 * cdf - 1) + 2 * pdf - 1 / np.sqrt(np.pi))
    if isinstance(likelihood, LaplaceLikelihood):
        return scale * (np.abs(z) + np.exp(-np.abs(z)) - 0.75)
    return None


def _inverse_cdfs() -> dict[type, Any]:
    """Inverse CDFs ``(loc, scale, u) -> x`` of the location-scale likelihoods, by Darts likelihood class."""
    import torch
    from darts.utils.likelihood_models import torch as lm

    return {
        lm.GaussianLikelihood: lambda loc, scale, u: loc + scale * torch.special.ndtri(u),
        lm.LaplaceLikelihood: lambda loc, scale, u: loc - scale * (u - 0.5).sign() * torch.log1p(-2 * (u - 0.5).abs()),
        lm.CauchyLikelihood: lambda loc, scale, u: loc + scale * torch.tan(torch.pi * (u - 0.5)),
        lm.GumbelLikelihood: lambda loc, scale, u: loc - scale * torch.log(-torch.log(u)),
    }


def sample_likelihood(likelihood: Any, parameters: np.ndarray, num_samples: int, generator: Any) -> np.ndarray:
    """``num_samples`` draws ``[..., S]`` of a location-scale likelihood from its parameters ``[..., 2]`` (location,
    scale, as ``predict_likelihood_parameters`` returns them), by inverse-CDF sampling from a seeded generator.

    Raises
    ------
    ValueError
        For a likelihood that is not a location-scale family.
    """
    import torch

    inverse_cdf = next((f for family, f in _inverse_cdfs().items() if isinstance(likelihood, family)), None)
    if inverse_cdf is None:
        raise ValueError(
            f"Scoring `likelihood={type(likelihood).__name__}()` by samples is not supported; use QuantileRegression "
            "or a location-scale family (Gaussian, Laplace, Cauchy, Gumbel)."
        )
    p = torch.as_tensor(parameters, dtype=torch.float64)
    u = torch.rand((*p.shape[:-1], num_samples), generator=generator, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    return inverse_cdf(p[..., 0:1], p[..., 1:2], u).numpy()


@dataclass(frozen=True)
class ProbabilisticScore:
    """Scores of a probabilistic model over the test windows (standardised scale).

    Attributes
    ----------
    crps
        Mean CRPS over windows, steps and variates.
    coverage
        Share of observations inside each central interval, by nominal coverage (``{0.8: ..., 0.95: ...}``).
    width
        Mean width of each central interval.
    mse, mae
        Errors of the median.
    n_windows
        Number of stride-1 test windows scored.
    method
        ``"quantiles"``, ``"closed form"`` or ``"samples"`` (with the number of samples).
    example
        One window's lookback, truth, median and 80 % interval of its last variate, for plots.
    """

    crps: float
    coverage: dict[float, float]
    width: dict[float, float]
    mse: float
    mae: float
    n_windows: int
    method: str
    example: dict = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Flat metrics for a result record: ``crps``, ``coverage_80``, ``coverage_95``, ``width_80``, ..."""
        out = {"crps": self.crps}
        for nominal in sorted(self.coverage):
            out[f"coverage_{round(100 * nominal)}"] = self.coverage[nominal]
            out[f"width_{round(100 * nominal)}"] = self.width[nominal]
        return out


def score_probabilistic(
    model: TorchForecastingModel,
    data: PreparedData,
    horizon: int,
    num_samples: int = 100,
    seed: int = 0,
    example_index: int = 0,
    dataloader_kwargs: dict | None = None,
) -> ProbabilisticScore:
    """Forecast every test window at stride 1 with ``historical_forecasts`` and score the distributions.

    Parameters
    ----------
    model
        A fitted Darts model with a likelihood (``QuantileRegression`` whose quantiles include the interval ends,
        or a location-scale family) and ``input_chunk_length == data.lookback``.
    data
        The prepared dataset.
    horizon
        Forecast horizon ``H``.
    num_samples
        Draws per window, step and variate for a parametric likelihood (ignored for quantiles).
    seed
        Seed of the draws.
    example_index
        Test window kept in ``example`` (its last variate).
    dataloader_kwargs
        Passed to the prediction data loader.

    Raises
    ------
    ValueError
        Without a likelihood, with quantiles that miss an interval's ends or the median, or without test windows.
    """
    import torch
    from darts.utils.likelihood_models import QuantileRegression

    likelihood = getattr(model, "likelihood", None)
    if likelihood is None:
        raise ValueError("`model` has no likelihood: probabilistic scores need a probabilistic model.")
    n_windows = count_test_windows(data, horizon)
    n_variates = data.scaled.shape[1]
    quantiles = isinstance(likelihood, QuantileRegression)
    if quantiles:
        levels = tuple(float(q) for q in likelihood.quantiles)
        needed = {0.5, *(round((1 - c) / 2, 6) for c in INTERVALS), *(round((1 + c) / 2, 6) for c in INTERVALS)}
        missing = sorted(needed - {round(q, 6) for q in levels})
        if missing:
            raise ValueError(f"`QuantileRegression({list(levels)})` lacks the levels {missing} the scores need.")
        n_params = len(levels)
        width = n_params
    else:
        n_params = likelihood.num_parameters
        closed = crps_closed_form(likelihood, np.ones((1, 2)), np.zeros(1)) is not None
        width = 2 if closed else num_samples
        method = "closed form" if closed else f"samples ({num_samples})"
    generator = torch.Generator().manual_seed(seed)
    sums = {"crps": 0.0, "sq": 0.0, "abs": 0.0}
    covered = {c: 0.0 for c in INTERVALS}
    widths = {c: 0.0 for c in INTERVALS}
    example: dict = {}
    chunks = forecast_test_windows(
        model, data, horizon, n_windows, width, dataloader_kwargs or {}, predict_likelihood_parameters=True
    )
    for chunk in chunks:
        params = chunk.values.reshape(*chunk.truth.shape, n_params)  # Darts groups parameters by component
        y = np.asarray(chunk.truth, dtype=np.float64)
        if quantiles:
            values = np.sort(params, axis=-1)  # quantile crossing: the sorted values are a valid quantile function
            crps = crps_from_quantiles(values, levels, y)
            level_of = {round(q, 6): k for k, q in enumerate(levels)}

            def quantile(q: float, values: np.ndarray = values, level_of: dict = level_of) -> np.ndarray:
                return values[..., level_of[round(q, 6)]]
        else:
            crps = crps_closed_form(likelihood, params, y)
            if crps is not None:
                inverse_cdf = next(f for family, f in _inverse_cdfs().items() if isinstance(likelihood, family))

                def quantile(q: float, params: np.ndarray = params, inverse_cdf: Any = inverse_cdf) -> np.ndarray:
                    p = torch.as_tensor(params, dtype=torch.float64)
                    return inverse_cdf(p[..., 0], p[..., 1], torch.full_like(p[..., 0], q)).numpy()
            else:
                values = sample_likelihood(likelihood, params, num_samples, generator)
                crps = crps_from_samples(values, y)

                def quantile(q: float, values: np.ndarray = values) -> np.ndarray:
                    return np.quantile(values, q, axis=-1)

        median = quantile(0.5)
        sums["crps"] += float(crps.sum())
        sums["sq"] += float(np.square(median - y).sum())
        sums["abs"] += float(np.abs(median - y).sum())
        for nominal in INTERVALS:
            low, high = quantile(round((1 - nominal) / 2, 6)), quantile(round((1 + nominal) / 2, 6))
            covered[nominal] += float(((y >= low) & (y <= high)).sum())
            widths[nominal] += float((high - low).sum())
        if chunk.holds(example_index):
            k = example_index - chunk.first
            example = example_window(
                data,
                example_index,
                horizon,
                median[k, :, -1],
                lower_80=quantile(0.1)[k, :, -1],
                upper_80=quantile(0.9)[k, :, -1],
            )
    count = n_windows * horizon * n_variates
    return ProbabilisticScore(
        crps=sums["crps"] / count,
        coverage={c: covered[c] / count for c in INTERVALS},
        width={c: widths[c] / count for c in INTERVALS},
        mse=sums["sq"] / count,
        mae=sums["abs"] / count,
        n_windows=n_windows,
        method="quantiles" if quantiles else method,
        example=example,
    )


def probabilistic_test_score(
    model: TorchForecastingModel,
    data: PreparedData,
    horizon: int,
    dataloader_kwargs: dict | None = None,
    num_samples: int = 100,
) -> TestScore:
    """:func:`score_probabilistic` as a job's scorer (:data:`benchmarks.runner.Scorer`): the median's MSE and MAE,
    and the CRPS, interval coverages and widths as extra metrics."""
    score = score_probabilistic(model, data, horizon, num_samples=num_samples, dataloader_kwargs=dataloader_kwargs)
    return TestScore(
        mse=score.mse, mae=score.mae, n_windows=score.n_windows, example=score.example, extra=score.metrics()
    )
