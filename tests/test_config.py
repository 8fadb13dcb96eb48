"""TimesCLIPConfig: one place that validates, documents and serialises every hyperparameter."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from darts_timesclip import TimesCLIPConfig, TimesCLIPModel
from tests._extras import requires
from tests._helpers import model_kwargs


def tiny_config(**overrides) -> TimesCLIPConfig:
    kwargs = dict(input_chunk_length=24, output_chunk_length=6, backbone="tiny", patch_length=8, patch_stride=4)
    kwargs.update(overrides)
    return TimesCLIPConfig(**kwargs)


def test_config_round_trips_through_a_dictionary_and_json():
    config = tiny_config(n_targets=3, parameter_kinds=("location", "softplus_scale"), use_variate_selection=False)
    values = config.to_dict()
    assert values["config_version"] == 2
    assert TimesCLIPConfig.from_dict(values) == config
    assert TimesCLIPConfig.from_dict(json.loads(json.dumps(values, default=str))).patch_length == 8


def test_config_resolves_the_backbone_once_and_keeps_the_tower_configurations():
    config = tiny_config()
    assert config.pretrained is False  # a preset has random weights
    assert config.vision_config["image_size"] == 32 and config.width == int(config.text_config["hidden_size"])
    rebuilt = config.replace(n_targets=4)  # no second resolution: the tower configurations travel with it
    assert rebuilt.vision_config == config.vision_config and rebuilt.n_targets == 4


def test_random_weight_text_tower_can_be_resized_and_round_trips(series):
    config = tiny_config(text_tower_width=64, text_tower_layers=3)
    text = config.text_config
    assert (text["hidden_size"], text["intermediate_size"], text["num_attention_heads"]) == (64, 256, 2)
    assert text["num_hidden_layers"] == 3 and config.width == 64
    assert tiny_config().text_config["hidden_size"] == 32  # the preset's own width
    assert TimesCLIPConfig.from_dict(config.to_dict()) == config
    model = TimesCLIPModel(**model_kwargs(text_tower_width=64, text_tower_layers=3)).fit(series, verbose=False)
    network = model.model.network
    assert len(network.numeric.clip.encoder.layers) == 3 and network.vision.projection.out_features == 64
    assert network.generator.linear.in_features == (config.n_patches + 1) * 64


def test_resizing_a_pretrained_text_tower_is_refused(tmp_path):
    from transformers import CLIPConfig, CLIPModel

    from darts_timesclip.backbones import PRESETS
    from darts_timesclip.backbones.compat import quiet_transformers

    preset = PRESETS["tiny"]
    with quiet_transformers():
        CLIPModel(CLIPConfig(text_config=preset.text, vision_config=preset.vision)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"`text_tower_width` resizes a random-weight text tower, but .* loads"):
        tiny_config(backbone=str(tmp_path), text_tower_width=64)
    assert (
        tiny_config(backbone=str(tmp_path), pretrained=False, text_tower_layers=1).text_config["num_hidden_layers"] == 1
    )


def test_config_is_frozen_and_accepts_numpy_integers():
    config = tiny_config(input_chunk_length=np.int64(24))
    assert type(config.input_chunk_length) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.patch_length = 4


def test_config_from_another_version_is_refused():
    values = tiny_config().to_dict()
    values["config_version"] = 1
    with pytest.raises(ValueError, match=r"config version 1; this darts-timesclip reads version 2"):
        TimesCLIPConfig.from_dict(values)
    values = tiny_config().to_dict()
    values["colour"] = "red"
    with pytest.raises(ValueError, match=r"Unknown TimesCLIP config keys \['colour'\]"):
        TimesCLIPConfig.from_dict(values)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"input_chunk_length": 1, "patch_length": 1, "patch_stride": 1}, r"`input_chunk_length` must be at least 2"),
        ({"output_chunk_length": 2.5}, r"`output_chunk_length` must be a positive integer, got `2.5`"),
        ({"n_targets": 0}, r"`n_targets` must be a positive integer, got `0`"),
        ({"vision_chunk_size": True}, r"`vision_chunk_size` must be a positive integer, got `True`"),
        ({"alignment_weight": float("nan")}, r"`alignment_weight` must be >= 0, got nan"),
        ({"embedding_cache_mb": float("inf")}, r"`embedding_cache_mb` must be >= 0, got inf"),
        ({"dropout": -0.1}, r"`dropout` must be in \[0, 1\), got -0.1"),
        ({"pretrained": "yes"}, r"`pretrained` must be True, False or None, got `'yes'`"),
        ({"parameter_kinds": ("scale",)}, r"`parameter_kinds` must be a non-empty tuple"),
        ({"vision_config": {"image_size": 32}}, r"`vision_config` and `text_config` must be given together"),
        ({"use_vision": False}, r"`use_alignment=True` needs `use_vision=True`"),
        ({"use_numeric": False}, r"`use_alignment=True` needs `use_numeric=True`"),
        ({"use_numeric": False, "use_vision": False, "use_alignment": False}, r"leave no view to forecast from"),
        ({"alignment": "pairwise"}, r"`alignment` must be one of \('variate', 'sample', 'hybrid'\), got `'pairwise'`"),
        ({"alignment_mix": 1.5}, r"`alignment_mix` must be in \[0, 1\], got 1.5"),
        ({"alignment_weight": "automatic"}, r"`alignment_weight` must be a number >= 0 or 'auto', got `'automatic'`"),
        ({"image_encoding": "gaf"}, r"`image_encoding` must be one of \('line', 'gasf', 'gadf', 'periodic'\)"),
        ({"period": 0}, r"`period` must be a positive integer, got `0`"),
        ({"text_tower_width": 0}, r"`text_tower_width` must be a positive integer, got `0`"),
        ({"text_tower_layers": 2.0}, r"`text_tower_layers` must be a positive integer, got `2.0`"),
    ],
)
def test_invalid_values_name_the_parameter_and_the_value(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_errors_use_the_callers_names():
    names = {"input_chunk_length": "context_length", "output_chunk_length": "prediction_length"}
    with pytest.raises(ValueError, match=r"`patch_length=30` is longer than `context_length=24`"):
        tiny_config(patch_length=30, argument_names=names)
    assert tiny_config(argument_names=names) == tiny_config()  # the names are not part of the value


def test_public_parameters_are_documented_once_for_both_wrappers():
    public = TimesCLIPConfig.public_parameters()
    assert {"backbone", "pretrained", "patch_length", "alignment_weight", "temperature"} <= set(public)
    assert "n_targets" not in public and "vision_config" not in public  # set by the wrappers, not by users
    docs = [TimesCLIPModel.__init__.__doc__]
    requires("pytorch_forecasting", "pytorch-forecasting")
    from darts_timesclip.adapters.pytorch_forecasting import TimesCLIP

    docs.append(TimesCLIP.__init__.__doc__)
    for doc in docs:
        assert "{timesclip_parameters}" not in doc
        for name in public:
            assert f"\n        {name}\n            " in doc, name
    entry = "        temperature\n            Initial temperature of the contrastive loss"
    assert all(entry in doc for doc in docs)
    assert '"openai/clip-vit-base-patch16"' in docs[0]  # a hyphenated value is never broken across lines


def test_the_documentation_sites_argument_table_is_generated_from_the_config():
    table = TimesCLIPConfig.parameters_markdown().splitlines()
    assert table[:2] == ["| argument | type | description |", "|---|---|---|"]
    rows = {line.split(" | ")[0].strip("| `"): line for line in table[2:]}
    assert list(rows) == list(TimesCLIPConfig.public_parameters())
    assert rows["temperature"] == (
        "| `temperature` | float | Initial temperature of the contrastive loss (learnt; CLIP's start). Default: "
        "``0.07``. |"
    )
    assert " | bool or None | " in rows["pretrained"]  # no bare pipe inside a cell
    assert all(line.count(" | ") == 2 for line in table[2:])


def test_the_darts_model_builds_its_config_from_its_arguments():
    model = TimesCLIPModel(**model_kwargs(temperature=0.05, use_variate_selection=False))
    assert model.config.temperature == 0.05 and model.config.use_variate_selection is False
    assert model.config.input_chunk_length == 24 and model.config.output_chunk_length == 6
    assert "temperature" in model.model_params  # Darts re-creates the model from its parameters


def test_a_model_saved_before_the_config_is_refused_with_a_clear_error():
    model = TimesCLIPModel(**model_kwargs())
    state = model.__getstate__()
    del state["config"]  # what darts-timesclip 0.1 pickled
    with pytest.raises(ValueError, match=r"saved by darts-timesclip 0.1.*retrain the model"):
        TimesCLIPModel.__new__(TimesCLIPModel).__setstate__(state)


def test_periodic_encoding_needs_a_period_to_build_the_network():
    from darts_timesclip.network import TimesCLIPNetwork

    with pytest.raises(ValueError, match=r"`image_encoding='periodic'` needs a `period`"):
        TimesCLIPNetwork(tiny_config(image_encoding="periodic"))


def test_darts_model_derives_the_period_or_says_it_cannot():
    from tests._helpers import make_series

    model = TimesCLIPModel(**model_kwargs(image_encoding="periodic")).fit(make_series(freq="h"))
    assert model.model.config.period == 24
    from darts import TimeSeries

    integer_indexed = TimeSeries.from_values(make_series().values())
    with pytest.raises(ValueError, match=r"frequency `1` has no natural one.*pass `period=`"):
        TimesCLIPModel(**model_kwargs(image_encoding="periodic")).fit(integer_indexed)


def test_auto_weight_is_logged_every_epoch():
    from tests._helpers import make_series

    model = TimesCLIPModel(**model_kwargs(alignment_weight="auto", n_epochs=2)).fit(make_series())
    metrics = model.trainer.callback_metrics
    assert 0.01 <= float(metrics["train_alignment_weight"]) <= 100
    assert (model.model.network.loss_weighting.log_variances != 0).all()  # the weights are learnt
