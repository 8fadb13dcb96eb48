"""ONNX export through Darts' own ``to_onnx``: rendering and both towers in the graph, the cache bypassed, forecasts
from ONNX Runtime equal to ``predict``."""

from __future__ import annotations

import numpy as np
from darts.utils.likelihood_models import QuantileRegression
from darts.utils.onnx import run_onnx_prediction

from darts_timesclip import TimesCLIPModel
from tests._extras import requires
from tests._helpers import make_series, model_kwargs

ort = requires("onnxruntime", "onnx")  # the README's set-up installs the extra
requires("onnxscript", "onnx")  # the export


def _export(model: TimesCLIPModel, path) -> object:
    model.to_onnx(str(path), verbose=False)
    return ort.InferenceSession(str(path))


def test_onnx_forecasts_equal_predict_with_past_covariates_and_autoregression(tmp_path):
    series = make_series(120, n_components=3)
    covariates = make_series(132, n_components=1, seed=1).with_columns_renamed("c0", "cov")
    model = TimesCLIPModel(**model_kwargs(image_encoding="gasf"))
    model.fit(series, past_covariates=covariates)
    session = _export(model, tmp_path / "model.onnx")

    names = {i.name for i in session.get_inputs()}
    assert {"past_target", "past_covariates"} <= names
    for n in (6, 12):  # one chunk, and an auto-regressive second chunk fed by the covariates' future values
        expected = model.predict(n, series, past_covariates=covariates, verbose=False)
        got = run_onnx_prediction(n=n, session=session, series=series, past_covariates=covariates)
        assert got.components.tolist() == expected.components.tolist()
        assert (got.time_index == expected.time_index).all()
        np.testing.assert_allclose(got.values(), expected.values(), atol=1e-4)


def test_onnx_gives_the_likelihood_parameters(tmp_path):
    series = make_series(96, n_components=2)
    model = TimesCLIPModel(**model_kwargs(likelihood=QuantileRegression([0.1, 0.5, 0.9])))
    model.fit(series)
    session = _export(model, tmp_path / "quantiles.onnx")
    expected = model.predict(6, series, predict_likelihood_parameters=True, verbose=False)
    got = run_onnx_prediction(n=6, session=session, series=series)
    assert got.components.tolist() == ["c0_q0.100", "c0_q0.500", "c0_q0.900", "c1_q0.100", "c1_q0.500", "c1_q0.900"]
    np.testing.assert_allclose(got.values(), expected.values(), atol=1e-4)
