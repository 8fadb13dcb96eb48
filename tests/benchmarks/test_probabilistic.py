"""The probabilistic tier: CRPS from samples and from quantiles against the closed form, the likelihoods' sampling,
and the ``probabilistic`` study end to end on a synthetic dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from darts.utils.likelihood_models import GaussianLikelihood, LaplaceLikelihood, PoissonLikelihood
from scipy import stats

from benchmarks.cli import main
from benchmarks.probabilistic import (
    QUANTILE_LEVELS,
    crps_closed_form,
    crps_from_quantiles,
    crps_from_samples,
    make_likelihood,
    quantile_weights,
    sample_likelihood,
)
from benchmarks.runner import load_results
from tests.benchmarks.bench_helpers import write_synthetic_csv


def gaussian_crps(y: np.ndarray, loc: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """Closed-form CRPS of N(loc, scale^2) (Gneiting and Raftery 2007)."""
    z = (y - loc) / scale
    return scale * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def test_crps_from_samples_and_from_quantiles_match_the_closed_form():
    y = np.array([-2.0, -0.3, 0.0, 0.8, 3.0])
    exact = gaussian_crps(y, 0.5, 2.0)
    samples = np.random.default_rng(0).normal(0.5, 2.0, size=(1, 20000))
    assert crps_from_samples(np.repeat(samples, len(y), axis=0), y) == pytest.approx(exact, rel=0.02)
    levels = tuple(np.linspace(0.005, 0.995, 199))
    quantiles = np.broadcast_to(stats.norm(0.5, 2.0).ppf(levels), (len(y), len(levels)))
    assert crps_from_quantiles(quantiles, levels, y) == pytest.approx(exact, rel=0.02)
    # the suite's 13 levels: a coarser estimate of the same score
    coarse = crps_from_quantiles(
        np.broadcast_to(stats.norm(0.5, 2.0).ppf(QUANTILE_LEVELS), (5, 13)), QUANTILE_LEVELS, y
    )
    assert coarse == pytest.approx(exact, rel=0.1)
    parameters = np.broadcast_to([0.5, 2.0], (5, 2))
    assert crps_closed_form(GaussianLikelihood(), parameters, y) == pytest.approx(exact, rel=1e-9)
    laplace = stats.laplace(0.5, 2.0)  # CRPS = E|X - y| - E|X - X'| / 2, E|X - X'| = 1.5 b
    expected = [laplace.expect(lambda x, t=t: abs(x - t)) - 0.75 * 2.0 for t in y]
    assert crps_closed_form(LaplaceLikelihood(), parameters, y) == pytest.approx(expected, rel=1e-6)


def test_quantile_weights_sum_to_one_and_levels_must_increase():
    assert quantile_weights(QUANTILE_LEVELS).sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"`levels` must be strictly increasing in \(0, 1\), got \[0.5, 0.1\]"):
        quantile_weights((0.5, 0.1))


@pytest.mark.parametrize(
    ("likelihood", "truth"),
    [(GaussianLikelihood(), stats.norm(1.0, 3.0)), (LaplaceLikelihood(), stats.laplace(1.0, 3.0))],
    ids=["gaussian", "laplace"],
)
def test_samples_follow_the_predicted_distribution(likelihood, truth):
    draws = sample_likelihood(likelihood, np.array([[1.0, 3.0]]), 40000, torch.Generator().manual_seed(0))[0]
    assert np.quantile(draws, [0.1, 0.5, 0.9]) == pytest.approx(truth.ppf([0.1, 0.5, 0.9]), abs=0.08)
    with pytest.raises(ValueError, match=r"`likelihood=PoissonLikelihood\(\)` by samples is not supported"):
        sample_likelihood(PoissonLikelihood(), np.ones((1, 1)), 10, torch.Generator())
    with pytest.raises(ValueError, match=r"`likelihood` must be one of .* got `'beta'`"):
        make_likelihood("beta")


def test_the_probabilistic_study_scores_every_test_window(tmp_path):
    data = tmp_path / "data"
    write_synthetic_csv(data / "ETTh1.csv", 17420, 7)
    out = tmp_path / "out"
    argv = ["probabilistic", "--datasets", "ETTh1", "--models", "dlinear", "--likelihoods", "quantile", "gaussian",
            "--scale", "tiny", "--max-epochs", "1", "--max-samples-per-ts", "64", "--data-dir", str(data),
            "--output", str(out), "--results", str(tmp_path), "--no-plots", "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    records = sorted(load_results(out), key=lambda r: r["coordinates"]["likelihood"])
    assert [(r["model"], r["coordinates"]["likelihood"]) for r in records] == [
        ("dlinear", "gaussian"),
        ("dlinear", "quantile"),
    ]
    for record in records:
        metrics = record["metrics"]
        assert metrics["n_test_windows"] == 2880 - 96 + 1
        assert 0 <= metrics["coverage_80"] <= metrics["coverage_95"] <= 1
        assert 0 < metrics["width_80"] < metrics["width_95"]
        assert 0 < metrics["crps"] < metrics["mae"] * 2
        assert record["model_config"]["architecture"]["likelihood"] == record["coordinates"]["likelihood"]
    text = (tmp_path / "probabilistic.md").read_text()
    assert "## Likelihood `quantile`" in text and "## Likelihood `gaussian`" in text
    assert "| ETTh1 | **" in text  # one model: the lowest CRPS
    rows = (tmp_path / "probabilistic.csv").read_text().splitlines()
    assert rows[0].startswith("dataset,horizon,model,likelihood,seed,crps,coverage_80,coverage_95")
    assert json.loads(json.dumps(records))  # plain JSON
