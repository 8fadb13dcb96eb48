"""The measurement commands of ``python -m benchmarks`` end to end at tiny settings, each checked against a
recomputation of what it prints or writes."""

from __future__ import annotations

import copy
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from benchmarks.cli import main
from benchmarks.commands.quickstart import HORIZON, LOOKBACK, synthetic_etth1
from benchmarks.protocol import prepare
from benchmarks.registry import LoadedDataset, get_spec, read_dataset
from tests.benchmarks.bench_helpers import write_synthetic_csv

#: The columns of ``write_synthetic_csv(path, n, 7)`` as the loader orders them ('OT' last).
SYNTHETIC_COLUMNS = ["v0", "v1", "v2", "v3", "v4", "v5", "OT"]


@pytest.fixture
def etth1_dir(tmp_path):
    """A directory with a synthetic ``ETTh1.csv`` (7 variates, 14,400 hourly rows)."""
    write_synthetic_csv(tmp_path / "data" / "ETTh1.csv", 14400, 7)
    return tmp_path / "data"


def _image_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()  # decodes the whole file, not just its header
        return image.size


def test_quickstart_falls_back_to_the_embedded_series_and_prints_what_it_writes(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DARTS_TIMESCLIP_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no Darts cache of ETTh1 either
    out = tmp_path / "out"
    argv = ["quickstart", "--data-dir", str(tmp_path / "none"), "--output", str(out), "--scale", "tiny"]
    argv += ["--max-epochs", "1", "--max-samples-per-ts", "32", "--test-windows", "3", "--no-progress-bar"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "using the embedded synthetic ETTh1-shaped series instead" in printed

    records = json.loads((out / "quickstart.json").read_text())
    assert [r["model"] for r in records] == ["timesclip", "nlinear"]
    assert records[0]["backbone"] == "tiny"
    for record in records:
        assert record["metrics"]["n_test_windows"] == 3
        assert record["budget"]["epochs_run"] == 1 and record["budget"]["train_windows_per_epoch"] == 32
        mse, mae = record["metrics"]["mse"], record["metrics"]["mae"]
        assert f"| {record['model']} | {mse:.3f} | {mae:.3f} | - |" in printed  # no published number applies
        assert 0 < mae**2 <= mse  # Jensen: the mean square is at least the squared mean absolute error
    assert "metrics on the standardised" in printed and "3 test windows" in printed
    assert "`tiny` preset" in printed and "1 epochs over the 32 latest windows" in printed

    # the plotted window is the first test window of the embedded series, on the train split's scale
    data = prepare(
        LoadedDataset(get_spec("ETTh1"), tmp_path, tuple(SYNTHETIC_COLUMNS), synthetic_etth1(get_spec("ETTh1").n_rows)),
        LOOKBACK,
    )
    first = data.borders.test[0] + LOOKBACK
    example = records[1]["example_window"]
    assert example["variate"] == "OT" and example["index"] == 0
    np.testing.assert_allclose(example["context"], data.scaled[first - LOOKBACK : first, -1], rtol=1e-6)
    np.testing.assert_allclose(example["truth"], data.scaled[first : first + HORIZON, -1], rtol=1e-6)
    assert len(example["forecast"]) == HORIZON and np.isfinite(example["forecast"]).all()
    assert _image_size(out / "forecast_vs_truth.png") == (990, 385)  # 9 x 3.5 inches at 110 dpi


def test_explain_writes_the_attention_behind_its_heatmap(etth1_dir, tmp_path, capsys):
    out = tmp_path / "pictures"
    argv = ["explain", "--data-dir", str(etth1_dir), "--output", str(out), "--backbone", "tiny"]
    assert main([*argv, "--epochs", "1", "--windows", "16"]) == 0
    attention = pd.read_csv(out / "variate_attention.csv", index_col="target")
    tokens = [f"{name} (numbers)" for name in SYNTHETIC_COLUMNS] + [f"{name} (image)" for name in SYNTHETIC_COLUMNS]
    assert list(attention.index) == SYNTHETIC_COLUMNS and list(attention.columns) == tokens
    assert (attention.to_numpy() >= 0).all()
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-5)
    # the heatmap's size follows its table: (1 + 0.55 per token) x (1.2 + 0.45 per target) inches at 110 dpi
    width, height = _image_size(out / "variate_attention.png")
    assert width == pytest.approx(110 * (1 + 0.55 * 14), abs=1) and height == pytest.approx(
        110 * (1.2 + 0.45 * 7), abs=1
    )
    assert min(_image_size(out / "views.png")) > 0
    assert f"wrote {out / 'variate_attention.png'}, {out / 'variate_attention.csv'}" in capsys.readouterr().out


def test_export_keeps_an_onnx_file_that_forecasts_what_predict_does(etth1_dir, tmp_path, capsys):
    import onnxruntime as ort
    from darts.utils.onnx import run_onnx_prediction

    from darts_timesclip import TimesCLIPModel

    saved = tmp_path / "export"
    argv = ["export", "--data-dir", str(etth1_dir), "--backbone", "tiny", "--train-windows", "16", "--windows", "2"]
    assert main([*argv, "--save-to", str(saved)]) == 0
    printed = capsys.readouterr().out
    assert "tiny backbone (random weights), 2 test windows, H = 96" in printed
    reported = float(re.search(r"max \|onnx - predict\| = (\S+) \(tolerance 0.0001\)", printed).group(1))
    assert reported <= 1e-4

    # the kept files, read back: the ONNX graph forecasts the command's test windows as the saved model does
    model = TimesCLIPModel.load(str(saved / "timesclip.pt"), map_location="cpu")
    session = ort.InferenceSession(str(saved / "timesclip.onnx"))
    full = prepare(read_dataset(get_spec("ETTh1"), etth1_dir), LOOKBACK).series()
    forecasts = []
    for end in (len(full) - 2 * HORIZON, len(full) - HORIZON):
        expected = model.predict(HORIZON, full[:end], verbose=False).values()
        exported = run_onnx_prediction(n=HORIZON, session=session, series=full[:end]).values()
        np.testing.assert_allclose(exported, expected, atol=1e-4)
        forecasts.append(exported)
    assert np.abs(forecasts[0] - forecasts[1]).max() > 1e-3  # each forecast follows its own window


def _positive_finite(values) -> bool:
    values = list(values)
    return bool(values) and all(math.isfinite(v) and v > 0 for v in values)


def test_speed_reports_the_parameters_of_the_network_it_builds(etth1_dir, tmp_path, capsys):
    from darts_timesclip.network import TimesCLIPConfig, TimesCLIPNetwork

    threads = torch.get_num_threads()
    written = tmp_path / "speed.json"
    argv = ["speed", "--data-dir", str(etth1_dir), "--backbone", "tiny", "--charts", "6", "--parameter-backbones",
            "tiny", "--images", "4", "--epochs", "1", "--windows", "16", "--batch-size", "8",
            "--json", str(written)]  # fmt: skip
    assert main(argv) == 0
    assert torch.get_num_threads() == threads
    printed = capsys.readouterr().out
    figures = json.loads(written.read_text())

    # every chart asked for is rendered, at both sizes
    rendering = figures["rendering"]
    assert [(r["image_size"], r["charts"], r["matplotlib_charts"]) for r in rendering] == [(64, 6, 6), (224, 6, 6)]
    assert _positive_finite(r[key] for r in rendering for key in ("charts_per_second", "matplotlib_charts_per_second"))

    # the parameter counts are those of the network the Darts model builds for ETTh1's 7 variates
    network = TimesCLIPNetwork(TimesCLIPConfig(96, 96, n_targets=7, backbone="tiny", pretrained=False))
    total = sum(p.numel() for p in network.parameters())
    trainable = sum(p.numel() for p in network.parameters() if p.requires_grad)
    assert figures["parameters"] == [{"backbone": "tiny", "image_size": 32, "total": total, "trainable": trainable}]
    assert 0 < trainable < total  # the vision tower is frozen
    assert f"| tiny | 32 | {total / 1e6:.2f} M | {trainable / 1e6:.2f} M |" in printed

    device = figures["device"]
    assert device["image_size"] == 32 and device["images"] == 4
    assert _positive_finite([device["charts_per_second"], device["encoded_per_second"]])

    # one epoch with the embedding cache and one without, over the 16 latest windows of the train split
    training = figures["training"]
    assert training["data"] == "ETTh1 train split (standardised), 16 windows x 7 variates, batch 8"
    assert sorted(training["epoch_seconds"]) == ["off", "on"]
    assert all(len(times) == 1 and _positive_finite(times) for times in training["epoch_seconds"].values())
    assert f"wrote {written}" in printed


def test_variates_measures_one_row_per_variate_count(tmp_path, capsys):
    from darts_timesclip.network import TimesCLIPConfig, TimesCLIPNetwork

    threads, generator = torch.get_num_threads(), torch.random.get_rng_state()
    written = tmp_path / "variates.json"
    argv = ["variates", "--variates", "1", "3", "--batch-size", "2", "--steps", "1", "--backbone", "tiny"]
    assert main([*argv, "--in-process", "--json", str(written)]) == 0
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), generator)
    printed = capsys.readouterr().out
    rows = json.loads(written.read_text())["rows"]
    assert [row["variates"] for row in rows] == [1, 3]
    previous = (0, 0.0)
    for row in rows:
        config = TimesCLIPConfig(96, 96, n_targets=row["variates"], backbone="tiny", pretrained=False)
        network = TimesCLIPNetwork(config)
        assert row["parameters"] == sum(p.numel() for p in network.parameters())
        assert row["trainable_parameters"] == sum(p.numel() for p in network.parameters() if p.requires_grad)
        seconds = [row["seconds_per_step_cache_on"], row["seconds_per_step_cache_off"]]
        assert _positive_finite([*seconds, row["peak_rss_mb"]])
        assert 0 <= row["rss_increase_mb"] < row["peak_rss_mb"]
        per_variate = (row["rss_increase_mb"] - previous[1]) / (row["variates"] - previous[0])
        assert row["mb_per_added_variate"] == pytest.approx(per_variate)
        line = rf"\| {row['variates']} \| [\d.]+ \| [\d.]+ \| [\d,]+ \| [\d,]+ \| {per_variate:.2f} \|"
        assert re.search(line, printed), printed
        previous = (row["variates"], row["rss_increase_mb"])


def test_vq_figures_reports_the_parameters_and_codebook_of_the_model_it_trains(
    etth1_dir, tmp_path, capsys, monkeypatch
):
    from benchmarks.models import TrainingCaps, build_model, model_config
    from darts_timesclip import VQTransformerModel
    from darts_timesclip.vq.network import VQTransformerNetwork

    calls = []  # what the command measures the codebook on, and the network it measures
    measure = VQTransformerModel.codebook_usage

    def recorded(self, series, max_samples_per_ts=None):
        calls.append((series.values(), max_samples_per_ts, copy.deepcopy(self.model.network if self.model else None)))
        return measure(self, series, max_samples_per_ts)

    monkeypatch.setattr(VQTransformerModel, "codebook_usage", recorded)
    threads = torch.get_num_threads()
    written = tmp_path / "vq.json"
    argv = ["vq-figures", "--data-dir", str(etth1_dir), "--scale", "tiny", "--epochs", "1", "--windows", "16"]
    assert main([*argv, "--test-windows", "16", "--json", str(written)]) == 0
    assert torch.get_num_threads() == threads
    printed = capsys.readouterr().out
    figures = json.loads(written.read_text())

    # the parameter counts are those of the tiny configuration's network for ETTh1's 7 variates
    config = model_config("vqtransformer", "ETTh1", 96, scale="tiny")
    model = build_model(config, lookback=96, horizon=96, seed=0, caps=TrainingCaps(), n_train_windows=16, callbacks=[])
    network = VQTransformerNetwork(model.config.replace(n_targets=7))
    heads = [network.future_queries, *network.latent_head.parameters(), *network.parameter_head.parameters()]
    expected = {
        "tokenizer (VQ-VAE)": sum(p.numel() for p in network.tokenizer.parameters()),
        "causal Transformer": sum(p.numel() for p in network.transformer.parameters()),
        "forecast queries and heads": sum(p.numel() for p in heads),
        "total": sum(p.numel() for p in network.parameters()),
    }
    assert figures["parameters"] == expected
    for name, count in expected.items():
        assert f"| {name} | {count:,} |" in printed

    # one epoch per stage
    assert sorted(figures["epoch_seconds"]) == ["fine-tune", "pretrain", "tokenizer"]
    assert all(len(seconds) == 1 and _positive_finite(seconds) for seconds in figures["epoch_seconds"].values())
    assert all(len(values) == 1 for values in figures["stage_losses"].values())
    assert 0 < figures["stage_losses"]["tokenizer_codebook_usage"][0] <= 1

    # the codebook's use on each split: at least one code, perplexity at most the codes used, at most all 16
    assert len(figures["codebook"]) == 4
    for split, usage in figures["codebook"].items():
        assert usage["codebook_size"] == 16
        assert 1 <= usage["perplexity"] <= usage["used"] + 1e-9 and usage["used"] <= 16, split
        assert _positive_finite([usage["reconstruction_mse"]])
        assert f"| {split} | {usage['perplexity']:.1f} | {usage['used']} of 16 |" in printed
    assert "cross-entropy ln 16 = 2.773" in printed

    # after the fine-tune, the codes used are those the tokenizer gives the test split's 16 latest windows per variate
    values, latest, network = calls[-1]
    data = prepare(read_dataset(get_spec("ETTh1"), etth1_dir), 96)
    np.testing.assert_array_equal(values, data.series(data.borders.test[0] - 96, data.borders.test[1]).values())
    assert latest == 16 and len(calls) == 4
    windows = [
        values[end - 192 : end, v] for v in range(values.shape[1]) for end in range(len(values) - 15, len(values) + 1)
    ]
    with torch.no_grad():
        network.eval()
        _, quantised = network.tokenizer(network.sequences(torch.tensor(np.stack(windows), dtype=torch.float32)))
    counts = torch.bincount(quantised.codes.flatten(), minlength=16).double()
    usage = figures["codebook"]["test, after the fine-tune"]
    assert usage["used"] == int((counts > 0).sum())
    probabilities = counts[counts > 0] / counts.sum()
    assert usage["perplexity"] == pytest.approx(float(torch.exp(-(probabilities * probabilities.log()).sum())))
