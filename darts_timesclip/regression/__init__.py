"""Series-level regression with TimesCLIP: one target (or a few) per multivariate series, scikit-learn style.

:class:`TimesCLIPRegressor` reuses a fitted :class:`~darts_timesclip.TimesCLIPModel`'s encoder (or builds a fresh
one) and trains a small head on each variate's tokens of both views; :func:`crop_seasons` generates the synthetic
crop-yield task of the benchmark (``python -m benchmarks regression``).
"""

from darts_timesclip.regression.estimator import TimesCLIPRegressor
from darts_timesclip.regression.head import RegressionHead, variate_features
from darts_timesclip.regression.synthetic import CROP_VARIATES, crop_seasons

__all__ = ["CROP_VARIATES", "RegressionHead", "TimesCLIPRegressor", "crop_seasons", "variate_features"]
