"""The direct predictor: forecasts equal to Darts' ``predict`` (the same samples for a seed), without a trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from darts.utils.likelihood_models import GaussianLikelihood, QuantileRegression

from darts_timesclip import TimesCLIPModel, VQTransformerModel
from darts_timesclip.predictor import DirectPredictor, WindowTask
from tests._helpers import make_series, model_kwargs

ICL, OCL = 24, 6
ATOL = 1e-6


def _assert_same_forecasts(got, expected, atol=ATOL):
    got, expected = (got, expected) if isinstance(got, list) else ([got], [expected])
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert list(g.components) == list(e.components)
        assert g.time_index.equals(e.time_index)
        assert g.n_samples == e.n_samples
        np.testing.assert_allclose(g.all_values(), e.all_values(), rtol=0, atol=atol)


@pytest.fixture(scope="module")
def with_covariates():
    """A deterministic TimesCLIP with past covariates, its series of three lengths and their covariates."""
    series = make_series(120, n_components=2)
    covariates = make_series(160, n_components=1, seed=1).with_columns_renamed("c0", "temp")
    model = TimesCLIPModel(**model_kwargs())
    model.fit(series, past_covariates=covariates)
    return model, [series, series[:80], series[:50]], [covariates] * 3


@pytest.fixture(scope="module")
def gaussian():
    series = make_series(96, n_components=2)
    model = TimesCLIPModel(**model_kwargs(likelihood=GaussianLikelihood(), batch_size=8))
    model.fit(series)
    return model, series


@pytest.mark.parametrize("n", [OCL // 2, OCL, OCL + 2, 2 * OCL, 2 * OCL + 1])
def test_forecasts_equal_predict_with_past_covariates_and_autoregression(with_covariates, n):
    model, series, covariates = with_covariates
    expected = model.predict(n, series, past_covariates=covariates, verbose=False, show_warnings=False)
    predictor = model.predictor()
    _assert_same_forecasts(predictor.predict(n, series, past_covariates=covariates), expected)
    _assert_same_forecasts(predictor.predict(n, series[0], past_covariates=covariates[0]), expected[0])


def test_array_windows_give_the_series_forecasts(with_covariates):
    model, series, covariates = with_covariates
    n = 2 * OCL + 1
    predictor = model.predictor()
    windows = np.stack([s.values()[-ICL:] for s in series])
    rows = ICL + n - OCL  # the window, and the steps after it that auto-regression reads
    cov_windows = np.stack([c.slice_intersect(s).values()[-ICL:] for s, c in zip(series, covariates)])
    future = np.stack([c.values()[len(s) : len(s) + n - OCL] for s, c in zip(series, covariates)])
    cov_arrays = np.concatenate([cov_windows, future], axis=1)
    assert cov_arrays.shape == (3, rows, 1)
    got = predictor.predict(n, windows, past_covariates=cov_arrays)
    assert got.shape == (3, n, 2, 1)
    expected = model.predict(n, series, past_covariates=covariates, verbose=False, show_warnings=False)
    np.testing.assert_allclose(got, np.stack([e.all_values() for e in expected]), rtol=0, atol=ATOL)
    # a torch tensor is taken as an array
    np.testing.assert_allclose(
        predictor.predict(n, torch.from_numpy(windows), past_covariates=torch.from_numpy(cov_arrays)), got, atol=0
    )


@pytest.mark.parametrize("likelihood", [GaussianLikelihood(), QuantileRegression([0.1, 0.5, 0.9])])
@pytest.mark.parametrize(("n", "num_samples"), [(OCL, 5), (OCL, 20), (2 * OCL + 1, 20), (OCL - 2, 1)])
def test_samples_equal_darts_samples_for_the_same_seed(likelihood, n, num_samples):
    # batch_size 8 < 20 samples: Darts draws them in groups (`predict_step`), which the predictor follows
    series = make_series(96, n_components=2)
    model = TimesCLIPModel(**model_kwargs(likelihood=likelihood, batch_size=8))
    model.fit(series)
    histories = [series, series[:70]]
    expected = model.predict(n, histories, num_samples=num_samples, random_state=7, verbose=False)
    got = model.predictor().predict(n, histories, num_samples=num_samples, random_state=7)
    _assert_same_forecasts(got, expected)
    assert got[0].n_samples == num_samples


def test_seeds_differ_and_no_seed_draws_afresh(gaussian):
    model, series = gaussian
    predictor = model.predictor()
    a = predictor.predict(OCL, series, num_samples=10, random_state=1).all_values()
    b = predictor.predict(OCL, series, num_samples=10, random_state=2).all_values()
    c, d = (predictor.predict(OCL, series, num_samples=10).all_values() for _ in range(2))
    assert not np.allclose(a, b) and not np.allclose(c, d)
    np.testing.assert_array_equal(a, predictor.predict(OCL, series, num_samples=10, random_state=1).all_values())


def test_likelihood_parameters_equal_predict(gaussian):
    model, series = gaussian
    expected = model.predict(OCL, series, predict_likelihood_parameters=True, verbose=False)
    got = model.predictor().predict(OCL, series, predict_likelihood_parameters=True)
    _assert_same_forecasts(got, expected)
    assert list(got.components) == ["c0_mu", "c0_sigma", "c1_mu", "c1_sigma"]


def test_windows_with_their_own_settings_equal_one_call_each(gaussian):
    model, series = gaussian
    predictor = model.predictor()
    histories = [series, series[:60], series[:40], series]
    settings = [(OCL, 5, 1), (2 * OCL + 1, 12, 2), (3, 1, 3), (2 * OCL + 1, 9, 4)]  # (n, num_samples, seed)
    tasks = [
        WindowTask(h.values()[-ICL:], None, n, num_samples, seed)
        for h, (n, num_samples, seed) in zip(histories, settings)
    ]
    got = predictor.predict_windows(tasks)
    for h, (n, num_samples, seed), values in zip(histories, settings, got):
        expected = model.predict(n, h, num_samples=num_samples, random_state=seed, verbose=False)
        assert values.shape == (n, 2, num_samples)
        np.testing.assert_allclose(values, expected.all_values(), rtol=0, atol=ATOL)


def test_vq_transformer_predictor_equals_predict():
    from tests.test_vq import vq_kwargs

    series = make_series(200, n_components=2)
    covariates = make_series(220, n_components=1, seed=2)
    model = VQTransformerModel(**vq_kwargs(tokenizer_epochs=1, pretrain_epochs=1, n_epochs=1))
    model.fit(series, past_covariates=covariates)
    for n in (6, 13):
        histories = [series, series[:150]]
        expected = model.predict(n, histories, past_covariates=[covariates] * 2, verbose=False, show_warnings=False)
        _assert_same_forecasts(model.predictor().predict(n, histories, past_covariates=[covariates] * 2), expected)


def test_a_loaded_model_predicts_the_same_and_the_model_is_left_as_it_was(with_covariates, tmp_path):
    model, series, covariates = with_covariates
    path = tmp_path / "model.pt"
    model.save(str(path))
    loaded = TimesCLIPModel.load(str(path), map_location="cpu")
    expected = model.predict(OCL, series, past_covariates=covariates, verbose=False)
    predictor = loaded.predictor()
    loaded.model.train()
    _assert_same_forecasts(predictor.predict(OCL, series, past_covariates=covariates), expected)
    assert loaded.model.training  # the predictor restores the network's mode
    _assert_same_forecasts(loaded.predict(OCL, series, past_covariates=covariates, verbose=False), expected)


def test_onnx_engine_equals_darts_with_covariates_samples_and_autoregression(tmp_path):
    series = make_series(100, n_components=2)
    covariates = make_series(130, n_components=1, seed=1)
    model = TimesCLIPModel(**model_kwargs(likelihood=GaussianLikelihood(), batch_size=8))
    model.fit(series, past_covariates=covariates)
    path = tmp_path / "batch.onnx"
    predictor = model.predictor(engine="onnx", onnx_path=path)
    assert path.is_file() and predictor.engine == "onnx"
    histories = [series, series[:60], series[:45]]  # three windows in one ONNX Runtime call: a dynamic batch
    for n, num_samples in ((OCL, 1), (2 * OCL + 1, 12)):
        expected = model.predict(
            n,
            histories,
            past_covariates=[covariates] * 3,
            num_samples=num_samples,
            random_state=5,
            verbose=False,
            show_warnings=False,
        )
        got = predictor.predict(n, histories, past_covariates=[covariates] * 3, num_samples=num_samples, random_state=5)
        _assert_same_forecasts(got, expected, atol=1e-4)
    expected = model.predict(
        OCL, histories, past_covariates=[covariates] * 3, predict_likelihood_parameters=True, verbose=False
    )
    got = predictor.predict(OCL, histories, past_covariates=[covariates] * 3, predict_likelihood_parameters=True)
    _assert_same_forecasts(got, expected, atol=1e-4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p, s, c: p.predict(0, s, c), r"`n` must be a positive integer, got `0`"),
        (lambda p, s, c: p.predict(6, s, c, num_samples=3), r"`num_samples=3` needs a probabilistic model"),
        (lambda p, s, c: p.predict(6, s, c, predict_likelihood_parameters=True), "needs a model trained with a"),
        (lambda p, s, c: p.predict(6, s, None), r"`past_covariates` are required: the TimesCLIPModel was trained"),
        (lambda p, s, c: p.predict(6, s[:20], c), r"`series` has 20 time steps; the input window needs at least 24"),
        (lambda p, s, c: p.predict(6, s.with_values(np.full((len(s), 2), np.nan, np.float32)), c),
         r"`series` has a non-finite value \(nan\) in component `c0`"),
        (lambda p, s, c: p.predict(6, s[["c0"]], c), "`series` has 1 components, but the model was trained on 2"),
        (lambda p, s, c: p.predict(20, s, c[:125]),
         r"`past_covariates` spans .* the forecast needs .* and 14 step\(s\) after it "
         r"\(n = 20 > output_chunk_length = 6\)"),
        (lambda p, s, c: p.predict(6, s, c, random_state=-1), r"`random_state` must be an integer in \[0, 2\*\*32\)"),
        (lambda p, s, c: p.predict(6, np.zeros((2, 23, 2)), np.zeros((2, 24, 1))),
         r"`series` has shape \[2, 23, 2\]; expected \[B, 24, 2\]"),
        (lambda p, s, c: p.predict(8, np.zeros((2, 24, 2)), np.zeros((2, 24, 1))),
         r"`past_covariates` has shape \[2, 24, 1\]; expected \[B, 26, 1\]"),
        (lambda p, s, c: p.predict(6, np.full((2, 24, 2), np.inf), np.zeros((2, 24, 1))),
         r"`series` has a non-finite value \(inf\) in window 0, step 0, component 0"),
        (lambda p, s, c: p.predict(6, np.full((1, 24, 2), 1e300), np.zeros((1, 24, 1))), "out of the model's float32"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_argument(with_covariates, call, message):
    model, series, covariates = with_covariates
    with pytest.raises(ValueError, match=message):
        call(model.predictor(), series[0], covariates[0])


def test_predictor_arguments_are_checked(with_covariates):
    model, _, _ = with_covariates
    with pytest.raises(ValueError, match=r"`engine` must be one of \['torch', 'onnx'\], got `'tf'`"):
        model.predictor(engine="tf")
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer, got `0`"):
        model.predictor(batch_size=0)
    with pytest.raises(ValueError, match="`engine='onnx'` runs on the CPU"):
        model.predictor(engine="onnx", device="cuda")
    with pytest.raises(ValueError, match=r"`TimesCLIPModel.predictor\(\)` needs a fitted model"):
        TimesCLIPModel(**model_kwargs()).predictor()
    assert isinstance(model.predictor(batch_size=3), DirectPredictor)
