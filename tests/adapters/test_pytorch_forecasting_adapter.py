"""The pytorch-forecasting adapter: ``TimesCLIP.from_dataset``, training, prediction, persistence, Darts parity."""

from __future__ import annotations

# ruff: noqa: E402 -- the optional dependencies are imported after the check that names a missing one
import math
import pickle

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

from tests._extras import requires

requires("pytorch_forecasting", "pytorch-forecasting")
requires("lightning", "pytorch-forecasting")

from lightning.pytorch import Trainer
from pytorch_forecasting import TimeSeriesDataSet
from pytorch_forecasting.metrics import MAE, RMSE, MultiLoss, NormalDistributionLoss, QuantileLoss

from darts_timesclip.adapters.pytorch_forecasting import TimesCLIP

CONTEXT, HORIZON = 24, 6
TINY = dict(backbone="tiny", patch_length=8, patch_stride=4)


def make_frame(length: int = 100, seed: int = 0) -> pd.DataFrame:
    """One group: two seasonal targets, an unknown and a known real covariate, a categorical column."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    return pd.DataFrame(
        {
            "time_idx": t,
            "group": "a",
            "y": (np.sin(2 * np.pi * t / 12) + 0.1 * rng.standard_normal(length)).astype(np.float32),
            "y2": (2.0 + np.cos(2 * np.pi * t / 8) + 0.1 * rng.standard_normal(length)).astype(np.float32),
            "cov": rng.standard_normal(length).astype(np.float32),
            "known": np.cos(2 * np.pi * t / 24).astype(np.float32),
            "label": np.where(t % 2 == 0, "even", "odd"),
        }
    )


def make_dataset(frame: pd.DataFrame | None = None, **overrides) -> TimeSeriesDataSet:
    kwargs = dict(
        time_idx="time_idx",
        target="y",
        group_ids=["group"],
        max_encoder_length=CONTEXT,
        max_prediction_length=HORIZON,
        time_varying_unknown_reals=["y"],
    )
    kwargs.update(overrides)
    return TimeSeriesDataSet(make_frame() if frame is None else frame, **kwargs)


def make_trainer(**overrides) -> Trainer:
    kwargs = dict(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        logger=False,
    )
    kwargs.update(overrides)
    return Trainer(**kwargs)


def fit(dataset: TimeSeriesDataSet, trainer: Trainer | None = None, **model_kwargs) -> tuple[TimesCLIP, Trainer]:
    torch.manual_seed(0)
    model = TimesCLIP.from_dataset(dataset, **{**TINY, **model_kwargs})
    trainer = make_trainer() if trainer is None else trainer
    loader = dataset.to_dataloader(train=True, batch_size=16, num_workers=0)
    val_loader = dataset.to_dataloader(train=False, batch_size=16, num_workers=0)
    trainer.fit(model, loader, val_loader)
    return model, trainer


def loader(dataset: TimeSeriesDataSet, frame: pd.DataFrame | None = None, predict: bool = False):
    if frame is not None:
        dataset = TimeSeriesDataSet.from_dataset(dataset, frame, predict=predict, stop_randomization=True)
    return dataset.to_dataloader(train=False, batch_size=32, num_workers=0)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """A single-target model with MAE, fitted once with checkpointing."""
    dataset = make_dataset()
    root = tmp_path_factory.mktemp("single")
    model, trainer = fit(dataset, make_trainer(enable_checkpointing=True, default_root_dir=root), loss=MAE())
    return model, trainer, dataset


# ---------------------------------------------------------------------------------------------- import and fit
def test_importable_from_darts_timesclip_namespace():
    import darts_timesclip.adapters.pytorch_forecasting as module

    assert module.TimesCLIP is TimesCLIP
    assert TimesCLIP.__module__ == "darts_timesclip.adapters.pytorch_forecasting"


def test_single_target_fit_predict_and_logged_losses(single):
    model, trainer, dataset = single
    assert model.variate_names == ["y"] and model.network.n_targets == 1
    logged = trainer.callback_metrics
    names = ("train_forecast_loss", "train_alignment_loss", "train_total_loss", "train_loss", "val_loss")
    for name in (*names, "val_forecast_loss", "val_alignment_loss", "val_total_loss"):
        assert name in logged, name
    # {stage}_loss is the forecast loss (pytorch-forecasting logs it), train_total_loss what is optimised: the same
    # names and meanings as in the Darts model
    expected = logged["train_forecast_loss_epoch"] + 0.1 * logged["train_alignment_loss_epoch"]
    assert torch.isclose(logged["train_total_loss_epoch"], expected, rtol=1e-5)
    assert torch.isclose(logged["train_loss_epoch"], logged["train_forecast_loss_epoch"], rtol=1e-6)
    assert torch.isclose(logged["val_loss"], logged["val_forecast_loss"])

    pred = model.predict(loader(dataset), mode="prediction", return_index=True)
    n_windows = len(dataset)
    assert pred.output.shape == (n_windows, HORIZON)
    assert torch.isfinite(pred.output).all()
    assert list(pred.index.columns) == ["time_idx", "group"] and len(pred.index) == n_windows
    quantiles = model.predict(loader(dataset), mode="quantiles")
    assert quantiles.shape == (n_windows, HORIZON, 1)


def test_text_tower_has_its_own_learning_rate(single):
    model, trainer, _ = single
    groups = trainer.optimizers[0].param_groups
    assert [g["initial_lr"] for g in groups] == [1e-3, 1e-4]
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.network.text_tower_parameters()}
    assert math.isclose(groups[0]["lr"], 0.0, abs_tol=1e-12)  # cosine schedule decayed to 0 over the 2 steps


def test_text_tower_learning_rate_with_pytorch_forecasting_schedule():
    """Without the cosine, pytorch-forecasting's optimizer names and per-epoch learning rates still apply."""
    model, trainer = fit(make_dataset(), optimizer="sgd", learning_rate=[1e-2, 1e-3], cosine_schedule=False)
    optimizer = trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.SGD)
    assert [g["initial_lr"] for g in optimizer.param_groups] == [1e-2, 1e-4]
    assert isinstance(trainer.lr_scheduler_configs[0].scheduler, torch.optim.lr_scheduler.LambdaLR)
    assert "parameters" not in vars(model)  # the temporary shadowing of `parameters` is gone


def test_several_targets_with_covariates():
    dataset = make_dataset(
        target=["y", "y2"],
        time_varying_unknown_reals=["y", "y2", "cov"],
        time_varying_known_reals=["known"],
    )
    model, _ = fit(dataset, loss=RMSE())
    assert isinstance(model.loss, MultiLoss)
    assert model.variate_names == ["y", "y2", "known", "cov"] and model.network.n_targets == 2
    pred = model.predict(loader(dataset), mode="prediction")
    assert isinstance(pred, list) and [p.shape for p in pred] == [(len(dataset), HORIZON)] * 2


def test_covariates_are_read_from_the_encoder_only():
    """Past values of covariates change the forecast; future values of known reals do not (no decoder inputs)."""
    frame = make_frame()
    dataset = make_dataset(frame, time_varying_unknown_reals=["y", "cov"], time_varying_known_reals=["known"])
    model = TimesCLIP.from_dataset(dataset, **TINY).eval()
    assert model.variate_names == ["y", "known", "cov"]

    def forecast(data: pd.DataFrame) -> torch.Tensor:
        return model.predict(loader(dataset, data, predict=True), mode="prediction")

    base = forecast(frame)
    future = frame.copy()
    future.loc[future.index[-HORIZON:], "known"] += 5.0
    past = frame.copy()
    past.loc[past.index[-HORIZON - CONTEXT : -HORIZON], "cov"] *= -1.0
    assert torch.equal(forecast(future), base)
    assert not torch.allclose(forecast(past), base)


def test_quantiles_and_plot_prediction():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    quantiles = [0.1, 0.5, 0.9]
    dataset = make_dataset(time_varying_unknown_reals=["y", "cov"])
    model, _ = fit(dataset, loss=QuantileLoss(quantiles))
    assert model.config.parameter_kinds == ("location",) * 3
    out = model.predict(loader(dataset), mode="quantiles")
    assert out.shape == (len(dataset), HORIZON, 3)
    point = model.predict(loader(dataset), mode="prediction")
    assert torch.allclose(point, out[..., 1])

    raw = model.predict(loader(dataset), mode="raw", return_x=True)
    fig = model.plot_prediction(raw.x, raw.output, idx=0, add_loss_to_title=True)
    assert isinstance(fig, matplotlib.figure.Figure)
    plt.close("all")


# ---------------------------------------------------------------------------------------------- persistence
@pytest.mark.parametrize(
    "variant",
    [
        {"use_numeric": False, "use_alignment": False},
        {"alignment": "hybrid", "alignment_weight": "auto"},
        {"image_encoding": "gadf"},
        {"image_encoding": "periodic", "period": 6},
    ],
)
def test_view_variants_train_and_predict_through_the_adapter(variant):
    dataset = make_dataset()
    model, trainer = fit(dataset, **variant)
    assert all(getattr(model.config, key) == value for key, value in variant.items())
    if variant.get("alignment_weight") == "auto":
        assert "train_alignment_weight" in trainer.callback_metrics
    assert torch.isfinite(model.predict(loader(dataset), mode="prediction")).all()


def test_checkpoint_round_trip(single):
    model, trainer, dataset = single
    path = trainer.checkpoint_callback.best_model_path
    assert path
    loaded = TimesCLIP.load_from_checkpoint(path)
    assert loaded.hparams.backbone == "tiny" and loaded.variate_names == model.variate_names
    assert isinstance(loaded.loss, MAE)
    expected = model.predict(loader(dataset), mode="prediction")
    torch.testing.assert_close(loaded.predict(loader(dataset), mode="prediction"), expected)


def test_pretrained_directory_loads_and_checkpoint_needs_it_no_more(tmp_path):
    import shutil

    from transformers import CLIPConfig, CLIPModel

    from darts_timesclip.backbones import PRESETS

    preset = PRESETS["tiny"]
    torch.manual_seed(123)
    reference = CLIPModel(CLIPConfig(text_config=preset.text, vision_config=preset.vision, projection_dim=16))
    backbone = tmp_path / "tiny-clip"
    reference.save_pretrained(backbone)

    dataset = make_dataset()
    trainer = make_trainer(limit_train_batches=1, limit_val_batches=0)
    model, _ = fit(dataset, trainer, backbone=str(backbone))
    saved = reference.vision_model.state_dict()
    assert all(torch.equal(saved[k], v) for k, v in model.network.vision.clip.state_dict().items())

    trainer.save_checkpoint(tmp_path / "model.ckpt")
    shutil.rmtree(backbone)
    loaded = TimesCLIP.load_from_checkpoint(tmp_path / "model.ckpt")
    assert all(torch.equal(saved[k], v) for k, v in loaded.network.vision.clip.state_dict().items())
    torch.testing.assert_close(
        loaded.predict(loader(dataset), mode="prediction"), model.predict(loader(dataset), mode="prediction")
    )


def test_pickle_round_trip(single):
    model, _, dataset = single
    restored = pickle.loads(pickle.dumps(model))
    expected = model.predict(loader(dataset), mode="prediction")
    torch.testing.assert_close(restored.predict(loader(dataset), mode="prediction"), expected)


# ---------------------------------------------------------------------------------------------- Darts parity
@pytest.mark.parametrize(
    ("normalized", "atol"),
    [(False, 1e-6), (True, 1e-5)],
    ids=["raw-window", "dataset-normalizers"],
)
def test_same_forecast_as_the_darts_model(normalized, atol):
    """Same weights and window: the adapter and the Darts model forecast the same values.

    With ``normalized``, pytorch-forecasting's default (affine) target normalizer and covariate scaler apply; TimesCLIP
    normalises each window itself, so they change nothing beyond float rounding.
    """
    from darts import TimeSeries

    from darts_timesclip import TimesCLIPModel

    frame = make_frame(90)
    darts_model = TimesCLIPModel(
        input_chunk_length=CONTEXT,
        output_chunk_length=HORIZON,
        n_epochs=1,
        batch_size=16,
        random_state=0,
        pl_trainer_kwargs=dict(accelerator="cpu", enable_progress_bar=False, enable_model_summary=False, logger=False),
        **TINY,
    )
    series = TimeSeries.from_dataframe(frame, value_cols=["y"])
    covariates = TimeSeries.from_dataframe(frame, value_cols=["cov"])
    darts_model.fit(series, past_covariates=covariates)
    expected = darts_model.predict(HORIZON, series=series[:-HORIZON], past_covariates=covariates[:-HORIZON])

    raw = {} if normalized else dict(target_normalizer=None, scalers={"cov": None})
    dataset = make_dataset(frame, time_varying_unknown_reals=["y", "cov"], **raw)
    adapter = TimesCLIP.from_dataset(dataset, loss=MAE(), **TINY)
    adapter.network.load_state_dict(darts_model.model.network.state_dict())
    got = adapter.predict(loader(dataset, frame, predict=True), mode="prediction")

    assert got.shape == (1, HORIZON)
    np.testing.assert_allclose(got[0].numpy(), expected.values()[:, 0], atol=atol, rtol=0)


# ---------------------------------------------------------------------------------------------- from_dataset errors
@pytest.mark.parametrize(
    ("dataset_kwargs", "match"),
    [
        (dict(min_encoder_length=12), "encoder length varies"),
        (dict(min_prediction_length=3), "prediction length varies"),
        (dict(randomize_length=True), "randomize_length"),
        (dict(add_relative_time_idx=True), "add_relative_time_idx"),
        (dict(add_target_scales=True), "no static covariates"),
        (dict(static_reals=["cov"]), "no static covariates"),
        (dict(time_varying_known_categoricals=["label"]), "real-valued covariates only"),
        (dict(time_varying_unknown_reals=["cov"]), "not inputs of the dataset"),
        (dict(target="label", time_varying_unknown_reals=["y"]), "categorical"),
    ],
    ids=[
        "variable-encoder",
        "variable-horizon",
        "randomize-length",
        "relative-time-idx",
        "target-scales",
        "static-reals",
        "categorical-covariate",
        "target-not-input",
        "categorical-target",
    ],
)
def test_from_dataset_rejects_unsupported_datasets(dataset_kwargs, match):
    dataset = make_dataset(**dataset_kwargs)
    with pytest.raises(ValueError, match=match):
        TimesCLIP.from_dataset(dataset, **TINY)


@pytest.mark.parametrize(
    ("model_kwargs", "match"),
    [
        (dict(patch_length=32), r"`patch_length=32` is longer than `context_length=24`"),
        (dict(patch_stride=9), r"`patch_stride=9` is longer than `patch_length=8`"),
        (dict(use_vision=False), r"`use_alignment=True` needs `use_vision=True`"),
        (dict(alignment_weight=-1.0), r"`alignment_weight` must be >= 0"),
        (dict(dropout=1.0), r"`dropout` must be in \[0, 1\)"),
        (dict(text_tower_lr=0.0), r"`text_tower_lr` must be > 0"),
        (dict(vision_chunk_size=0), r"`vision_chunk_size` must be a positive integer"),
        (dict(context_length=48), r"`context_length=48` differs from the dataset's 24"),
        (dict(learning_rate=[1e-3, 1e-4]), r"per-epoch schedule"),
        (dict(pretrained=True), r"random-weight preset"),
        (dict(loss=NormalDistributionLoss()), r"`loss=NormalDistributionLoss\(\)` is not supported"),
        (dict(loss=MultiLoss([MAE(), MAE()])), r"MultiLoss of 2 metrics"),
    ],
    ids=[
        "patch-length",
        "patch-stride",
        "alignment-without-vision",
        "alignment-weight",
        "dropout",
        "text-tower-lr",
        "vision-chunk-size",
        "context-length-conflict",
        "lr-list-with-cosine",
        "pretrained-preset",
        "distribution-loss",
        "multiloss-single-target",
    ],
)
def test_from_dataset_rejects_bad_hyperparameters(model_kwargs, match):
    with pytest.raises(ValueError, match=match):
        TimesCLIP.from_dataset(make_dataset(), **{**TINY, **model_kwargs})


def test_from_dataset_rejects_mixed_output_sizes_and_too_many_patches():
    several = make_dataset(target=["y", "y2"], time_varying_unknown_reals=["y", "y2"])
    with pytest.raises(ValueError, match="different numbers of outputs"):
        TimesCLIP.from_dataset(several, loss=MultiLoss([QuantileLoss(), MAE()]), **TINY)
    long_window = make_dataset(max_encoder_length=90, max_prediction_length=4)
    with pytest.raises(ValueError, match=r"gives 90 patches plus a summary token, more than the 77 positions"):
        TimesCLIP.from_dataset(long_window, backbone="tiny", patch_length=2, patch_stride=1)
