"""Series-level regression: TimesCLIPRegressor (stages, reuse of a forecaster's encoder, scikit-learn API, bad input),
TimesCLIPModel.embed, and the regression benchmark at a tiny size."""

from __future__ import annotations

# ruff: noqa: E402 -- scikit-learn is imported after the check that names it where it is missing
import csv
import json
import pickle

import numpy as np
import pytest
import torch
from darts import TimeSeries

from tests._extras import requires

requires("sklearn", "regression")

from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score

from darts_timesclip import TimesCLIPModel
from darts_timesclip.regression import CROP_VARIATES, TimesCLIPRegressor, crop_seasons
from tests._helpers import model_kwargs

TINY = dict(encoder_params=dict(backbone="tiny", patch_length=8, patch_stride=4))


def shape_task(n: int = 96, length: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random walks at random levels; the target is the first variate's rise from the first half to the second (a
    property of the series' shape, which the tokens must carry: instance normalisation removes the level)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, length, 2)).cumsum(axis=1) + rng.normal(0, 3, size=(n, 1, 2))
    y = X[:, length // 2 :, 0].mean(axis=1) - X[:, : length // 2, 0].mean(axis=1)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def seasons():
    """36-step seasons (4 variates) as Darts series, and their yields."""
    X, y = crop_seasons(40, length=36, seed=0)
    return [TimeSeries.from_values(x, columns=list(CROP_VARIATES)) for x in X], y


@pytest.fixture(scope="module")
def forecaster(seasons):
    """Stage 1: a TimesCLIPModel trained on 18-step windows of the seasons."""
    series, _ = seasons
    model = TimesCLIPModel(**model_kwargs(input_chunk_length=18, output_chunk_length=6, batch_size=32))
    return model.fit(series[:30], max_samples_per_ts=2)


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> list[str]:
    return [k for k, v in module.state_dict().items() if not torch.equal(before[k], v)]


# ---------------------------------------------------------------------------------------------- stages
def test_stage_2_reuses_the_encoder_untouched_on_longer_series(seasons, forecaster):
    series, y = seasons
    original = state(forecaster.model.network)
    assert forecaster.input_chunk_length == 18 and len(series[0]) == 36
    regressor = TimesCLIPRegressor(encoder=forecaster, n_epochs=3, random_state=0).fit(series[:30], y[:30])
    assert changed(original, regressor.network_) == []  # stage 2: the encoder copy is bit-identical
    assert changed(original, forecaster.model.network) == []  # and the user's model is unchanged
    assert regressor.network_ is not forecaster.model.network
    prediction = regressor.predict(series[30:])
    assert prediction.shape == (10,) and np.isfinite(prediction).all()
    assert [h["stage"] for h in regressor.history_] == ["head"] * 3


def test_stage_3_fine_tunes_the_encoder_copy_only(seasons, forecaster):
    series, y = seasons
    original = state(forecaster.model.network)
    regressor = TimesCLIPRegressor(encoder=forecaster, n_epochs=2, finetune_epochs=1, random_state=0)
    regressor.fit(series[:30], y[:30])
    moved = changed(original, regressor.network_)
    assert any(k.startswith("numeric.clip.") for k in moved) and "numeric.tokenizer.weight" in moved
    assert any(k.startswith("variate_selection.") for k in moved) and "vision.projection.weight" in moved
    assert not any(k.startswith(("vision.clip.", "generator.")) for k in moved)  # frozen by config / unused
    assert changed(original, forecaster.model.network) == []
    assert [h["stage"] for h in regressor.history_] == ["head", "head", "finetune"]


def test_the_head_learns_a_shape_target():
    X, y = shape_task(128)
    regressor = TimesCLIPRegressor(n_epochs=40, random_state=0, **TINY).fit(X[:96], y[:96])
    losses = [h["train_loss"] for h in regressor.history_]
    assert losses[-1] < losses[0] / 5
    assert regressor.score(X[96:], y[96:]) > 0.7  # R² on held-out series


def test_training_from_scratch_trains_encoder_and_head_with_alignment():
    X, y = shape_task(48)
    regressor = TimesCLIPRegressor(freeze_encoder=False, n_epochs=2, alignment_weight=0.1, random_state=0, **TINY)
    fresh = TimesCLIPRegressor(freeze_encoder=False, n_epochs=2, alignment_weight=0.0, random_state=0, **TINY)
    regressor.fit(X, y)
    fresh.fit(X, y)
    assert [h["stage"] for h in regressor.history_] == ["joint", "joint"]
    # the same seed starts both from the same weights; the alignment loss moves the encoder differently
    assert changed(state(fresh.network_), regressor.network_)
    assert not torch.equal(regressor.network_.alignment.logit_scale, fresh.network_.alignment.logit_scale)


def test_samples_of_different_lengths_are_batched_by_length_exactly():
    X, y = shape_task(40, length=36)
    samples = [x if i % 2 else x[:24] for i, x in enumerate(X)]
    regressor = TimesCLIPRegressor(n_epochs=2, batch_size=8, random_state=0, **TINY).fit(samples, y)
    together = regressor.predict(samples[:6])
    alone = np.array([regressor.predict([s])[0] for s in samples[:6]])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def test_multiple_targets_validation_split_and_determinism():
    X, y = shape_task(48)
    targets = np.stack([y, 10 * y + 100], axis=1)
    kwargs = dict(n_epochs=30, validation_fraction=0.25, patience=2, random_state=3, **TINY)
    a = TimesCLIPRegressor(**kwargs).fit(X, targets)
    b = TimesCLIPRegressor(**kwargs).fit(X, targets)
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.predict(X).shape == (48, 2)
    assert len(a.history_) < 30 and all(h["val_loss"] is not None for h in a.history_)  # stopped early
    assert abs(a.predict(X)[:, 1].mean() - targets[:, 1].mean()) < 5  # on the original scale


# ---------------------------------------------------------------------------------------------- persistence, sklearn
def test_save_load_and_pickle_give_identical_predictions(tmp_path, seasons, forecaster):
    series, y = seasons
    regressor = TimesCLIPRegressor(encoder=forecaster, n_epochs=2, random_state=0).fit(series[:30], y[:30])
    expected = regressor.predict(series[30:])
    path = tmp_path / "sub" / "regressor.pkl"
    regressor.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["regressor.pkl"]  # no temporary file left
    np.testing.assert_array_equal(TimesCLIPRegressor.load(path).predict(series[30:]), expected)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(regressor)).predict(series[30:]), expected)
    pickle.dump([1], open(tmp_path / "other.pkl", "wb"))
    with pytest.raises(ValueError, match=r"holds a list, not a TimesCLIPRegressor"):
        TimesCLIPRegressor.load(tmp_path / "other.pkl")


def test_sklearn_params_clone_and_model_selection(forecaster):
    regressor = TimesCLIPRegressor(n_epochs=2, encoder_params={"backbone": "tiny", "patch_length": 8})
    params = regressor.get_params()
    assert params["encoder_params"] == {"backbone": "tiny", "patch_length": 8} and params["n_epochs"] == 2
    assert "encoder_params={'backbone': 'tiny', 'patch_length': 8}" in repr(regressor)
    regressor.set_params(encoder_params={"backbone": "tiny", "patch_length": 8, "patch_stride": 4}, hidden_size=8)
    assert clone(regressor).get_params() == regressor.get_params()
    shared = clone(TimesCLIPRegressor(encoder=forecaster))
    assert shared.encoder is forecaster  # a deep copy would lose the Darts model's weights

    X, y = shape_task(32)
    scores = cross_val_score(TimesCLIPRegressor(n_epochs=2, random_state=0, **TINY), X, y, cv=2)
    assert scores.shape == (2,) and np.isfinite(scores).all()
    search = GridSearchCV(TimesCLIPRegressor(n_epochs=2, random_state=0, **TINY), {"hidden_size": [4, 8]}, cv=2)
    search.fit(list(X), y)
    assert search.best_params_["hidden_size"] in (4, 8) and hasattr(search.best_estimator_, "head_")


# ---------------------------------------------------------------------------------------------- bad input
def _bad_value(X: np.ndarray, value: float) -> np.ndarray:
    X = X.copy()
    X[3, 5, 1] = value
    return X


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda X, y: (_bad_value(X, np.nan), y),
            r"`X\[3\]` has a missing \(NaN\) or infinite value \(nan\) in variate 1 at step 5",
        ),
        (
            lambda X, y: ([TimeSeries.from_values(x) for x in _bad_value(X, np.inf)], y),
            r"`X\[3\]` has a missing \(NaN\) or infinite value \(inf\) in variate 1 at step 5",
        ),
        (
            lambda X, y: (X, np.where(np.isin(np.arange(len(y)), [7, 9]), np.nan, y)),
            r"`y\[7\]` is not finite \(nan\): sample 7's target is missing or infinite \(2 samples affected\)",
        ),
        (lambda X, y: (X, y[:-1]), r"`X` has 16 samples but `y` has 15"),
        (lambda X, y: (list(X[:4]) + [np.zeros((400, 2))] + list(X[5:]), y), r"`X\[4\]` has 400 time steps; the "),
        (lambda X, y: (list(X[:2]) + [X[2, :5]] + list(X[3:]), y), r"`X\[2\]` has 5 time steps; .* at least 8"),
        (lambda X, y: (list(X[:1]) + [X[1, :, :1]] + list(X[2:]), y), r"`X\[1\]` has 1 variates, but `X\[0\]` has 2"),
        (
            lambda X, y: (X[0, :, 0], y),
            r"`X` as an array must have shape \[n_samples, length\] \(univariate.*`X\[None, :\]` is one univariate",
        ),
        (lambda X, y: (X, y[:, None, None]), r"`y` must have shape \[n_samples\] or \[n_samples, n_targets\]"),
    ],
)
def test_bad_input_names_the_sample_and_the_problem(make, message):
    X, y = shape_task(16)
    with pytest.raises(ValueError, match=message):
        TimesCLIPRegressor(n_epochs=1, **TINY).fit(*make(X, y))


def test_bad_input_at_predict_and_with_an_encoder(seasons, forecaster):
    series, y = seasons
    with pytest.raises(NotFittedError):
        TimesCLIPRegressor().predict(series)
    with pytest.raises(ValueError, match=r"`X\[0\]` has 2 variates, but the encoder was trained on 4"):
        TimesCLIPRegressor(encoder=forecaster).fit([s[["NDVI", "EVI"]] for s in series], y)
    with pytest.raises(ValueError, match=r"`encoder_params=\{'backbone': 'tiny'\}` configures a fresh encoder and is "):
        TimesCLIPRegressor(encoder=forecaster, encoder_params={"backbone": "tiny"}).fit(series, y)
    unfitted = TimesCLIPModel(**model_kwargs(input_chunk_length=18, output_chunk_length=6))
    with pytest.raises(ValueError, match=r"`encoder` is a TimesCLIPModel without trained weights"):
        TimesCLIPRegressor(encoder=unfitted).fit(series, y)
    with pytest.raises(ValueError, match=r"`encoder` must be a fitted TimesCLIPModel or None, got str"):
        TimesCLIPRegressor(encoder="clip").fit(series, y)

    X, y = shape_task(16)
    regressor = TimesCLIPRegressor(n_epochs=1, random_state=0, **TINY).fit(X, y)
    with pytest.raises(ValueError, match=r"`X\[0\]` has 3 variates, but the regressor was fitted on 2"):
        regressor.predict(np.zeros((2, 24, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"`X\[1\]` has a missing \(NaN\) or infinite value \(nan\)"):
        regressor.predict(np.stack([X[0], np.full_like(X[0], np.nan)]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(encoder_params={"unknown_option": 1}), r"`encoder_params` has unknown key\(s\) \['unknown_option'\]"),
        (dict(encoder_params=["backbone"]), r"`encoder_params` must be a dict of TimesCLIPConfig's parameters or None"),
        (dict(n_epochs=-1), r"`n_epochs` must be a non-negative integer, got `-1`"),
        (dict(n_epochs=0), r"`n_epochs=0` and `finetune_epochs=0` leave nothing to train"),
        (dict(validation_fraction=1.0), r"`validation_fraction` must be in \[0, 1\), got `1.0`"),
        (
            dict(encoder_params=dict(TINY["encoder_params"], use_alignment=False), freeze_encoder=False),
            r"`alignment_weight=0.1` needs an encoder with alignment",
        ),
        (dict(encoder_params=dict(TINY["encoder_params"], patch_length=0)), r"`patch_length` must be a positive"),
    ],
)
def test_bad_hyperparameters_are_named(kwargs, message):
    X, y = shape_task(8)
    with pytest.raises(ValueError, match=message):
        TimesCLIPRegressor(**{**TINY, **kwargs}).fit(X, y)


# ---------------------------------------------------------------------------------------------- embed
def test_embed_returns_what_the_network_computes(seasons, forecaster):
    series, _ = seasons
    last = forecaster.embed(series[0])
    assert last.numeric.shape == last.image.shape == last.selected.shape == (1, 4, 32)
    assert list(last.end_times) == [35]

    every = forecaster.embed(series[:2], all_windows=True, stride=4)
    assert len(every) == 2 and every[1].selected.shape == (5, 4, 32)  # windows ending at 19, 23, ..., 35
    assert list(every[1].end_times) == [19, 23, 27, 31, 35]

    network = forecaster.model.network.eval()
    window = torch.as_tensor(series[1].values()[-18:][None], dtype=torch.float32)
    with torch.no_grad():
        encoding, output = network.encode(window), network(window)
    np.testing.assert_allclose(every[1].numeric[-1], encoding.text[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(every[1].image[-1], output.image_embeddings[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(every[1].selected[-1], encoding.selected[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(last.numeric[0], forecaster.embed(series[0]).numeric[0])  # repeatable


def test_embed_rejects_bad_calls(seasons, forecaster):
    series, _ = seasons
    with pytest.raises(ValueError, match=r"`stride` must be a positive integer, got `0`"):
        forecaster.embed(series[0], all_windows=True, stride=0)
    with pytest.raises(ValueError, match=r"`series` has 10 time steps; one window needs at least 18"):
        forecaster.embed(series[0][:10])
    with pytest.raises(ValueError, match=r"`series` has 2 components, but the model was trained on 4"):
        forecaster.embed(series[0][["NDVI", "EVI"]])
    with pytest.raises(ValueError, match=r"`embed` needs a fitted model"):
        TimesCLIPModel(**model_kwargs()).embed(series[0])


# ---------------------------------------------------------------------------------------------- synthetic data
def test_crop_seasons_are_seeded_and_yield_depends_on_the_season():
    X, y = crop_seasons(300, seed=1)
    X2, y2 = crop_seasons(300, seed=1)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert X.shape == (300, 36, 4) and X.dtype == np.float32 and np.isfinite(X).all()
    season_ndvi = X[:, :, 0].mean(axis=1)
    assert np.corrcoef(season_ndvi, y)[0, 1] > 0.5
    with pytest.raises(ValueError, match=r"`n_samples` must be a positive integer, got `0`"):
        crop_seasons(0)


# ---------------------------------------------------------------------------------------------- benchmark
def _weather_file(directory) -> None:
    """Eight weeks of 10-minute readings with the Weather file's columns (a stand-in for the real file)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 8 * 7 * 144
    daily = np.sin(2 * np.pi * np.arange(n) / 144)
    frame = pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01 00:10", periods=n, freq="10min").astype(str),
            "p (mbar)": 1000 + rng.normal(0, 1, n).cumsum() / 10,
            "T (degC)": 10 + 5 * daily + rng.normal(0, 1, n).cumsum() / 20,
            "rh (%)": 70 - 10 * daily + rng.normal(0, 1, n),
            "wv (m/s)": np.abs(rng.normal(2, 1, n)),
            "SWDR (W/m²)": np.clip(400 * daily, 0, None),
            "OT": rng.normal(size=n),
        }
    )
    frame.to_csv(directory / "weather.csv", index=False)


def test_regression_benchmark_writes_its_report_and_resumes(tmp_path, monkeypatch):
    import torch

    from benchmarks.cli import main
    from benchmarks.studies import regression as study

    _weather_file(tmp_path)
    threads = torch.get_num_threads()
    argv = ["regression", "--scale", "tiny", "--sizes", "40", "--seeds", "0", "--data-dir", str(tmp_path)]
    argv += ["--output", str(tmp_path / "out"), "--results", str(tmp_path), "--head-epochs", "2"]
    argv += ["--forecaster-epochs", "1", "--finetune-epochs", "1", "--scratch-epochs", "1", "--batch-size", "16"]
    assert main(argv) == 0
    assert torch.get_num_threads() == threads  # the jobs ran with one thread; the process keeps its own
    rows = list(csv.DictReader(open(tmp_path / "regression.csv")))
    assert [(r["task"], r["method"]) for r in rows] == [(t, m) for t in study.TASKS for m in study.METHODS]
    assert all(np.isfinite(float(r["r2"])) and float(r["rmse"]) > 0 for r in rows)
    assert {(r["n_train"], r["n_test"]) for r in rows} == {("32", "8")}
    report = (tmp_path / "regression.md").read_text()
    assert "## weather, 40 samples (32 train, 8 test)" in report and "| stage3 |" in report
    assert "Not run for crop: size(s) 1500, 15000" in report and "Command: `python -m benchmarks regression" in report

    # one result file per (task, size, seed) on the suite's runner, named by the settings
    runs = sorted(p.name for p in (tmp_path / "out" / "runs").glob("*.json"))
    key = study.RegressionSettings(backbone="tiny", forecaster_epochs=1, head_epochs=2, finetune_epochs=1)
    key = study.RegressionSettings(**{**key.__dict__, "scratch_epochs": 1, "batch_size": 16, "scale": "tiny"}).key()
    assert runs == [f"crop_n40_s0_{key}.json", f"weather_n40_s0_{key}.json"]
    record = json.loads((tmp_path / "out" / "runs" / runs[0]).read_text())
    assert record["command"].startswith("python -m benchmarks regression --scale tiny")
    assert record["machine"].endswith("1 torch thread(s)")
    assert (record["study"], record["coordinates"]) == ("regression", {"task": "crop", "size": 40})

    def fail(*args, **kwargs):
        pytest.fail("a finished job ran again")

    monkeypatch.setattr(study.RegressionStudy, "job_runner", staticmethod(fail))
    assert main(argv + ["--note", "a rewrite"]) == 0  # every job is done: nothing trains, the report is rewritten
    assert "a rewrite" not in (tmp_path / "regression.md").read_text()  # the jobs' own machine line is kept


def test_regression_report_says_which_run_made_each_table():
    from benchmarks.studies.regression import RegressionSettings, regression_markdown

    def rows(size, **provenance):
        return [
            {
                "task": "crop",
                "size": size,
                "n_train": 8,
                "n_test": 2,
                "seed": 0,
                "method": "ridge",
                "r2": 0.5,
                "rmse": 1.0,
                "fit_seconds": 1.0,
                "stage1_seconds": None,
                **provenance,
            }
        ]

    settings = RegressionSettings()
    one = regression_markdown(
        rows(10, machine="idle", command="cmd a") + rows(20, machine="idle", command="cmd a"),
        settings,
        command="fallback",
        machine="fallback",
    )
    assert one.count("Machine: idle.") == 1 and one.index("Command: `cmd a`") < one.index("## crop, 10 samples")
    assert "fallback" not in one

    assert "Stage 3 equals stage 2" not in one  # no stage 3 rows
    same = [{**rows(10)[0], "method": m, "seed": seed} for m in ("stage2", "stage3") for seed in (0, 1)]
    assert "Stage 3 equals stage 2 for every seed" in regression_markdown(same, settings)
    same[-1]["r2"] = 0.6
    assert "Stage 3 equals stage 2" not in regression_markdown(same, settings)

    two = regression_markdown(rows(10) + rows(20, machine="idle", command="cmd b"), settings, "cmd a", "shared")
    ten, twenty = two.split("## crop, 20 samples")
    assert "Machine: shared." in ten and "Command: `cmd a`" in ten and ten.index("## crop, 10") < ten.index("cmd a")
    assert "Machine: idle." in twenty and "Command: `cmd b`" in twenty and "shared" not in twenty


def test_weather_samples_keep_test_targets_out_of_training(tmp_path):
    from benchmarks.studies.regression import fill_sentinels, weather_day_starts, weather_task

    pools = weather_day_starts(52696)
    rows = {split: set((starts[:, None] + np.arange(288)).ravel()) for split, starts in pools.items()}
    assert not rows["train"] & rows["test"]  # no reading or target of a test sample is in a training sample
    assert 0.2 < len(pools["test"]) / len(pools["train"]) < 0.3

    _weather_file(tmp_path)
    assert fill_sentinels(np.array([[1.0, 2.0], [-9999.0, 4.0], [3.0, -1.0]]), ["wv (m/s)", "T"]).tolist() == [
        [1.0, 2.0],
        [2.0, 4.0],
        [3.0, -1.0],
    ]  # the wind speed's missing-value code, interpolated; a negative temperature left alone
    task = weather_task(60, seed=0, data_dir=tmp_path)
    assert task.X_train.shape == (48, 24, 5) and task.X_test.shape == (12, 24, 5)
    assert abs(task.X_train[:, :, 0].mean() - 1000) < 20  # hourly means of `p (mbar)`, the first variate
    with pytest.raises(ValueError, match=r"candidate train days; size 100000 needs more"):
        weather_task(100_000, seed=0, data_dir=tmp_path)
