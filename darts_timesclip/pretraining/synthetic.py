"""A fast, seeded generator of varied synthetic series for pretraining (KernelSynth in spirit).

Chronos' KernelSynth (Ansari et al., 2024) draws series from Gaussian processes whose kernel is a random
composition (sum or product) of kernels from a bank: periodic kernels of typical periods, linear and smooth
(RBF, rational quadratic) trends, and white noise. Sampling a GP costs a Cholesky factorisation per series; this
generator composes the same families of *functions* explicitly (seasonal harmonics at typical periods, linear,
polynomial, exponential and logistic trends, level shifts, smooth random walks, AR(1) and white noise), joined by
``+`` or ``*`` as in KernelSynth, which costs microseconds per series and keeps every draw reproducible from its
seed.
"""

from __future__ import annotations

import numpy as np

#: Typical periods of real series (hours of a day and week, days of a week/month/year, months of a year, ...).
PERIODS = (4, 5, 7, 12, 14, 24, 28, 30, 48, 52, 60, 96, 168, 365)


def _seasonal(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    period = rng.choice(PERIODS) * rng.uniform(0.9, 1.1)
    harmonics = rng.integers(1, 4)
    out = np.zeros_like(t)
    for k in range(1, harmonics + 1):
        out += rng.normal() / k * np.sin(2 * np.pi * k * t / period + rng.uniform(0, 2 * np.pi))
    return out


def _trend(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = t / max(len(t) - 1, 1)
    kind = rng.integers(4)
    if kind == 0:
        return rng.normal() * x
    if kind == 1:
        return rng.normal() * x + rng.normal() * x**2
    if kind == 2:
        return np.expm1(rng.uniform(-2, 2) * x)
    return 1 / (1 + np.exp(-rng.uniform(5, 20) * (x - rng.uniform(0.2, 0.8))))


def _level_shifts(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros_like(t)
    for start in rng.integers(0, len(t), size=rng.integers(1, 4)):
        out[start:] += rng.normal()
    return out


def _smooth_walk(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    walk = np.cumsum(rng.normal(size=len(t)))
    width = int(rng.integers(1, 25))
    kernel = np.ones(width) / width
    return np.convolve(walk, kernel, mode="same") / np.sqrt(len(t))


def _ar1(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    phi = rng.uniform(0.3, 0.98)
    noise = rng.normal(size=len(t)) * np.sqrt(1 - phi**2)
    out = np.empty_like(t)
    out[0] = noise[0]
    for i in range(1, len(t)):
        out[i] = phi * out[i - 1] + noise[i]
    return out


def _noise(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=len(t))


#: The bank of components, each drawn with the listed weight.
COMPONENTS = (
    (_seasonal, 4.0),
    (_trend, 2.0),
    (_level_shifts, 0.5),
    (_smooth_walk, 1.0),
    (_ar1, 1.0),
    (_noise, 1.0),
)


def synthetic_series(n_series: int, length: int = 1024, seed: int = 0, max_components: int = 5) -> list[np.ndarray]:
    """Draw ``n_series`` univariate series.

    Each is a random composition of 1 to ``max_components`` components from :data:`COMPONENTS`, joined by
    ``+`` or (for a quarter of the joins) ``*``, scaled and shifted at random; a noise floor keeps every series
    non-constant.

    Parameters
    ----------
    n_series
        Number of series.
    length
        Points per series.
    seed
        Seed; the same seed gives the same series.
    max_components
        Most components per series.

    Returns
    -------
    list[np.ndarray]
        ``n_series`` float32 arrays of shape ``[length]``.
    """
    if isinstance(n_series, bool) or not isinstance(n_series, int | np.integer) or n_series < 0:
        raise ValueError(f"`n_series` must be a non-negative integer, got `{n_series!r}`.")
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or length < 2:
        raise ValueError(f"`length` must be an integer of at least 2, got `{length!r}`.")
    rng = np.random.default_rng(seed)
    functions, weights = zip(*COMPONENTS)
    p = np.asarray(weights) / sum(weights)
    t = np.arange(length, dtype=np.float64)
    out = []
    for _ in range(n_series):
        picks = rng.choice(len(functions), size=rng.integers(1, max_components + 1), p=p)
        y = functions[picks[0]](t, rng)
        for k in picks[1:]:
            part = functions[k](t, rng)
            if rng.uniform() < 0.25:  # a product, as KernelSynth's `*`: e.g. seasonality growing with a trend
                y = y * (1 + 0.5 * part / (np.abs(part).max() + 1e-8))
            else:
                y = y + part
        y = y + 0.01 * (np.std(y) + 1e-3) * rng.normal(size=length)
        y = y * rng.lognormal(0, 1) + rng.normal(0, 3)
        out.append(y.astype(np.float32))
    return out
