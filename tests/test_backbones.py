"""Backbone resolution and loading: presets, local save_pretrained directories, hub ids offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import CLIPConfig, CLIPModel

from darts_timesclip import TimesCLIPModel
from darts_timesclip.backbones import (
    KNOWN_ARCHITECTURES,
    PRESETS,
    BackboneNotAvailableError,
    resolve_backbone,
)
from darts_timesclip.backbones.compat import encode_text_embeddings, quiet_transformers
from tests._helpers import make_series, model_kwargs

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    """A tiny random CLIPModel written with save_pretrained, as a user would have it on disk."""
    preset = PRESETS["tiny"]
    config = CLIPConfig(text_config=preset.text, vision_config=preset.vision, projection_dim=16)
    torch.manual_seed(123)
    with quiet_transformers():
        model = CLIPModel(config)
    path = tmp_path_factory.mktemp("clip") / "tiny-clip"
    model.save_pretrained(path)
    return path, model


def test_presets_resolve_without_weights():
    for name in PRESETS:
        spec = resolve_backbone(name)
        assert spec.kind == "preset" and spec.pretrained is False
        assert spec.image_size == PRESETS[name].vision["image_size"]


def test_known_architecture_with_random_weights_needs_no_network():
    spec = resolve_backbone("openai/clip-vit-base-patch16", pretrained=False)
    assert spec.pretrained is False and spec.image_size == 224 and spec.vision_config["patch_size"] == 16
    assert spec.text_config["hidden_size"] == 512
    assert set(KNOWN_ARCHITECTURES) >= {"openai/clip-vit-base-patch16"}


def test_unknown_preset_and_pretrained_preset_are_rejected():
    with pytest.raises(ValueError, match=r"`backbone='compcat'` is neither a preset"):
        resolve_backbone("compcat")
    with pytest.raises(ValueError, match=r"`backbone='compact'` is a random-weight preset"):
        resolve_backbone("compact", pretrained=True)


def test_uncached_hub_id_offline_says_how_to_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackboneNotAvailableError, match=r"`someone/not-cached-clip`.*save_pretrained.*`backbone=DIR`"):
        resolve_backbone("someone/not-cached-clip")


def test_default_backbone_without_network_answers_at_once(tmp_path):
    # not in offline mode, an empty cache, a hub that refuses connections: transformers alone retries for about
    # half a minute ("Retrying in 8s"); the answer must come at once and say what to do
    script = (
        "import time\n"
        "from darts_timesclip import BackboneNotAvailableError, TimesCLIPModel\n"
        "start = time.perf_counter()\n"
        "try:\n"
        "    TimesCLIPModel(24, 12)\n"
        "except BackboneNotAvailableError as err:\n"
        "    print(f'{time.perf_counter() - start:.2f}')\n"
        "    print(err)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stdout + done.stderr
    assert float(lines[0]) < 5.0
    assert "127.0.0.1:9 is unreachable" in lines[1]
    assert 'backbone="compact"' in lines[1] and "save_pretrained(DIR)" in lines[1]
    assert "Retrying" not in done.stderr


def test_local_directory_loads_pretrained_weights_through_the_user_path(tiny_clip_dir, series):
    path, reference = tiny_clip_dir
    model = TimesCLIPModel(**model_kwargs(backbone=str(path)))
    assert model.config.backbone == str(path) and model.config.pretrained
    model.fit(series, epochs=1)
    network = model.model.network
    # the frozen vision tower keeps the saved weights exactly
    saved_vision = reference.vision_model.state_dict()
    ours = network.vision.clip.state_dict()
    assert saved_vision.keys() == ours.keys()
    assert all(torch.equal(saved_vision[k], ours[k]) for k in saved_vision)


def test_local_directory_with_random_weights(tiny_clip_dir):
    path, reference = tiny_clip_dir
    spec = resolve_backbone(str(path), pretrained=False)
    assert spec.kind == "directory" and not spec.pretrained
    assert spec.text_config["hidden_size"] == reference.config.text_config.hidden_size


def test_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="without a `config.json`"):
        resolve_backbone(str(tmp_path))


def test_embedding_route_reproduces_the_token_route(tiny_clip_dir):
    _, reference = tiny_clip_dir
    text_model = reference.text_model.eval()
    ids = torch.randint(0, 60, (2, 7))
    expected = text_model(input_ids=ids).last_hidden_state
    ours = encode_text_embeddings(text_model, text_model.get_input_embeddings()(ids))
    assert torch.allclose(ours, expected, atol=1e-5)


def test_loaded_network_weights_are_used_for_prediction(tiny_clip_dir):
    path, _ = tiny_clip_dir
    series = make_series(60)
    a = TimesCLIPModel(**model_kwargs(backbone=str(path), random_state=1)).fit(series)
    b = TimesCLIPModel(**model_kwargs(backbone="tiny", random_state=1)).fit(series)
    assert not torch.equal(
        a.model.network.vision.clip.embeddings.patch_embedding.weight,
        b.model.network.vision.clip.embeddings.patch_embedding.weight,
    )
