"""Which Darts likelihoods a normalising model can serve, and how each of their parameters returns to scale.

A network that normalises its input windows forecasts distribution parameters on the normalised scale; each parameter
then returns to the data's scale by its kind (:data:`~darts_timesclip.network.normalization.PARAMETER_KINDS`), and
Darts' likelihood turns the raw outputs into the distribution (softplus for positive parameters):

=================================  ================================================  =============================
likelihood                          parameters and how they return to scale           needs
=================================  ================================================  =============================
``QuantileRegression``              every quantile: ``q * s + m``                     any normalisation
``GaussianLikelihood``,             location ``mu * s + m``, scale ``sigma * s``      any normalisation
``LaplaceLikelihood``,
``CauchyLikelihood``,
``GumbelLikelihood``
``PoissonLikelihood``               rate ``lambda * l``                               ``normalization="adaptive"``
``NegativeBinomialLikelihood``      mean ``mu * l``, dispersion ``alpha`` unchanged   ``normalization="adaptive"``
``GammaLikelihood``                 shape ``alpha`` unchanged, rate ``beta / l``      ``normalization="adaptive"``
``LogNormalLikelihood``             ``mu + log(l)``, ``sigma`` unchanged              ``normalization="adaptive"``
``BetaLikelihood``                  ``alpha``, ``beta`` unchanged                     ``normalization="adaptive"``
=================================  ================================================  =============================

``m`` and ``s`` are the de-normalisation location and spread of a window (its own mean and standard deviation with
``normalization="instance"``, the learnt blend with ``"adaptive"``), ``l = sqrt(m^2 + (s / 1000)^2)`` its level (about
``|m|``, the natural scale of positive data). The location-scale families and quantiles map exactly under the affine
normalisation ``(x - m) / s``. The gamma and log-normal are scale families: if ``x / l`` follows the network's
distribution, ``x`` follows the mapped one exactly. Poisson and negative binomial forecast a count's mean relative to
the level (as DeepAR does with its scale), the negative binomial's dispersion being the scale-free shape of its gamma
mixing distribution. A beta's support is ``(0, 1)`` whatever the window, so its parameters stay as they are. All but
the affine families depend on the window's level (a gamma's shape is its mean over its spread, squared; a Poisson's
spread is set by its mean), which instance normalisation hides from the network: they need the ``"adaptive"``
normalisation, which gives the network the window's statistics.
"""

from __future__ import annotations

from darts.utils.likelihood_models.torch import (
    BernoulliLikelihood,
    BetaLikelihood,
    CauchyLikelihood,
    ContinuousBernoulliLikelihood,
    DirichletLikelihood,
    ExponentialLikelihood,
    GammaLikelihood,
    GaussianLikelihood,
    GeometricLikelihood,
    GumbelLikelihood,
    HalfNormalLikelihood,
    LaplaceLikelihood,
    LogNormalLikelihood,
    NegativeBinomialLikelihood,
    PoissonLikelihood,
    QuantileRegression,
    TorchLikelihood,
    WeibullLikelihood,
)

#: Likelihoods whose parameters are a location and a scale (both map under any affine normalisation).
LOCATION_SCALE_LIKELIHOODS = (GaussianLikelihood, LaplaceLikelihood, CauchyLikelihood, GumbelLikelihood)

#: The parameter kinds of every supported likelihood with a fixed number of parameters, in Darts' parameter order.
LIKELIHOOD_PARAMETER_KINDS: dict[type[TorchLikelihood], tuple[str, ...]] = {
    **{family: ("location", "softplus_scale") for family in LOCATION_SCALE_LIKELIHOODS},
    PoissonLikelihood: ("softplus_level",),
    NegativeBinomialLikelihood: ("softplus_level", "invariant"),
    GammaLikelihood: ("invariant", "softplus_inverse_level"),
    LogNormalLikelihood: ("log_level_shift", "invariant"),
    BetaLikelihood: ("invariant", "invariant"),
}

#: Why the other likelihoods of ``darts.utils.likelihood_models.torch`` are refused.
REFUSED_LIKELIHOODS: dict[type[TorchLikelihood], str] = {
    BernoulliLikelihood: (
        "a 0/1 target has no scale to return to, and the quantiles of a 0/1 outcome are 0 or 1, so its forecasts "
        "cannot be checked for calibration as every supported family's are (median, 10 / 90 % quantiles, 80 % "
        "coverage); for rates in (0, 1) use BetaLikelihood"
    ),
    ContinuousBernoulliLikelihood: (
        "its one parameter sets both the location and the spread on [0, 1] and it has no calibration test here; for "
        "values in (0, 1) use BetaLikelihood"
    ),
    DirichletLikelihood: (
        "it is one distribution over all target components jointly (a point of the simplex), while TimesCLIP "
        "forecasts every variate with the same generator, on its own scale"
    ),
    GeometricLikelihood: (
        "its one probability sets both the mean and the spread of a count, with no mapping under rescaling; for "
        "counts use PoissonLikelihood or NegativeBinomialLikelihood"
    ),
    ExponentialLikelihood: (
        "a scale family with no calibration test here; it is the gamma with shape 1: use GammaLikelihood"
    ),
    HalfNormalLikelihood: (
        "a scale family on [0, inf) with no calibration test here; for positive data use GammaLikelihood or "
        "LogNormalLikelihood"
    ),
    WeibullLikelihood: (
        "a scale family with no calibration test here; for positive data use GammaLikelihood or LogNormalLikelihood"
    ),
}


def supported_likelihoods(affine_only: bool = False) -> tuple[type[TorchLikelihood], ...]:
    """The supported likelihood classes (``affine_only``: those that instance normalisation serves, quantiles and
    location-scale families)."""
    return (QuantileRegression, *(LOCATION_SCALE_LIKELIHOODS if affine_only else LIKELIHOOD_PARAMETER_KINDS))


def parameter_kinds(
    likelihood: TorchLikelihood | None, model_name: str, normalization: str | None = "adaptive"
) -> tuple[str, ...]:
    """One entry of :data:`~darts_timesclip.network.normalization.PARAMETER_KINDS` per parameter the network outputs
    for ``likelihood``.

    Parameters
    ----------
    likelihood
        A Darts likelihood, or ``None`` for point forecasts.
    model_name
        The model, for error messages.
    normalization
        The model's normalisation: ``"adaptive"`` or ``None`` (``None`` resolves to ``"adaptive"`` for a likelihood)
        serve every supported family; ``"instance"`` only the affine ones (quantiles and location-scale families).

    Raises
    ------
    ValueError
        For a likelihood whose parameters cannot be returned to scale (e.g. Bernoulli, Dirichlet), naming the
        likelihood and why; or one that needs ``normalization="adaptive"`` under ``"instance"``.
    """
    if likelihood is None:
        return ("location",)
    name = f"`likelihood={type(likelihood).__name__}()`"
    if isinstance(likelihood, QuantileRegression):
        return ("location",) * likelihood.num_parameters
    kinds = next((k for family, k in LIKELIHOOD_PARAMETER_KINDS.items() if isinstance(likelihood, family)), None)
    if kinds is None:
        reason = next((r for family, r in REFUSED_LIKELIHOODS.items() if isinstance(likelihood, family)), None)
        supported = ", ".join(c.__name__ for c in supported_likelihoods())
        raise ValueError(
            f"{name} is not supported: {reason or 'its parameters have no known mapping to the normalised scale'}. "
            f"{model_name} normalises each window and must return the likelihood's parameters to the original scale. "
            f"Supported: {supported}."
        )
    if normalization == "instance" and not isinstance(likelihood, LOCATION_SCALE_LIKELIHOODS):
        raise ValueError(
            f"{name} needs `normalization='adaptive'` (or None), got `normalization='instance'`: its parameters depend "
            "on the window's level, which instance normalisation hides from the network."
        )
    return kinds


def affine_parameter_kinds(likelihood: TorchLikelihood | None, model_name: str) -> tuple[str, ...]:
    """:func:`parameter_kinds` for a model that normalises every window by its own statistics only (the
    ``VQTransformerModel``): quantiles and location-scale families.

    Raises
    ------
    ValueError
        For any other likelihood, naming it and listing the supported ones.
    """
    kinds = parameter_kinds(likelihood, model_name)
    if likelihood is not None and not isinstance(likelihood, (QuantileRegression, *LOCATION_SCALE_LIKELIHOODS)):
        supported = ", ".join(c.__name__ for c in supported_likelihoods(affine_only=True))
        raise ValueError(
            f"`likelihood={type(likelihood).__name__}()` is not supported: {model_name} normalises each window by its "
            f"own statistics, which hides the window's level that this family's parameters depend on. "
            f"Supported: {supported}."
        )
    return kinds
