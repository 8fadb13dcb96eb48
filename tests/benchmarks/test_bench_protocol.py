"""Protocol: train-only scaling, truth windows, scoring of every stride-1 test window."""

from __future__ import annotations

import numpy as np
import pytest

import benchmarks.protocol as protocol
from benchmarks.protocol import prepare, score_test_windows, truth_windows
from benchmarks.registry import get_spec, read_dataset
from tests.benchmarks.bench_helpers import write_synthetic_csv

LOOKBACK, HORIZON = 24, 8


@pytest.fixture
def data(tmp_path):
    write_synthetic_csv(tmp_path / "exchange_rate.csv", 400, 3)
    return prepare(read_dataset(get_spec("exchange_rate"), tmp_path), LOOKBACK)


@pytest.fixture
def fitted_model(data, quiet_trainer):
    from darts.models import NLinearModel

    model = NLinearModel(LOOKBACK, HORIZON, n_epochs=1, batch_size=64, random_state=0, pl_trainer_kwargs=quiet_trainer)
    model.fit(data.split_series("train"))
    return model


def test_scaler_is_fitted_on_train_only(tmp_path):
    frame = write_synthetic_csv(tmp_path / "exchange_rate.csv", 400, 3)
    raw = frame.drop(columns="date")[["v0", "v1", "OT"]].to_numpy(np.float64)
    data = prepare(read_dataset(get_spec("exchange_rate"), tmp_path), LOOKBACK)
    train_end = data.borders.train[1]
    expected = (raw - raw[:train_end].mean(0)) / raw[:train_end].std(0)  # population std, as sklearn
    np.testing.assert_allclose(data.scaled, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(data.scaled[:train_end].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.scaled[:train_end].std(0), 1.0, atol=1e-5)

    # changing everything after the train split leaves the scaling of the train rows untouched
    frame.iloc[train_end:, 1:] = frame.iloc[train_end:, 1:] * 50 + 1000
    frame.to_csv(tmp_path / "exchange_rate.csv", index=False)
    shifted = prepare(read_dataset(get_spec("exchange_rate"), tmp_path), LOOKBACK)
    np.testing.assert_array_equal(shifted.scaled[:train_end], data.scaled[:train_end])
    assert not np.allclose(shifted.scaled[train_end:], data.scaled[train_end:])


def test_only_rows_up_to_the_test_end_are_used(tmp_path):
    write_synthetic_csv(tmp_path / "ETTh1.csv", 14500, 7)
    data = prepare(read_dataset(get_spec("ETTh1"), tmp_path), 96)
    assert data.scaled.shape == (14400, 7)


def test_split_series_match_the_borders(data):
    for split in ("train", "val", "test"):
        start, end = getattr(data.borders, split)
        series = data.split_series(split)
        assert len(series) == end - start
        assert series.start_time() == start
        np.testing.assert_array_equal(series.values(), data.scaled[start:end])


def test_truth_windows_are_the_stride_1_targets():
    scaled = np.arange(60, dtype=np.float32).reshape(20, 3)
    windows = truth_windows(scaled, first_target=5, n_windows=4, horizon=6)
    assert windows.shape == (4, 6, 3)
    for w in range(4):
        np.testing.assert_array_equal(windows[w], scaled[5 + w : 11 + w])


def test_scores_every_test_window_like_a_loop(data, fitted_model):
    score = score_test_windows(fitted_model, data, HORIZON, example_index=3)
    start, end = data.borders.test
    expected_windows = end - start - LOOKBACK - HORIZON + 1
    assert score.n_windows == expected_windows

    # the same numbers from one plain predict call per window
    errors = []
    for w in range(expected_windows):
        context = data.series(start + w, start + w + LOOKBACK)
        pred = fitted_model.predict(HORIZON, series=context, verbose=False).values()
        truth = data.scaled[start + w + LOOKBACK : start + w + LOOKBACK + HORIZON]
        errors.append(pred - truth)
    errors = np.stack(errors).astype(np.float64)
    assert score.mse == pytest.approx(np.mean(errors**2), rel=1e-5)
    assert score.mae == pytest.approx(np.mean(np.abs(errors)), rel=1e-5)

    ex = score.example
    assert ex["index"] == 3 and ex["variate"] == "OT"
    assert len(ex["context"]) == LOOKBACK and len(ex["truth"]) == len(ex["forecast"]) == HORIZON
    np.testing.assert_allclose(np.asarray(ex["forecast"]) - np.asarray(ex["truth"]), errors[3, :, -1], atol=1e-5)


def test_chunked_scoring_equals_one_chunk(data, fitted_model, monkeypatch):
    whole = score_test_windows(fitted_model, data, HORIZON)
    monkeypatch.setattr(protocol, "_CHUNK_ELEMENTS", 7 * HORIZON * 3)  # 7 windows per chunk
    chunked = score_test_windows(fitted_model, data, HORIZON)
    assert chunked.n_windows == whole.n_windows
    # batches are composed differently, so float32 predictions may differ in the last bits
    assert chunked.mse == pytest.approx(whole.mse, rel=1e-6)
    assert chunked.mae == pytest.approx(whole.mae, rel=1e-6)
    np.testing.assert_allclose(chunked.example["forecast"], whole.example["forecast"], atol=1e-6)


def test_no_test_window_is_an_error(data, fitted_model):
    from types import SimpleNamespace

    from darts.utils.likelihood_models import GaussianLikelihood

    from benchmarks.probabilistic import score_probabilistic

    test_rows = data.borders.test[1] - data.borders.test[0]
    longest = test_rows - LOOKBACK  # the horizon of exactly one test window
    assert protocol.count_test_windows(data, longest) == 1
    message = rf"`horizon={longest + 1}` with `lookback=24` leaves no test window in `exchange_rate` \(test split has "
    message += f"{test_rows} rows"
    with pytest.raises(ValueError, match=message):
        score_test_windows(fitted_model, data, longest + 1)
    with pytest.raises(ValueError, match=message):  # the probabilistic score refuses it the same way
        score_probabilistic(SimpleNamespace(likelihood=GaussianLikelihood()), data, longest + 1)
    with pytest.raises(ValueError, match="`max_windows` must be a positive integer or None, got `0`"):
        score_test_windows(fitted_model, data, HORIZON, max_windows=0)
    with pytest.raises(ValueError, match="`example_index`"):
        score_test_windows(fitted_model, data, HORIZON, example_index=10_000)
