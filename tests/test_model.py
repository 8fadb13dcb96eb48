"""TimesCLIPModel against the Darts contract, and its input checks."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from darts import concatenate
from darts.dataprocessing.transformers import Scaler
from darts.utils.likelihood_models import BernoulliLikelihood, GaussianLikelihood, QuantileRegression

from darts_timesclip import TimesCLIPModel
from darts_timesclip.checked_model import CheckedInputsMixin
from tests._extras import requires
from tests._helpers import make_series, model_kwargs


def fitted(series=None, **overrides) -> TimesCLIPModel:
    model = TimesCLIPModel(**model_kwargs(**overrides))
    return model.fit(series if series is not None else make_series())


# ------------------------------------------------------------------------------------------ Darts contract
def test_fit_predict_multivariate_and_autoregressive(series):
    model = fitted(series)
    one_shot = model.predict(6)
    longer = model.predict(15)  # n > output_chunk_length: auto-regression
    assert one_shot.n_components == 2 and len(one_shot) == 6
    assert len(longer) == 15 and longer.start_time() == series.end_time() + series.freq
    assert np.isfinite(longer.values()).all()
    assert np.allclose(longer.values()[:6], one_shot.values(), atol=1e-5)


def test_several_series(series):
    other = make_series(80, seed=3, start="2023-01-01")
    model = TimesCLIPModel(**model_kwargs()).fit([series, other])
    preds = model.predict(6, series=[series, other])
    assert [p.start_time() for p in preds] == [series.end_time() + series.freq, other.end_time() + other.freq]


def test_past_covariates_are_extra_variates_not_forecast(series):
    covariates = make_series(90, n_components=3, seed=5)
    model = fitted(series, output_chunk_length=6)
    model_cov = TimesCLIPModel(**model_kwargs()).fit(series, past_covariates=covariates)
    assert model_cov.model.network.n_targets == 2
    assert model_cov.train_sample.past_covariates.shape[1] == 3  # seen as variates 3-5
    pred = model_cov.predict(6, past_covariates=covariates)
    assert pred.n_components == 2
    assert not np.allclose(pred.values(), model.predict(6).values())
    # auto-regression needs covariates into the future
    longer = make_series(100, n_components=3, seed=5)
    assert len(model_cov.predict(12, past_covariates=longer)) == 12


def test_past_covariates_enter_the_forecast_as_the_network_sees_them(series):
    """The forecast is the network's output on the hand-built window: targets, then the covariates' last values."""
    covariates = make_series(90, n_components=3, seed=5)
    model = TimesCLIPModel(**model_kwargs()).fit(series, past_covariates=covariates)
    network = model.model.network.eval()

    def reference(cov) -> np.ndarray:
        window = np.concatenate([series.values()[-24:], cov.values()[-24:]], axis=1)  # [L, targets + covariates]
        with torch.no_grad():
            out = network(torch.as_tensor(window[None], dtype=torch.float32)).prediction
        return out[0, :, :, 0].numpy()  # [OCL, targets]

    noise = np.random.default_rng(1).standard_normal(covariates.values().shape).astype(np.float32)
    changed = covariates.with_values(noise)  # other shapes in every covariate
    got = model.predict(6, series=series, past_covariates=covariates, verbose=False).values()
    got_changed = model.predict(6, series=series, past_covariates=changed, verbose=False).values()
    np.testing.assert_allclose(got, reference(covariates), rtol=0, atol=1e-6)
    np.testing.assert_allclose(got_changed, reference(changed), rtol=0, atol=1e-6)
    assert np.abs(got - got_changed).max() > 1e-3  # the covariates change the forecast


def test_quantile_likelihood_samples_and_parameters(series):
    model = fitted(series, likelihood=QuantileRegression([0.1, 0.5, 0.9]))
    pred = model.predict(6, num_samples=50)
    assert pred.n_samples == 50
    params = model.predict(6, predict_likelihood_parameters=True)
    assert params.n_components == 6
    assert np.isfinite(params.values()).all()
    assert params.components[:3].tolist() == ["c0_q0.100", "c0_q0.500", "c0_q0.900"]


def test_gaussian_likelihood_scales_sigma_with_the_series(series):
    """Under instance normalisation the same model on the series times 1000 forecasts mu and sigma times 1000 (the
    default for likelihoods, ``"adaptive"``, also reads each window's level, so it need not be scale-equivariant)."""
    model = fitted(series, likelihood=GaussianLikelihood(), normalization="instance")
    small = model.predict(6, series=series, predict_likelihood_parameters=True).values()
    big = model.predict(6, series=series * 1000.0, predict_likelihood_parameters=True).values()
    assert (small[:, 1::2] > 0).all()
    np.testing.assert_allclose(big[:, 1::2], 1000.0 * small[:, 1::2], rtol=1e-4)  # sigma
    np.testing.assert_allclose(big[:, ::2], 1000.0 * small[:, ::2], rtol=1e-4, atol=1e-3)  # mu


def test_unsupported_likelihood_is_rejected():
    with pytest.raises(ValueError, match=r"`likelihood=BernoulliLikelihood\(\)` is not supported"):
        TimesCLIPModel(**model_kwargs(likelihood=BernoulliLikelihood()))


def test_historical_forecasts_and_backtest(series):
    model = fitted(series)
    forecasts = model.historical_forecasts(series, start=60, forecast_horizon=6, retrain=False, last_points_only=False)
    assert len(forecasts) == len(series) - 60 - 6 + 1
    assert all(len(f) == 6 for f in forecasts)
    error = model.backtest(series, historical_forecasts=forecasts, last_points_only=False)
    assert np.isfinite(error)


def test_historical_forecasts_with_retraining(series):
    model = TimesCLIPModel(**model_kwargs())
    forecasts = model.historical_forecasts(series, start=70, forecast_horizon=6, stride=10, retrain=True)
    assert len(forecasts) == 2


def test_scaler_pipeline(series):
    scaler = Scaler()
    scaled = scaler.fit_transform(series * 50 + 200)
    model = fitted(scaled)
    pred = scaler.inverse_transform(model.predict(6))
    assert np.isfinite(pred.values()).all()


def test_save_load_gives_identical_predictions(series, tmp_path):
    model = fitted(series, likelihood=QuantileRegression([0.1, 0.5, 0.9]))
    expected = model.predict(9, num_samples=5, random_state=3)
    path = str(tmp_path / "timesclip.pt")
    model.save(path)
    loaded = TimesCLIPModel.load(path)
    assert np.array_equal(loaded.predict(9, num_samples=5, random_state=3).all_values(), expected.all_values())


WITHOUT_PYARROW = """
import json, sys
sys.modules["pyarrow"] = None  # as in a slim environment: the wheel and the `serve` extra, no pyarrow
from darts_timesclip import TimesCLIPModel
from darts_timesclip.checked_model import CheckedInputsMixin
try:
    model = TimesCLIPModel.load(sys.argv[1])
except ImportError as err:
    print(json.dumps({"error": str(err)}))
else:
    print(json.dumps({"forecast": model.predict(6, verbose=False).values().tolist()}))
"""


def _load_without_pyarrow(path) -> dict:
    import json
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PYARROW, str(path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_model_saved_with_pyarrow_loads_without_it(series, tmp_path):
    requires("pyarrow")  # the saving environment must have it for this test to mean anything
    assert type(series.components.array).__name__ == "ArrowStringArray"  # pandas 3 with pyarrow
    model = fitted(series)
    model.save(tmp_path / "model.pt")
    answer = _load_without_pyarrow(tmp_path / "model.pt")
    np.testing.assert_allclose(answer["forecast"], model.predict(6, verbose=False).values(), rtol=0, atol=1e-6)
    # a file written the old way (Darts' own save, pyarrow strings inside) fails with the cause named
    super(CheckedInputsMixin, model).save(str(tmp_path / "legacy.pt"))
    error = _load_without_pyarrow(tmp_path / "legacy.pt")["error"]
    assert "stores pandas strings with pyarrow" in error and "pip install pyarrow" in error


def test_save_is_atomic_a_failed_save_keeps_the_saved_model(series, tmp_path, monkeypatch):
    model = fitted(series)
    path = tmp_path / "timesclip.pt"
    model.save(path)  # a Path works as well as Darts' str
    saved = {name: (tmp_path / name).read_bytes() for name in ("timesclip.pt", "timesclip.pt.ckpt")}

    def broken(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(model.trainer, "save_checkpoint", broken)
    with pytest.raises(OSError, match="no space left"):
        model.save(str(path))
    assert {name: (tmp_path / name).read_bytes() for name in saved} == saved
    assert sorted(os.listdir(tmp_path)) == sorted(saved)  # no temporary file left behind
    assert TimesCLIPModel.load(str(path)).predict(6) == model.predict(6)


def test_a_loaded_model_saved_again_keeps_its_weights(series, tmp_path):
    # a loaded model has weights but no trainer; Darts' own save then writes no `.ckpt` (the file would load as an
    # untrained model), e.g. when a service copies the model it was given
    model = fitted(series)
    model.save(tmp_path / "first.pt")
    loaded = TimesCLIPModel.load(str(tmp_path / "first.pt"))
    loaded.save(tmp_path / "second.pt")
    assert (tmp_path / "second.pt.ckpt").is_file()
    again = TimesCLIPModel.load(str(tmp_path / "second.pt"))
    assert again.predict(6, verbose=False) == model.predict(6, verbose=False)


def test_load_predict_then_fine_tune(series, tmp_path):
    # the everyday Darts workflow "load, check, fine-tune": predicting fills the frozen-vision embedding cache
    # under `torch.inference_mode()`, and the training steps that follow must still be able to insert into it
    model = TimesCLIPModel(**model_kwargs())
    model.fit(series, verbose=False)
    model.save(str(tmp_path / "m.pt"))
    loaded = TimesCLIPModel.load(str(tmp_path / "m.pt"))
    before = loaded.predict(6, verbose=False)
    loaded.historical_forecasts(series, start=60, forecast_horizon=6, retrain=False, verbose=False)
    weights = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    loaded.fit(series, epochs=2, verbose=False)
    changed = [k for k, v in loaded.model.state_dict().items() if not torch.equal(v, weights[k])]
    assert any(k.startswith("network.generator") for k in changed)
    assert not any(k.startswith("network.vision.clip") for k in changed)  # the frozen tower stays as it was
    after = loaded.predict(6, verbose=False)
    assert np.isfinite(after.values()).all() and not np.allclose(after.values(), before.values())


def test_saving_an_untrained_model_removes_a_stale_checkpoint(series, tmp_path):
    path = str(tmp_path / "m.pt")
    fitted(series).save(path)
    TimesCLIPModel(**model_kwargs()).save(path)  # no weights: Darts would pair it with the old .ckpt
    assert os.listdir(tmp_path) == ["m.pt"]


def test_lightning_checkpoints_rebuild_the_model_from_its_config(series, tmp_path):
    model = TimesCLIPModel(
        **model_kwargs(n_epochs=2, save_checkpoints=True, work_dir=str(tmp_path), model_name="ckpt", temperature=0.05)
    )
    model.fit(series[:70], val_series=series[50:])
    expected = model.predict(6, series=series)
    for best in (True, False):
        loaded = TimesCLIPModel.load_from_checkpoint("ckpt", work_dir=str(tmp_path), best=best)
        assert loaded.model.config == model.model.config and loaded.model.config.temperature == 0.05
        if not best:  # the last checkpoint holds the final weights
            assert loaded.predict(6, series=series) == expected


def test_random_state_reproducibility(series):
    a = fitted(series, random_state=7).predict(6)
    b = fitted(series, random_state=7).predict(6)
    c = fitted(series, random_state=8).predict(6)
    assert np.array_equal(a.values(), b.values())
    assert not np.array_equal(a.values(), c.values())


def test_training_logs_both_losses_and_uses_two_learning_rates(series):
    model = fitted(series)
    metrics = model.trainer.callback_metrics
    assert {"train_loss", "train_forecast_loss", "train_alignment_loss", "train_total_loss"} <= set(metrics)
    total = metrics["train_total_loss"]
    assert torch.isclose(total, metrics["train_forecast_loss"] + 0.1 * metrics["train_alignment_loss"], atol=1e-5)
    assert torch.isclose(metrics["train_loss"], metrics["train_forecast_loss"])
    optimizer = model.model.optimizers().optimizer
    assert isinstance(optimizer, torch.optim.AdamW)
    text_ids = {id(p) for p in model.model.network.text_tower_parameters()}
    groups = {("text" if id(g["params"][0]) in text_ids else "new"): g for g in optimizer.param_groups}
    assert groups["text"]["initial_lr"] == pytest.approx(1e-4)
    assert groups["new"]["initial_lr"] == pytest.approx(1e-3)
    # the per-step cosine has run its whole course: every rate is at 0 after the last step
    assert model.trainer.global_step == model.trainer.estimated_stepping_batches
    assert groups["new"]["lr"] == pytest.approx(0.0, abs=1e-9) and groups["text"]["lr"] == pytest.approx(0.0, abs=1e-9)


def test_validation_loss_is_the_forecast_loss(series):
    # 11 validation windows in batches of 4, 4 and 3: the epoch's loss is the mean over windows, not over batches
    from torchmetrics import MeanAbsoluteError

    model = TimesCLIPModel(**model_kwargs(batch_size=4, torch_metrics=MeanAbsoluteError()))
    model.fit(series[:70], val_series=series[50:])
    metrics = model.trainer.callback_metrics
    assert torch.isclose(metrics["val_loss"], metrics["val_forecast_loss"])
    assert "val_alignment_loss" in metrics
    assert {"train_loss", "val_loss"} <= set(model.trainer.progress_bar_metrics)  # as Darts' models show them

    values = torch.as_tensor(series[50:].values())
    windows = values.unfold(0, 30, 1).permute(0, 2, 1)  # [11, 30, 2]: 24 steps in, 6 out
    network = model.model.network.eval()
    with torch.no_grad():
        prediction = network(windows[:, :24]).prediction[..., 0]
    expected = torch.mean((prediction - windows[:, 24:]) ** 2)
    assert len(windows) == 11
    torch.testing.assert_close(metrics["val_loss"], expected, rtol=1e-5, atol=1e-7)
    # the user's metric, computed by Darts over the same windows
    mae = torch.mean(torch.abs(prediction - windows[:, 24:]))
    torch.testing.assert_close(metrics["val_MeanAbsoluteError"], mae, rtol=1e-5, atol=1e-7)


def test_user_optimizer_and_scheduler_are_honoured(series):
    model = fitted(
        series,
        optimizer_cls=torch.optim.SGD,
        optimizer_kwargs={"lr": 0.01},
        lr_scheduler_cls=torch.optim.lr_scheduler.StepLR,
        lr_scheduler_kwargs={"step_size": 1, "gamma": 0.5},
    )
    optimizer = model.model.optimizers().optimizer
    assert isinstance(optimizer, torch.optim.SGD)
    assert sorted(g["initial_lr"] for g in optimizer.param_groups) == pytest.approx([1e-4, 0.01])
    # Lightning's scheduler settings: Darts' defaults, or those given among the scheduler's arguments
    model.model.lr_scheduler_kwargs = {"step_size": 3, "interval": "step"}
    _, config = model.model.configure_optimizers()
    assert config["scheduler"].step_size == 3
    assert {k: v for k, v in config.items() if k != "scheduler"} == {
        "monitor": "val_loss",
        "interval": "step",
        "frequency": 1,
        "strict": True,
        "name": None,
    }


@pytest.mark.parametrize(
    "switches",
    [{"use_alignment": False}, {"use_variate_selection": False}, {"use_vision": False, "use_alignment": False}],
)
def test_ablations_train_and_predict(series, switches):
    model = fitted(series, **switches)
    metrics = model.trainer.callback_metrics  # before predict() replaces the trainer
    assert "train_forecast_loss" in metrics
    assert ("train_alignment_loss" in metrics) == switches.get("use_alignment", True)
    assert np.isfinite(model.predict(6).values()).all()


def test_float64_series_train_a_float64_model():
    series = make_series().astype(np.float64)
    model = fitted(series)
    assert next(model.model.parameters()).dtype == torch.float64
    assert model.predict(6).dtype == np.float64


# --------------------------------------------------------------------------------------------- bad input
def test_nan_in_target_names_series_component_and_time(series):
    values = series.values().copy()
    values[40, 1] = np.nan
    bad = series.with_values(values)
    with pytest.raises(
        ValueError, match=r"`series` has a non-finite value \(nan\) in component `c1` at time `2024-01-02 16:00:00`"
    ):
        TimesCLIPModel(**model_kwargs()).fit(bad)


def test_inf_in_covariates_of_one_of_several_series(series):
    cov = make_series(90, n_components=1, seed=2)
    values = cov.values().copy()
    values[10, 0] = np.inf
    with pytest.raises(ValueError, match=r"`past_covariates\[1\]` has a non-finite value \(inf\) in component `c0`"):
        TimesCLIPModel(**model_kwargs()).fit([series, series], past_covariates=[cov, cov.with_values(values)])


def test_nan_at_predict_and_in_historical_forecasts(series):
    model = fitted(series)
    values = series.values().copy()
    values[-1, 0] = np.nan
    bad = series.with_values(values)
    with pytest.raises(ValueError, match=r"`series` has a non-finite value"):
        model.predict(6, series=bad)
    with pytest.raises(ValueError, match=r"`series` has a non-finite value"):
        model.historical_forecasts(bad, start=60, forecast_horizon=6, retrain=False)


def test_fit_from_dataset_and_predict_from_dataset_check_their_inputs(series):
    from darts.utils.data import SequentialTorchInferenceDataset, SequentialTorchTrainingDataset

    values = series.values().copy()
    values[30, 0] = np.inf
    bad = series.with_values(values)
    model = TimesCLIPModel(**model_kwargs())
    with pytest.raises(
        ValueError, match=r"`train_dataset.series\[0\]` has a non-finite value \(inf\) in component `c0`"
    ):
        model.fit_from_dataset(SequentialTorchTrainingDataset(bad, input_chunk_length=24, output_chunk_length=6))
    model.fit_from_dataset(SequentialTorchTrainingDataset(series, input_chunk_length=24, output_chunk_length=6))
    with pytest.raises(ValueError, match=r"`dataset.series\[0\]` has a non-finite value"):
        model.predict_from_dataset(
            6, SequentialTorchInferenceDataset(bad, input_chunk_length=24, output_chunk_length=6)
        )
    three = make_series(n_components=3)
    with pytest.raises(ValueError, match=r"`dataset.series\[0\]` has 3 components, but the model was trained on 2"):
        model.predict_from_dataset(
            6, SequentialTorchInferenceDataset(three, input_chunk_length=24, output_chunk_length=6)
        )
    pred = model.predict_from_dataset(
        6, SequentialTorchInferenceDataset(series, input_chunk_length=24, output_chunk_length=6)
    )
    assert np.isfinite(pred[0].values()).all()


def test_custom_training_datasets_are_checked_sample_by_sample(series):
    from darts.utils.data import SequentialTorchTrainingDataset

    class Custom(torch.utils.data.Dataset):  # no `.series`: Darts' contract is only `__getitem__`
        def __init__(self, inner):
            self.inner = inner

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, i):
            sample = self.inner[i]
            if i == 3:
                sample = sample.replace(past_target=np.full_like(sample.past_target, np.nan))
            return sample

    dataset = Custom(SequentialTorchTrainingDataset(series, input_chunk_length=24, output_chunk_length=6))
    with pytest.raises(ValueError, match=r"`train_dataset\[3\]` has a non-finite value in `past_target`"):
        TimesCLIPModel(**model_kwargs()).fit_from_dataset(dataset)


def test_constant_and_huge_scale_series_give_finite_forecasts(series):
    constant = series.with_values(np.full(series.values().shape, 3.0, dtype=np.float32))
    assert np.isfinite(fitted(constant).predict(6).values()).all()
    huge = series * 1e15
    pred = fitted(huge).predict(6)
    assert np.isfinite(pred.values()).all()
    scale = np.abs(huge.values()).max()  # about 1.3e15: a forecast of the data's own scale, per component
    peak = np.abs(pred.values()).max(axis=0)
    assert ((0.05 * scale < peak) & (peak < 5 * scale)).all(), (peak, scale)


def test_too_short_series():
    with pytest.raises(ValueError, match=r"`series` has 20 time steps; one training window needs at least 30"):
        TimesCLIPModel(**model_kwargs()).fit(make_series(20))
    model = fitted()
    with pytest.raises(ValueError, match=r"`series` has 10 time steps; the input window needs at least 24"):
        model.predict(6, series=make_series(10))


def test_component_mismatch_at_predict(series):
    model = fitted(series)
    with pytest.raises(ValueError, match=r"`series` has 3 components, but the model was trained on 2"):
        model.predict(6, series=make_series(n_components=3))
    three = concatenate([series, make_series(90, 1, seed=9).with_columns_renamed("c0", "x")], axis=1)
    with pytest.raises(ValueError, match=r"trained on 2"):
        model.historical_forecasts(three, start=60, forecast_horizon=6, retrain=False)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"patch_length": 30}, r"`patch_length=30` is longer than `input_chunk_length=24`"),
        ({"patch_stride": 0}, r"`patch_stride` must be a positive integer, got `0`"),
        ({"patch_stride": 9}, r"`patch_stride=9` is longer than `patch_length=8`"),
        ({"alignment_weight": -0.5}, r"`alignment_weight` must be >= 0, got -0.5"),
        ({"embedding_cache_mb": -1}, r"`embedding_cache_mb` must be >= 0, got -1"),
        ({"text_tower_lr": 0.0}, r"`text_tower_lr` must be > 0"),
        ({"dropout": 1.5}, r"`dropout` must be in \[0, 1\), got 1.5"),
        ({"backbone": "compcat"}, r"`backbone='compcat'` is neither a preset"),
        ({"use_vision": False}, r"`use_alignment=True` needs `use_vision=True`"),
        ({"temperature": 0}, r"`temperature` must be > 0, got 0"),
        ({"use_vision": "yes"}, r"`use_vision` must be True or False, got `'yes'`"),
        ({"bakbone": "tiny"}, r"Invalid model creation parameters.*bakbone"),
        ({"use_reversible_instance_norm": True}, r"`use_reversible_instance_norm` must be False"),
        ({"input_chunk_length": 600, "patch_length": 4, "patch_stride": 4}, r"more than the 77 positions"),
        ({"output_chunk_length": 0}, r"`output_chunk_length` must be a positive integer"),
    ],
)
def test_invalid_hyperparameters_fail_at_construction(overrides, message):
    with pytest.raises(ValueError, match=message):
        TimesCLIPModel(**model_kwargs(**overrides))
