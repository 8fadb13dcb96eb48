"""A seeded synthetic crop-yield task: a season of vegetation indices per field, and the field's yield."""

from __future__ import annotations

import numpy as np

#: Variates of :func:`crop_seasons`, in order.
CROP_VARIATES = ("NDVI", "EVI", "NIR", "soil_moisture")

#: Where in the season (0 = sowing, 1 = harvest) stress costs the most yield: flowering.
_FLOWERING = 0.55


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def crop_seasons(
    n_samples: int, length: int = 36, seed: int = 0, yield_noise: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Seasons of satellite indices over fields and their yields.

    Each field's greenness follows a double-logistic growth curve (green-up, plateau, senescence; dates, rates and
    peak drawn per field). Up to three stress events (droughts: a dip in soil moisture, followed by a loss of
    greenness that recovers) strike at random times. NDVI, EVI and NIR derive from the greenness with sensor noise
    and occasional cloud-contaminated observations (all three drop). The yield, in t/ha, grows with the season's
    integrated and peak greenness, loses more for stress near flowering than early or late, and carries noise of
    standard deviation ``yield_noise``.

    Parameters
    ----------
    n_samples
        Number of fields (seasons).
    length
        Observations per season (36: ten-day composites over a year).
    seed
        Seed of everything drawn.
    yield_noise
        Standard deviation of the yield's unexplained part, in t/ha.

    Returns
    -------
    tuple
        ``X [n_samples, length, 4]`` float32 (variates :data:`CROP_VARIATES`) and ``y [n_samples]`` float64.

    Raises
    ------
    ValueError
        For a ``n_samples`` below 1 or a ``length`` below 8.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"`n_samples` must be a positive integer, got `{n_samples!r}`.")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 8:
        raise ValueError(f"`length` must be an integer >= 8, got `{length!r}`.")
    rng = np.random.default_rng(seed)
    n = int(n_samples)
    t = np.linspace(0.0, 1.0, length)[None, :]  # [1, T]
    column = lambda low, high: rng.uniform(low, high, size=(n, 1))  # noqa: E731 - one line per parameter

    green_up, senescence = column(0.12, 0.35), column(0.62, 0.88)
    rate_up, rate_down = column(14, 30), column(10, 25)
    peak, base = column(0.35, 0.75), column(0.08, 0.2)
    growth = _sigmoid(rate_up * (t - green_up)) - _sigmoid(rate_down * (t - senescence))  # [n, T], in (−1, 1)
    growth = np.clip(growth, 0.0, None)

    n_events = rng.integers(0, 4, size=n)
    loss = np.zeros((n, length))
    dryness = np.zeros((n, length))
    yield_penalty = np.zeros(n)
    for k in range(3):
        active = (n_events > k)[:, None]
        when, width, severity = column(0.2, 0.85), column(0.03, 0.08), column(0.1, 0.6) * active
        after = np.clip(t - when, 0.0, None)
        dryness += severity * np.exp(-(((t - when + 0.04) / width) ** 2))  # soil dries out first
        loss += severity * (1 - np.exp(-after / width)) * np.exp(-after / 0.15)  # greenness lost, then recovered
        yield_penalty += (severity * np.exp(-(((when - _FLOWERING) / 0.12) ** 2)))[:, 0]
    green = growth * np.clip(1 - loss, 0.0, 1.0)  # [n, T] in [0, 1]

    ndvi = base + peak * green
    evi = 0.85 * ndvi - 0.05 + 0.05 * green**2
    nir = 0.18 + 0.35 * peak * green
    cloudy = rng.random((n, length)) < 0.06
    cover = rng.uniform(0.3, 0.8, size=(n, length)) * cloudy
    ndvi, evi = ndvi * (1 - cover), evi * (1 - cover)
    nir = nir * (1 - 0.5 * cover) + 0.1 * cover
    rain = 0.04 * np.sin(2 * np.pi * (t + column(0, 1)))
    soil = 0.32 + rain - 0.25 * dryness + 0.02 * rng.standard_normal((n, length))
    noisy = [v + s * rng.standard_normal((n, length)) for v, s in ((ndvi, 0.015), (evi, 0.015), (nir, 0.01))]
    X = np.stack([*noisy, soil], axis=-1).astype(np.float32)

    season = green.mean(axis=1)
    y = 1.5 + 9.0 * season + 4.0 * peak[:, 0] * green.max(axis=1) - 5.0 * yield_penalty
    y = y + yield_noise * rng.standard_normal(n)
    return X, y
