"""Which Darts likelihoods a normalising model can serve, and how each of their parameters returns to scale."""

from __future__ import annotations

from darts.utils.likelihood_models.torch import (
    CauchyLikelihood,
    GaussianLikelihood,
    GumbelLikelihood,
    LaplaceLikelihood,
    QuantileRegression,
    TorchLikelihood,
)

#: Likelihoods whose parameters can be returned to the scale of the input (location, softplus-scale).
LOCATION_SCALE_LIKELIHOODS = (GaussianLikelihood, LaplaceLikelihood, CauchyLikelihood, GumbelLikelihood)


def parameter_kinds(likelihood: TorchLikelihood | None, model_name: str) -> tuple[str, ...]:
    """One of ``("location", "softplus_scale")`` per parameter the network outputs for ``likelihood``.

    Raises
    ------
    ValueError
        For a likelihood whose parameters cannot be de-normalised (e.g. Poisson, Bernoulli).
    """
    if likelihood is None:
        return ("location",)
    if isinstance(likelihood, QuantileRegression):
        return ("location",) * likelihood.num_parameters
    if isinstance(likelihood, LOCATION_SCALE_LIKELIHOODS):
        return ("location", "softplus_scale")
    supported = ", ".join(c.__name__ for c in (QuantileRegression, *LOCATION_SCALE_LIKELIHOODS))
    raise ValueError(
        f"`likelihood={type(likelihood).__name__}()` is not supported: {model_name} normalises each window and "
        f"must return the likelihood's parameters to the original scale. Supported: {supported}."
    )
