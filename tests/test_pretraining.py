"""Self-pretraining: the synthetic corpus, CSV corpora, the loop (resume, checks) and the backbone it writes."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest
import torch

from darts_timesclip import TimesCLIPModel
from darts_timesclip.pretrain import main as pretrain_cli
from darts_timesclip.pretraining import build_corpus, pretrain_backbone, synthetic_series
from darts_timesclip.pretraining import trainer as trainer_module
from tests._helpers import make_series, model_kwargs

TINY_RUN = dict(backbone="tiny", max_steps=6, batch_size=8, context_lengths=(24, 48), patch_length=8, patch_stride=4)


# ---------------------------------------------------------------------------------------------- corpus
def test_synthetic_series_are_seeded_finite_and_varied():
    a = synthetic_series(40, length=256, seed=3)
    b = synthetic_series(40, length=256, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], synthetic_series(1, length=256, seed=4)[0])
    assert all(x.dtype == np.float32 and x.shape == (256,) and np.isfinite(x).all() for x in a)
    spreads = np.array([x.std() for x in a])
    assert (spreads > 0).all() and spreads.max() / spreads.min() > 10  # scales vary, none is constant
    with pytest.raises(ValueError, match=r"`n_series` must be a non-negative integer, got `-1`"):
        synthetic_series(-1)


def test_csv_corpus_drops_dates_splits_nan_gaps_and_counts_skips(tmp_path):
    values = np.sin(np.arange(200.0))
    gappy = values.copy()
    gappy[100:103] = np.nan  # two stretches of 100 and 97
    gappy[150:195] = np.nan  # a 47-point stretch left between gaps, and 5 at the end: too short for 48
    frame = pd.DataFrame({"date": pd.date_range("2020", periods=200, freq="h").astype(str), "a": values, "b": gappy})
    with gzip.open(tmp_path / "x.csv.gz", "wt") as f:
        frame.to_csv(f, index=False)
    corpus = build_corpus(csv_paths=[tmp_path], min_length=48)
    assert corpus.names == ["x.csv.gz:a", "x.csv.gz:b#0"]
    assert corpus.skipped == {"nan_values": 48, "short_segments": 2}
    assert corpus.summary()["n_points"] == 300


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"a": np.r_[np.ones(60), np.inf]}), r"`x.csv:a` has an infinite value at position 60"),
        (
            pd.DataFrame({"a": np.ones(60), "kind": ["x"] * 60}),
            r"`.*x.csv` column `kind` is neither numeric nor a date",
        ),
        (pd.DataFrame({"a": np.ones(10)}), r"`x.csv:a` has 10 points; pretraining needs at least 48"),
    ],
)
def test_bad_csv_input_is_named(tmp_path, frame, message):
    frame.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(ValueError, match=message):
        build_corpus(csv_paths=[tmp_path / "x.csv"], min_length=48)


def test_no_input_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"No series to pretrain on"):
        build_corpus()
    with pytest.raises(ValueError, match=r"holds no .csv or .csv.gz file"):
        build_corpus(csv_paths=[tmp_path])


# ---------------------------------------------------------------------------------------------- the loop
@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("backbone")
    series = [make_series(120, n_components=2, seed=s) for s in range(3)]
    return pretrain_backbone(series, path, synthetic=20, **TINY_RUN)


def test_output_loads_as_a_clip_model_and_records_the_run(pretrained_dir):
    from transformers import CLIPModel

    clip = CLIPModel.from_pretrained(pretrained_dir)
    assert clip.config.vision_config.hidden_size == 32
    record = json.loads((pretrained_dir / "pretraining.json").read_text())
    assert record["steps"] == 6 and record["run"]["objective"] == "next-patch"
    assert record["corpus"]["n_series"] == 26  # 3 series x 2 components + 20 synthetic
    assert {"total", "contrastive", "temporal", "windows_per_s"} <= set(record["final_losses"])
    assert record["device"] == "cpu" and record["device_name"].endswith(f", {torch.get_num_threads()} threads")
    assert not (pretrained_dir / "checkpoint.pt").exists()


def test_both_towers_are_trained(pretrained_dir):
    from transformers import CLIPModel

    from darts_timesclip.backbones import build_text_tower, build_vision_tower, resolve_backbone

    spec = resolve_backbone("tiny")
    torch.manual_seed(0)  # the loop's initialisation (seed 0) before training
    vision, text = build_vision_tower(spec.vision_config), build_text_tower(spec.text_config)
    clip = CLIPModel.from_pretrained(pretrained_dir)
    for trained, initial in ((clip.vision_model, vision), (clip.text_model, text)):
        moved = [not torch.equal(a, b) for a, b in zip(trained.state_dict().values(), initial.state_dict().values())]
        assert sum(moved) > len(moved) // 2


def test_forecasters_load_the_pretrained_backbone(pretrained_dir, series):
    from transformers import CLIPVisionModel

    model = TimesCLIPModel(**model_kwargs(backbone=str(pretrained_dir)))
    assert model.config.pretrained  # a directory loads its weights by default
    model.fit(series)
    saved = CLIPVisionModel.from_pretrained(pretrained_dir).state_dict()
    ours = model.model.network.vision.clip.state_dict()
    assert all(torch.equal(saved[k], ours[k]) for k in saved)  # frozen vision tower: exactly the pretrained one
    assert np.isfinite(model.predict(6).values()).all()


def test_pretraining_lowers_the_loss(tmp_path):
    pretrain_backbone(None, tmp_path, synthetic=30, **{**TINY_RUN, "max_steps": 40}, log_every=10)
    history = json.loads((tmp_path / "pretraining.json").read_text())["history"]
    assert history[-1]["total"] < history[0]["total"], history


@pytest.mark.parametrize("objective", ["masked", "contrastive-only"])
def test_other_objectives_run(tmp_path, objective):
    pretrain_backbone(None, tmp_path, synthetic=10, objective=objective, **TINY_RUN)
    record = json.loads((tmp_path / "pretraining.json").read_text())
    assert ("temporal" in record["final_losses"]) == (objective == "masked")


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    run = dict(**{**TINY_RUN, "max_steps": 10}, synthetic=10, checkpoint_every=4)
    pretrain_backbone(None, tmp_path / "straight", **run)

    original = trainer_module.WindowSampler.sample
    calls = {"n": 0}

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(trainer_module.WindowSampler, "sample", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pretrain_backbone(None, tmp_path / "resumed", **run)
    assert (tmp_path / "resumed" / "checkpoint.pt").exists()
    monkeypatch.setattr(trainer_module.WindowSampler, "sample", original)
    pretrain_backbone(None, tmp_path / "resumed", **run)  # resumes at step 4

    straight = load_file(tmp_path / "straight" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model.safetensors")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)


def test_output_directory_of_another_run_or_backbone_is_refused(pretrained_dir, tmp_path):
    series = [make_series(120, n_components=2, seed=s) for s in range(3)]
    # the same run again: nothing to do
    assert pretrain_backbone(series, pretrained_dir, synthetic=20, **TINY_RUN) == pretrained_dir
    with pytest.raises(ValueError, match=r"already holds a pretrained backbone made with other settings"):
        pretrain_backbone(series, pretrained_dir, synthetic=21, **TINY_RUN)
    from transformers import CLIPModel

    CLIPModel.from_pretrained(pretrained_dir).save_pretrained(tmp_path / "foreign")
    with pytest.raises(ValueError, match=r"already holds a CLIP backbone \(`config.json`\) that this run did not"):
        pretrain_backbone(None, tmp_path / "foreign", synthetic=5, **TINY_RUN)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch_size": 1}, r"`batch_size` must be at least 2"),
        ({"objective": "jigsaw"}, r"`objective` must be one of"),
        ({"context_lengths": (4, 48)}, r"must all be at least `patch_length=8`"),
        ({"context_lengths": (400,), "patch_length": 4, "patch_stride": 4}, r"`max\(context_lengths\)=400`"),
        ({"max_steps": 0}, r"`max_steps` must be a positive integer, got `0`"),
    ],
)
def test_bad_arguments_are_named(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        pretrain_backbone(None, tmp_path, synthetic=2, **{**TINY_RUN, **overrides})


def test_command_line(tmp_path, capsys):
    assert pretrain_cli(["--output", str(tmp_path / "none")]) == 2
    assert "pass --data PATH ... and/or --synthetic N" in capsys.readouterr().err
    args = ["--output", str(tmp_path / "b"), "--synthetic", "8", "--backbone", "tiny", "--max-steps", "3"]
    args += ["--batch-size", "4", "--context-lengths", "24", "--patch-length", "8", "--patch-stride", "4"]
    assert pretrain_cli(args) == 0
    record = json.loads((tmp_path / "b" / "pretraining.json").read_text())
    assert record["command"].startswith("python -m darts_timesclip.pretrain --output")
    assert pretrain_cli([*args[:2], "--data", str(tmp_path / "missing.csv")]) == 2
    assert "is neither a file nor a directory" in capsys.readouterr().err


def test_pretraining_draws_the_charts_of_the_chart_pipeline():
    from darts_timesclip.backbones import resolve_backbone
    from darts_timesclip.pretraining import TimesCLIPPretrainer

    spec = resolve_backbone("tiny")
    torch.manual_seed(0)
    model = TimesCLIPPretrainer(spec.vision_config, spec.text_config, patch_length=8, patch_stride=4, max_context=48)
    windows = torch.randn(4, 48).cumsum(dim=1) * 50 + 1000
    colour_index = torch.tensor([3, 0, 7, 12])
    vision, seen = model.vision, []
    hook = vision.clip.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["pixel_values"]), with_kwargs=True)
    with torch.no_grad():
        model(windows, colour_index)
    hook.remove()
    images = vision.images(windows[:, :, None], colour_index[:, None])[:, 0]  # one variate per window
    assert torch.equal(torch.cat(seen), (images - vision.pixel_mean) / vision.pixel_std)
    assert not torch.equal(images[3], vision.images(windows[3:, :, None])[0, 0])  # colour 12 is not colour 0


class _StateLookupHead(torch.nn.Module):
    """A patch head that knows which patch each state belongs to and answers with the patch ``shift`` places on.

    ``states [B, N + 1, D]`` are the numeric tower's outputs on the windows (patch states, then the summary); a
    state given to the head is looked up among them, and the patch of ``patches [B, N, P]`` ``shift`` positions
    after it is returned (zeros past the last patch): ``shift=1`` is a perfect next-patch predictor, ``shift=0``
    a copy of the patch the state has seen.
    """

    def __init__(self, states: torch.Tensor, patches: torch.Tensor, shift: int) -> None:
        super().__init__()
        self.states, self.patches, self.shift = states, patches, shift

    def forward(self, given: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(*given.shape[:-1], self.patches.shape[-1])
        n = self.patches.shape[1]
        for b in range(given.shape[0]):
            for k in range(given.shape[1]):
                j = int((self.states[b] - given[b, k]).norm(dim=-1).argmin())
                assert torch.allclose(self.states[b, j], given[b, k]), "a state the tower did not produce"
                if j + self.shift < n:
                    out[b, k] = self.patches[b, j + self.shift]
        return out


def test_next_patch_objective_targets_the_next_patch():
    """Hand-built windows of 24 steps: patches of 8 at stride 4 start at 0, 4, ..., 20 (6 patches; the last is
    padded with the last value)."""
    from darts_timesclip.backbones import resolve_backbone
    from darts_timesclip.network.normalization import instance_normalize
    from darts_timesclip.pretraining import TimesCLIPPretrainer

    spec = resolve_backbone("tiny")
    torch.manual_seed(0)
    model = TimesCLIPPretrainer(spec.vision_config, spec.text_config, patch_length=8, patch_stride=4, max_context=24)
    model.eval()
    t = torch.arange(24.0)
    windows = torch.stack([torch.sin(t / 2), t**1.5, torch.cos(t / 3) * t])  # patches unlike their neighbours
    rows = instance_normalize(windows.unsqueeze(-1))[0][..., 0]
    padded = torch.cat([rows, rows[:, -1:].expand(-1, 4)], dim=1)
    patches = torch.stack([padded[:, 4 * i : 4 * i + 8] for i in range(6)], dim=1)  # [B, 6, 8], by hand
    with torch.no_grad():
        states = model.numeric.encode_tokens(model.numeric.tokenizer(patches))  # [B, 7, D]
        model.patch_head = _StateLookupHead(states, patches, shift=1)
        perfect = model(windows, torch.zeros(3, dtype=torch.long)).temporal
        model.patch_head = _StateLookupHead(states, patches, shift=0)
        copy = model(windows, torch.zeros(3, dtype=torch.long)).temporal
    assert perfect.item() == 0.0
    expected = torch.mean((patches[:, :-1] - patches[:, 1:]) ** 2)  # each state's own patch against the next
    torch.testing.assert_close(copy, expected)
    assert copy.item() > 0.1


def test_the_losses_are_clips_loss_of_chart_and_summary_token_with_the_contrastive_weight():
    from darts_timesclip.backbones import resolve_backbone
    from darts_timesclip.network import ContrastiveAlignment
    from darts_timesclip.network.normalization import instance_normalize
    from darts_timesclip.pretraining import TimesCLIPPretrainer

    spec = resolve_backbone("tiny")
    torch.manual_seed(0)
    model = TimesCLIPPretrainer(
        spec.vision_config, spec.text_config, patch_length=8, patch_stride=4, max_context=24,
        objective="next-patch", contrastive_weight=0.25,
    ).eval()  # fmt: skip
    windows, colours = torch.randn(5, 24).cumsum(dim=1), torch.arange(5)
    with torch.no_grad():
        losses = model(windows, colours)
        x = instance_normalize(windows.unsqueeze(-1))[0]
        _, summary = model.numeric(x)  # the forecaster's numeric view: the summary token of each variate
        image = model.vision(x, colours.unsqueeze(1))
        expected = ContrastiveAlignment()(image, summary)
    torch.testing.assert_close(losses.contrastive, expected)
    torch.testing.assert_close(losses.total, 0.25 * expected + losses.temporal)
    model.patch_head, model.objective = None, "contrastive-only"  # no temporal loss: the total is the contrastive
    with torch.no_grad():
        only = model(windows, colours)
    assert only.temporal is None
    torch.testing.assert_close(only.total, 0.25 * expected)
