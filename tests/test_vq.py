"""VQTransformerModel: the tokenizer, the next-token pretraining, a fine-tune that trains, and the Darts contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from darts import TimeSeries
from darts.utils.likelihood_models import GaussianLikelihood, QuantileRegression

from darts_timesclip import VQTransformerModel
from darts_timesclip.pretraining.synthetic import synthetic_series
from darts_timesclip.vq import VQTransformerConfig, VQTransformerNetwork
from tests._helpers import (
    CPU_TRAINER,
    IN_LEN,
    OUT_LEN,
    TRAIN_END,
    LossHistory,
    held_out_ratio,
    make_series,
    make_signal_series,
)

TINY = dict(codebook_size=32, code_dim=16, tokenizer_hidden=32, d_model=32, n_heads=4, d_ff=64, n_layers=2, dropout=0.0)


def vq_kwargs(**overrides):
    """A tiny, fast, reproducible VQTransformerModel."""
    kwargs = dict(
        input_chunk_length=IN_LEN,
        output_chunk_length=OUT_LEN,
        tokenizer_epochs=2,
        pretrain_epochs=2,
        n_epochs=2,
        batch_size=32,
        random_state=0,
        pl_trainer_kwargs=dict(CPU_TRAINER),
        **TINY,
    )
    kwargs.update(overrides)
    return kwargs


def corpus(n_series: int = 12, length: int = 200) -> list[TimeSeries]:
    """A small varied corpus (the pretraining package's KernelSynth-style generator), one variate per series."""
    index = pd.date_range("2020-01-01", periods=length, freq="h")
    return [
        TimeSeries.from_times_and_values(index, values.astype(np.float32))
        for values in synthetic_series(n_series, length=length, seed=3, max_components=3)
    ]


# ----------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"compression": 3}, "`compression` must be a power of two"),
        ({"d_model": 30, "n_heads": 4}, "`d_model=30` must be divisible by `n_heads=4`"),
        ({"codebook_size": 1}, "`codebook_size` must be at least 2"),
        ({"dropout": 1.0}, r"`dropout` must lie in \[0.0, 1.0\)"),
        ({"code_temperature": 0.0}, "`code_temperature` must be a finite number > 0"),
        ({"tokenizer_epochs": -1}, "`tokenizer_epochs` must be a non-negative integer"),
        ({"pretrain_lr": 0.0}, "`pretrain_lr` must be a finite number > 0"),
        ({"use_reversible_instance_norm": True}, "`use_reversible_instance_norm` must be False"),
    ],
)
def test_bad_hyperparameters_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        VQTransformerModel(**vq_kwargs(**overrides))


def test_hyperparameters_live_in_one_documented_config():
    public = VQTransformerConfig.public_parameters()
    assert {"tokenizer_epochs", "pretrain_lr", "codebook_size", "d_model", "code_temperature"} <= set(public)
    assert "n_targets" not in public and "parameter_kinds" not in public  # set from the data / the likelihood
    doc = VQTransformerModel.__init__.__doc__
    assert "{vq_parameters}" not in doc
    for name in public:
        assert f"\n        {name}\n            " in doc, name
    model = VQTransformerModel(**vq_kwargs(codebook_size=32, pretrain_lr=5e-3, batch_size=7))
    assert model.config.codebook_size == 32 and model.config.pretrain_lr == 5e-3
    assert model.batch_size == 7  # Darts' arguments still reach Darts
    with pytest.raises(ValueError, match=r"has no args/kwargs `\['codebook'\]`"):
        VQTransformerModel(**vq_kwargs(codebook=32))


def test_unsupported_likelihood_is_named():
    from darts.utils.likelihood_models import PoissonLikelihood

    with pytest.raises(ValueError, match="`likelihood=PoissonLikelihood\\(\\)` is not supported"):
        VQTransformerModel(**vq_kwargs(likelihood=PoissonLikelihood()))


def test_network_shapes_with_lengths_that_are_not_whole_tokens():
    config = VQTransformerConfig(22, 5, output_chunk_shift=2, n_targets=3, n_past_covariates=2, **TINY)
    network = VQTransformerNetwork(config)
    assert (config.context_tokens, config.forecast_tokens) == (6, 2)
    out = network(torch.randn(4, 22, 5))
    assert out.shape == (4, 5, 3, 1)
    assert network.sequences(torch.randn(4, 22 + 2 + 5)).shape == (4, 8 * 4)


# ----------------------------------------------------------------------- stages 1 and 2
def test_tokenizer_learns_and_its_codebook_does_not_collapse():
    model = VQTransformerModel(**vq_kwargs(tokenizer_epochs=4, pretrain_epochs=2, codebook_size=64))
    series = corpus()
    before = VQTransformerModel(**vq_kwargs(tokenizer_epochs=0, pretrain_epochs=0, codebook_size=64))
    before.pretrain(series)
    untrained = before.codebook_usage(series)

    model.pretrain(series)
    history = model.stage_history.values
    reconstruction = history["tokenizer_reconstruction_loss"]
    assert reconstruction[-1] < 0.5 * reconstruction[0], reconstruction
    usage = model.codebook_usage(series)
    assert usage["reconstruction_mse"] < 0.5 * untrained["reconstruction_mse"], (usage, untrained)
    # a collapsed codebook uses a handful of codes; this corpus keeps a good share of 64 in use
    assert usage["used"] >= 24 and usage["perplexity"] >= 12, usage
    assert int(model.pretrained_state["tokenizer.quantizer.restarts"]) > 0  # dead codes were restarted

    cross_entropy = history["pretrain_loss"]
    assert cross_entropy[-1] < cross_entropy[0], cross_entropy
    assert cross_entropy[0] < np.log(64) + 0.5  # starts near a uniform guess


def test_stages_run_in_order_and_fit_reuses_a_pretrained_tokenizer():
    model = VQTransformerModel(**vq_kwargs())
    model.pretrain(corpus(n_series=4))  # univariate corpus; the target has two variates
    assert list(model.stage_history.values)[:1] == ["tokenizer_loss"]
    assert list(model.stage_history.values)[-1] == "pretrain_epoch_seconds"
    assert all(seconds > 0 for seconds in model.stage_history.values["tokenizer_epoch_seconds"])
    epochs_before = len(model.stage_history.values["tokenizer_loss"])
    codebook = model.pretrained_state["tokenizer.quantizer.codebook"].clone()
    head = model.pretrained_state["transformer.head.weight"].clone()

    history = LossHistory()
    model.trainer_params["callbacks"] = [history]
    model.fit(make_signal_series()[:TRAIN_END])

    assert len(model.stage_history.values["tokenizer_loss"]) == epochs_before  # stages 1 and 2 not repeated
    network = model.model.network
    assert bool(network.stages_done.all())
    assert torch.equal(network.tokenizer.quantizer.codebook, codebook)  # the fine-tune leaves the codebook alone
    assert not torch.equal(network.transformer.head.weight, head)  # ... and trains the Transformer
    assert len(history.losses) == 2


def test_fit_without_pretraining_runs_every_stage_then_stops_repeating_them(series):
    model = VQTransformerModel(**vq_kwargs(n_epochs=1)).fit(series)
    values = model.stage_history.values
    assert len(values["tokenizer_loss"]) == 2 and len(values["pretrain_loss"]) == 2
    model.fit(series, epochs=1)
    assert len(values["tokenizer_loss"]) == 2


# ----------------------------------------------------------------------- stage 3: a fine-tune that trains
@pytest.mark.parametrize(
    ("name", "overrides", "ceiling"),
    [
        ("default", {}, 0.25),  # observed 0.04
        ("frozen-tokenizer", {"enable_finetuning": {"freeze": ["network.tokenizer.*"]}}, 0.5),  # observed 0.30
        ("covariates", {}, 0.25),
        ("quantiles", {"likelihood": QuantileRegression([0.1, 0.5, 0.9])}, 0.5),
        ("gaussian", {"likelihood": GaussianLikelihood()}, 0.6),
    ],
)
def test_fine_tune_trains_and_beats_the_naive_forecast(name, overrides, ceiling, signal):
    train, held_out, naive_mse = signal
    history = LossHistory()
    model = VQTransformerModel(
        **vq_kwargs(n_epochs=3, pl_trainer_kwargs=dict(CPU_TRAINER, callbacks=[history])), **overrides
    )
    covariates = None
    if name == "covariates":
        covariates = make_signal_series()["b"].with_columns_renamed("b", "covariate")
    model.fit(train, past_covariates=covariates)
    trainable = sum(p.numel() for p in model.model.parameters() if p.requires_grad)
    assert trainable > 0
    assert history.losses[-1] < history.losses[0], history.losses

    ratio = held_out_ratio(model, held_out, naive_mse, overrides.get("likelihood"), past_covariates=covariates)
    assert ratio < ceiling, f"{name}: MSE is {ratio:.3f} x the naive forecast's (ceiling {ceiling})"


def test_frozen_parts_stay_frozen(series):
    model = VQTransformerModel(**vq_kwargs(enable_finetuning={"unfreeze": ["network.transformer.*"]}, n_epochs=1))
    model.pretrain(series)
    encoder = model.pretrained_state["tokenizer.encoder.0.weight"]
    model.fit(series)
    assert torch.equal(model.model.network.tokenizer.encoder[0].weight.detach(), encoder)
    assert not any(p.requires_grad for p in model.model.network.tokenizer.parameters())


def test_a_fine_tune_that_trains_nothing_is_refused(series):
    with pytest.raises(ValueError, match=r"`enable_finetuning=False` would train nothing"):
        VQTransformerModel(**vq_kwargs(enable_finetuning=False))
    model = VQTransformerModel(**vq_kwargs(enable_finetuning={"unfreeze": ["no.such.parameter"]}))
    with pytest.raises(ValueError, match=r"leaves no parameter to train \(trainable parameters: 0\)"):
        model.fit(series)


# ----------------------------------------------------------------------- the Darts contract
def test_several_series_backtest_and_shifted_output(series):
    other = make_series(seed=1)
    model = VQTransformerModel(**vq_kwargs(input_chunk_length=22, output_chunk_shift=2, n_epochs=1))
    model.fit([series, other])
    forecasts = model.predict(n=6, series=[series, other])
    assert [len(f) for f in forecasts] == [6, 6]
    assert forecasts[0].start_time() == series.end_time() + 3 * series.freq
    error = model.backtest(series, start=0.7, forecast_horizon=6, retrain=False, verbose=False)
    assert np.isfinite(error)


def test_save_and_load_give_identical_predictions(series, tmp_path):
    model = VQTransformerModel(**vq_kwargs(n_epochs=1, likelihood=GaussianLikelihood())).fit(series)
    path = tmp_path / "vq.pt"
    model.save(str(path))
    loaded = VQTransformerModel.load(str(path))
    assert loaded.predict(6, series=series, predict_likelihood_parameters=True) == model.predict(
        6, series=series, predict_likelihood_parameters=True
    )
    assert loaded.stage_history.values == model.stage_history.values


def test_pretrained_model_saves_and_loads_before_fit(series, tmp_path):
    model = VQTransformerModel(**vq_kwargs()).pretrain(series)
    path = tmp_path / "pretrained.pt"
    model.save(str(path))
    loaded = VQTransformerModel.load(str(path))
    assert loaded.model is None
    assert all(torch.equal(loaded.pretrained_state[k], v) for k, v in model.pretrained_state.items())


def test_random_state_makes_fits_reproducible(series):
    first = VQTransformerModel(**vq_kwargs(n_epochs=1, random_state=7)).fit(series).predict(6)
    second = VQTransformerModel(**vq_kwargs(n_epochs=1, random_state=7)).fit(series).predict(6)
    third = VQTransformerModel(**vq_kwargs(n_epochs=1, random_state=8)).fit(series).predict(6)
    assert first == second
    assert first != third


def test_bad_input_errors_match_timesclip(series):
    bad = series.values().copy()
    bad[10, 1] = np.nan
    with_nan = TimeSeries.from_times_and_values(series.time_index, bad, columns=series.components)
    model = VQTransformerModel(**vq_kwargs())
    with pytest.raises(ValueError, match="`series` has a non-finite value \\(nan\\) in component `c1`"):
        model.fit(with_nan)
    with pytest.raises(ValueError, match="`series` has 20 time steps; one training window needs at least 30"):
        model.fit(series[:20])
    with pytest.raises(ValueError, match="`series\\[1\\]` has 20 time steps; one pretraining window needs at least 30"):
        model.pretrain([series, series[:20]])
    with pytest.raises(ValueError, match="`series` is empty"):
        model.pretrain([])
    with pytest.raises(ValueError, match="`codebook_usage` needs a fitted or pretrained model"):
        model.codebook_usage(series)
    model.fit(series, epochs=1)
    with pytest.raises(ValueError, match="`series` has 3 components, but the model was trained on 2"):
        model.predict(6, series=make_series(n_components=3))


def test_pretrained_weights_of_other_sizes_are_refused(series):
    donor = VQTransformerModel(**vq_kwargs(tokenizer_epochs=0, pretrain_epochs=0, codebook_size=16)).pretrain(series)
    model = VQTransformerModel(**vq_kwargs())
    model.pretrained_state = donor.pretrained_state
    with pytest.raises(ValueError, match="`tokenizer.quantizer.codebook` has shape \\(16, 16\\)"):
        model.fit(series)


def test_untrained_model_has_the_same_parameters():
    model = VQTransformerModel(**vq_kwargs(code_temperature=0.5))
    clone = model.untrained_model()
    assert clone.model_params == model.model_params
    assert clone.config == model.config and clone.config.code_temperature == 0.5


def test_same_result_for_repeated_predictions_of_many_copies(series):
    copies = [series] * 6
    model = VQTransformerModel(**vq_kwargs(n_epochs=1)).fit(copies)
    first = model.predict(n=12, series=copies, n_jobs=1)
    second = model.predict(n=12, series=copies, n_jobs=-1)
    assert all(a == b for a, b in zip(first, second, strict=True))
