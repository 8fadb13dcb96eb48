"""Likelihood families: how each parameter returns to scale, which families are refused and why."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from darts import TimeSeries
from darts.utils.likelihood_models import torch as likelihood_models

from darts_timesclip import TimesCLIPModel
from darts_timesclip.likelihoods import (
    LIKELIHOOD_PARAMETER_KINDS,
    REFUSED_LIKELIHOODS,
    parameter_kinds,
    supported_likelihoods,
)
from darts_timesclip.network.normalization import InstanceStats, denormalize
from tests._helpers import make_series, model_kwargs

SCALE_FAMILIES = (likelihood_models.GammaLikelihood, likelihood_models.LogNormalLikelihood)
LOCATION_SCALE = (
    likelihood_models.GaussianLikelihood,
    likelihood_models.LaplaceLikelihood,
    likelihood_models.CauchyLikelihood,
    likelihood_models.GumbelLikelihood,
)


def _distribution(likelihood, raw: torch.Tensor, location: float, scale: float) -> torch.distributions.Distribution:
    """Darts' distribution of raw normalised-space outputs ``[B, H, 1, P]`` returned to scale with ``(m, s)``."""
    stats = InstanceStats(mean=torch.full((raw.shape[0], 1, 1), location), std=torch.full((raw.shape[0], 1, 1), scale))
    out = denormalize(raw, stats, parameter_kinds(likelihood, "TimesCLIP"))
    return likelihood._distr_from_params(likelihood._params_from_output(out))


@pytest.mark.parametrize("family", LOCATION_SCALE, ids=lambda f: f.__name__)
def test_location_scale_families_map_exactly(family):
    """If ``(x - m) / s`` follows the network's distribution, ``x`` follows the mapped one: ``F(m + s z) = F_0(z)``."""
    torch.manual_seed(0)
    likelihood = family()
    raw = torch.randn(3, 4, 1, 2)
    unit = _distribution(likelihood, raw, 0.0, 1.0)
    mapped = _distribution(likelihood, raw, -3.5, 250.0)
    z = unit.sample((5,))
    assert torch.allclose(mapped.cdf(-3.5 + 250.0 * z), unit.cdf(z), atol=1e-4)


def test_point_forecasts_map_back_to_the_windows_location_and_scale():
    # variate v of a window m_v + s_v z returns a normalised-space forecast z to m_v + s_v z; the statistics also
    # hold a past covariate's (the third), which the forecast of the two targets does not use
    mean, std = torch.tensor([10.0, 20.0, 30.0]), torch.tensor([1.0, 2.0, 3.0])
    stats = InstanceStats(mean=mean.expand(2, 1, 3), std=std.expand(2, 1, 3))
    z = torch.randn(2, 4, 2, 1)
    expected = mean[:2, None] + std[:2, None] * z
    assert torch.allclose(denormalize(z, stats, ("location",)), expected)
    assert torch.allclose(denormalize(z, stats, parameter_kinds(None, "TimesCLIP")), expected)
    assert torch.allclose(denormalize(z.expand(2, 4, 2, 3), stats, ("location",) * 3), expected.expand(2, 4, 2, 3))


def test_count_families_map_a_zero_mean_window_with_a_thousandth_of_its_scale():
    # the level hypot(m, s / 1000) of a window with m = 0 is s / 1000: a Poisson rate softplus(raw) * s / 1000
    stats = InstanceStats(mean=torch.zeros(2, 1, 1), std=torch.full((2, 1, 1), 5.0))
    raw = torch.randn(2, 3, 1, 1)
    out = denormalize(raw, stats, ("softplus_level",))
    torch.testing.assert_close(torch.nn.functional.softplus(out), torch.nn.functional.softplus(raw) * 5e-3)


@pytest.mark.parametrize("family", SCALE_FAMILIES, ids=lambda f: f.__name__)
def test_scale_families_map_exactly_with_the_level(family):
    """If ``x / l`` follows the network's distribution, ``x`` does the mapped one: ``F(l z) = F_1(z)``, for the
    window's level ``l = sqrt(m^2 + (s / 1000)^2)`` (``F_1``: the distribution at level 1)."""
    torch.manual_seed(0)
    likelihood = family()
    raw = torch.randn(3, 4, 1, 2)
    unit = _distribution(likelihood, raw, 1.0, 0.0)
    mapped = _distribution(likelihood, raw, 250.0, 40.0)
    level = math.hypot(250.0, 0.04)
    z = unit.sample((5,))
    assert torch.allclose(mapped.cdf(level * z), unit.cdf(z), atol=1e-4)


def test_count_families_scale_their_mean_with_the_level_and_keep_their_dispersion():
    torch.manual_seed(0)
    raw = torch.randn(3, 4, 1, 2)
    level = math.hypot(20.0, 0.005)
    poisson = likelihood_models.PoissonLikelihood()
    unit, mapped = (_distribution(poisson, raw[..., :1], m, s) for m, s in ((1.0, 0.0), (20.0, 5.0)))
    assert torch.allclose(mapped.mean, level * unit.mean, rtol=1e-4)
    negbin = likelihood_models.NegativeBinomialLikelihood()
    unit, mapped = (_distribution(negbin, raw, m, s) for m, s in ((1.0, 0.0), (20.0, 5.0)))
    assert torch.allclose(mapped.mean, level * unit.mean, rtol=1e-4)
    assert torch.allclose(mapped.total_count, unit.total_count)  # r = 1 / alpha: the gamma mixing shape


def test_beta_parameters_do_not_depend_on_the_window():
    raw = torch.randn(3, 4, 1, 2)
    beta = likelihood_models.BetaLikelihood()
    unit, mapped = (_distribution(beta, raw, m, s) for m, s in ((0.0, 1.0), (0.4, 0.05)))
    assert torch.equal(unit.concentration1, mapped.concentration1)
    assert torch.equal(unit.concentration0, mapped.concentration0)


def test_every_family_of_darts_is_either_supported_or_refused_with_a_reason():
    families = {
        cls
        for cls in vars(likelihood_models).values()
        if isinstance(cls, type)
        and issubclass(cls, likelihood_models.TorchLikelihood)
        and cls is not likelihood_models.TorchLikelihood
    }
    assert families == set(supported_likelihoods()) | set(REFUSED_LIKELIHOODS)
    assert set(LIKELIHOOD_PARAMETER_KINDS) & set(REFUSED_LIKELIHOODS) == set()


@pytest.mark.parametrize(
    ("family", "why"),
    [
        (likelihood_models.BernoulliLikelihood, "quantiles of a 0/1 outcome are 0 or 1"),
        (likelihood_models.DirichletLikelihood, "all target components jointly"),
        (likelihood_models.GeometricLikelihood, "use PoissonLikelihood or NegativeBinomialLikelihood"),
        (likelihood_models.ContinuousBernoulliLikelihood, "use BetaLikelihood"),
        (likelihood_models.ExponentialLikelihood, "gamma with shape 1"),
        (likelihood_models.HalfNormalLikelihood, "no calibration test"),
        (likelihood_models.WeibullLikelihood, "no calibration test"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_refused_families_say_why(family, why):
    with pytest.raises(ValueError, match=rf"`likelihood={family.__name__}\(\)` is not supported: .*{why}"):
        TimesCLIPModel(**model_kwargs(likelihood=family()))


@pytest.mark.parametrize(
    "family",
    [
        likelihood_models.PoissonLikelihood,
        likelihood_models.NegativeBinomialLikelihood,
        likelihood_models.GammaLikelihood,
        likelihood_models.LogNormalLikelihood,
        likelihood_models.BetaLikelihood,
    ],
    ids=lambda f: f.__name__,
)
def test_families_beyond_location_scale_need_the_adaptive_normalization(family):
    with pytest.raises(ValueError, match=rf"`likelihood={family.__name__}\(\)` needs `normalization='adaptive'`"):
        TimesCLIPModel(**model_kwargs(likelihood=family(), normalization="instance"))
    model = TimesCLIPModel(**model_kwargs(likelihood=family()))
    assert model.config.normalization == "adaptive"
    assert model.config.parameter_kinds == LIKELIHOOD_PARAMETER_KINDS[family]


def test_the_point_forecast_default_is_the_papers_normalization():
    assert TimesCLIPModel(**model_kwargs()).config.normalization == "instance"
    for likelihood in (likelihood_models.QuantileRegression([0.1, 0.5, 0.9]), likelihood_models.GaussianLikelihood()):
        assert TimesCLIPModel(**model_kwargs(likelihood=likelihood)).config.normalization == "adaptive"
    chosen = TimesCLIPModel(**model_kwargs(likelihood=likelihood_models.GaussianLikelihood(), normalization="instance"))
    assert chosen.config.normalization == "instance"
    with pytest.raises(ValueError, match=r"`normalization` must be one of \('instance', 'adaptive'\) or None"):
        TimesCLIPModel(**model_kwargs(normalization="global"))


def _support_series(family: type, seed: int = 0) -> TimeSeries:
    """A short two-variate series in the support of ``family``: real values, counts, positive values or (0, 1)."""
    base = make_series(90, n_components=2, seed=seed)
    values = base.values()
    if family in (likelihood_models.PoissonLikelihood, likelihood_models.NegativeBinomialLikelihood):
        values = np.random.default_rng(seed).poisson(20 + 8 * values).astype(np.float32)
    elif family in SCALE_FAMILIES:
        values = np.exp(values)
    elif family is likelihood_models.BetaLikelihood:
        values = 1 / (1 + np.exp(-values))
    return TimeSeries.from_times_and_values(base.time_index, values.astype(np.float32), columns=base.components)


def _in_support(family: type, values: np.ndarray) -> bool:
    if family in (likelihood_models.PoissonLikelihood, likelihood_models.NegativeBinomialLikelihood):
        return bool((values >= 0).all() and np.array_equal(values, np.round(values)))
    if family in SCALE_FAMILIES:
        return bool((values > 0).all())
    if family is likelihood_models.BetaLikelihood:
        return bool(((values > 0) & (values < 1)).all())
    return True


@pytest.mark.parametrize("family", supported_likelihoods(), ids=lambda f: f.__name__)
def test_every_family_works_through_the_darts_api(family, tmp_path):
    """fit, predict with samples and with parameters, historical forecasts, save / load, for every family."""
    likelihood = family([0.1, 0.5, 0.9]) if family is likelihood_models.QuantileRegression else family()
    series = _support_series(family)
    model = TimesCLIPModel(**model_kwargs(likelihood=likelihood)).fit(series)
    samples = model.predict(6, num_samples=20, random_state=1)
    assert samples.n_samples == 20 and np.isfinite(samples.all_values()).all()
    assert _in_support(family, samples.all_values())
    parameters = model.predict(6, predict_likelihood_parameters=True)
    n_params = likelihood.num_parameters
    assert parameters.n_components == 2 * n_params and np.isfinite(parameters.values()).all()
    historical = model.historical_forecasts(
        series, start=70, forecast_horizon=6, retrain=False, predict_likelihood_parameters=True, verbose=False
    )
    assert len(historical) == 90 - 70 - 6 + 1 and np.isfinite(historical.values()).all()
    path = str(tmp_path / "model.pt")
    model.save(path)
    loaded = TimesCLIPModel.load(path)
    assert np.array_equal(loaded.predict(6, num_samples=20, random_state=1).all_values(), samples.all_values())
    assert loaded.config.normalization == "adaptive"


BEYOND_LOCATION_SCALE = (
    likelihood_models.PoissonLikelihood,
    likelihood_models.NegativeBinomialLikelihood,
    likelihood_models.GammaLikelihood,
    likelihood_models.LogNormalLikelihood,
    likelihood_models.BetaLikelihood,
)


@pytest.mark.parametrize("family", BEYOND_LOCATION_SCALE, ids=lambda f: f.__name__)
def test_new_families_through_the_direct_predictor_and_the_service(family):
    """The direct predictor draws Darts' samples for the same seed (12 samples in groups of batch_size 8), returns
    the same parameters, and the service answers the median and quantiles of those samples."""
    from darts_timesclip.serve import create_app, running
    from tests.test_serve import call, payload

    series = _support_series(family)
    model = TimesCLIPModel(**model_kwargs(likelihood=family(), batch_size=8)).fit(series)
    expected = model.predict(6, series, num_samples=12, random_state=3, verbose=False)
    got = model.predictor().predict(6, series, num_samples=12, random_state=3)
    np.testing.assert_allclose(got.all_values(), expected.all_values(), rtol=1e-5, atol=1e-6)
    assert _in_support(family, got.all_values())
    parameters = model.predict(6, series, predict_likelihood_parameters=True, verbose=False)
    direct = model.predictor().predict(6, series, predict_likelihood_parameters=True)
    assert list(direct.components) == list(parameters.components)
    np.testing.assert_allclose(direct.values(), parameters.values(), rtol=1e-5, atol=1e-6)
    with running(create_app(model)) as url:
        status, answer = call(f"{url}/forecast", payload(series, num_samples=12, seed=3, quantiles=[0.1, 0.9]))
    assert status == 200, answer
    values = expected.all_values()
    np.testing.assert_allclose(answer["values"], np.quantile(values, 0.5, axis=-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(answer["quantiles"]["0.9"], np.quantile(values, 0.9, axis=-1), rtol=1e-5, atol=1e-5)


def test_affine_only_models_take_the_families_that_map_under_any_rescaling_and_refuse_the_others():
    from darts_timesclip.likelihoods import affine_parameter_kinds

    assert affine_parameter_kinds(None, "VQTransformerModel") == ("location",)
    assert affine_parameter_kinds(likelihood_models.GaussianLikelihood(), "VQTransformerModel") == (
        "location",
        "softplus_scale",
    )
    assert affine_parameter_kinds(likelihood_models.QuantileRegression([0.1, 0.5, 0.9]), "VQ") == ("location",) * 3
    supported = "QuantileRegression, GaussianLikelihood, LaplaceLikelihood, CauchyLikelihood, GumbelLikelihood"
    with pytest.raises(
        ValueError, match=rf"`likelihood=GammaLikelihood\(\)` is not supported: VQ.*Supported: {supported}\."
    ):
        affine_parameter_kinds(likelihood_models.GammaLikelihood(), "VQTransformerModel")
