"""Seed statistics shared by the studies: mean ± standard deviation and the seed-spread rule for a difference."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Literal

import numpy as np

Verdict = Literal["better", "worse", "within spread", "one seed"]


def mean_over_seeds(values: Iterable[tuple[Hashable, float]]) -> float:
    """The mean over seeds of ``(seed, value)`` pairs, each seed's values averaged first (a seed that ran twice, e.g.
    in two studies, counts once).

    Raises
    ------
    ValueError
        If there is no value.
    """
    by_seed: dict[Hashable, list[float]] = {}
    for seed, value in values:
        by_seed.setdefault(seed, []).append(float(value))
    if not by_seed:
        raise ValueError("No value to average over seeds.")
    return float(np.mean([np.mean(v) for v in by_seed.values()]))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0 for a single value)."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def seed_verdict(candidate: Sequence[float], reference: Sequence[float]) -> Verdict:
    """Whether ``candidate``'s errors are lower than ``reference``'s by more than the seed spread.

    A difference counts only where both have at least two seeds and the difference of the means exceeds the larger
    of the two standard deviations; otherwise it is ``"within spread"`` (or ``"one seed"``, which cannot be judged).
    """
    if min(len(candidate), len(reference)) < 2:
        return "one seed"
    (mc, sc), (mr, sr) = mean_std(candidate), mean_std(reference)
    if abs(mc - mr) <= max(sc, sr):
        return "within spread"
    return "better" if mc < mr else "worse"
