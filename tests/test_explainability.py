"""TimesCLIPExplainer: attention over every variate's tokens, the images seen, the plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from darts_timesclip import TimesCLIPExplainer, TimesCLIPModel
from tests._helpers import make_series, model_kwargs


@pytest.fixture(scope="module")
def fitted_with_covariates():
    series, covariates = make_series(90, n_components=2), make_series(90, n_components=1, seed=4)
    covariates = covariates.with_columns_renamed("c0", "temp")
    model = TimesCLIPModel(**model_kwargs()).fit(series, past_covariates=covariates)
    return model, series, covariates


def test_attention_covers_every_variates_numbers_and_image(fitted_with_covariates):
    model, series, covariates = fitted_with_covariates
    result = TimesCLIPExplainer(model, series, covariates).explain()
    frame = result.get_attention()
    assert list(frame.index) == ["c0", "c1"]  # the forecast targets
    assert list(frame.columns) == [
        "c0 (numbers)",
        "c1 (numbers)",
        "temp (numbers)",
        "c0 (image)",
        "c1 (image)",
        "temp (image)",
    ]
    assert np.allclose(frame.sum(axis=1), 1.0, atol=1e-5) and (frame.to_numpy() >= 0).all()
    assert result.get_explanation("c1").equals(frame.loc["c1"])
    assert set(result.images) == {"c0", "c1", "temp"} and result.images["c0"].shape == (3, 32, 32)


def test_the_images_shown_are_those_the_vision_tower_saw(fitted_with_covariates):
    model, series, covariates = fitted_with_covariates
    vision = model.model.network.vision
    seen = []
    hook = vision.clip.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["pixel_values"]), with_kwargs=True)
    vision.cache.clear()  # the tower encodes (and the hook sees) every chart of the window
    try:
        result = TimesCLIPExplainer(model, series, covariates).explain()
    finally:
        hook.remove()
    pixels = (torch.cat(seen) * vision.pixel_std + vision.pixel_mean).numpy()  # back to [0, 1]
    for v, name in enumerate(["c0", "c1", "temp"]):
        np.testing.assert_allclose(result.images[name], pixels[v], atol=1e-6)
    window = np.concatenate([series.values()[-24:], covariates.values()[-24:]], axis=1)
    expected = vision.images(torch.as_tensor(window[None], dtype=torch.float32))[0, 2].numpy()
    np.testing.assert_array_equal(result.images["temp"], expected)


def test_explicit_attention_path_gives_the_same_forecast(fitted_with_covariates):
    model, _, _ = fitted_with_covariates
    network = model.model.network.eval()
    x = torch.randn(2, 24, 3)
    with torch.no_grad():
        plain, explained = network(x), network(x, return_attention=True)
    assert torch.allclose(plain.prediction, explained.prediction, atol=1e-5)
    assert explained.attention.shape == (2, 2, 3, 6)  # [B, heads, V, 2V]


def test_token_labels_follow_the_memory_the_network_attends_over(fitted_with_covariates):
    """Each label names the token at its position in the memory the variate-selection block was given."""
    model, series, covariates = fitted_with_covariates
    network = model.model.network.eval()
    memories = []
    hook = network.variate_selection.register_forward_pre_hook(lambda m, args: memories.append(args[1]))
    try:
        frame = TimesCLIPExplainer(model, series, covariates).explain().get_attention()
    finally:
        hook.remove()
    window = np.concatenate([series.values()[-24:], covariates.values()[-24:]], axis=1)
    with torch.no_grad():
        encoding = network.encode(torch.as_tensor(window[None], dtype=torch.float32))
    views = {"numbers": encoding.text[0], "image": encoding.image[0]}
    variates = ["c0", "c1", "temp"]
    (memory,) = memories
    assert memory.shape[1] == len(frame.columns) == 6
    for m, label in enumerate(frame.columns):
        name, view = label[:-1].split(" (")
        torch.testing.assert_close(memory[0, m], views[view][variates.index(name)])
    assert not torch.allclose(views["numbers"], views["image"], atol=1e-3)  # the two views are told apart


def test_the_explanation_is_of_the_last_window(fitted_with_covariates):
    """A series whose last window differs from its first: explained as its last window alone is."""
    model, series, covariates = fitted_with_covariates
    values = series.values().copy()
    values[-24:] = np.random.default_rng(9).standard_normal((24, 2)) * 3.0  # unlike the rest of the series
    series = series.with_values(values)
    explainer = TimesCLIPExplainer(model)
    result = explainer.explain(series, covariates)
    last = explainer.explain(series[-24:], covariates)
    first = explainer.explain(series[:24], covariates)
    window = np.concatenate([values[-24:], covariates.values()[-24:]], axis=1)
    network = model.model.network.eval()
    with torch.no_grad():
        x = torch.as_tensor(window[None], dtype=torch.float32)
        attention = network(x, return_attention=True).attention[0].mean(dim=0)[:2].numpy()  # [targets, tokens]
        images = network.vision.images(x)[0].numpy()
    np.testing.assert_allclose(result.get_attention().to_numpy(), attention, rtol=0, atol=1e-6)
    np.testing.assert_allclose(result.get_attention().to_numpy(), last.get_attention().to_numpy(), rtol=0, atol=1e-6)
    for v, name in enumerate(["c0", "c1", "temp"]):
        np.testing.assert_array_equal(result.images[name], images[v])
    gap = np.abs(first.get_attention().to_numpy() - result.get_attention().to_numpy()).max()
    assert gap > 1e-3  # the first window is explained otherwise


def test_several_series_and_target_selection():
    series = [make_series(80, seed=s) for s in range(2)]
    model = TimesCLIPModel(**model_kwargs()).fit(series)
    result = TimesCLIPExplainer(model).explain(series, target_components=["c1"])
    assert isinstance(result.get_attention(), list) and len(result.get_attention()) == 2
    assert list(result.get_attention()[1].index) == ["c1"]
    with pytest.raises(ValueError, match=r"Nothing to explain: pass `foreground_series`"):
        TimesCLIPExplainer(model).explain()
    with pytest.raises(ValueError, match=r"`target_components` \['x'\] are not among"):
        TimesCLIPExplainer(model).explain(series[0], target_components=["x"])


def test_explainer_rejects_what_it_cannot_explain(series):
    with pytest.raises(ValueError, match=r"must be fitted before it can be explained"):
        TimesCLIPExplainer(TimesCLIPModel(**model_kwargs()))
    no_selection = TimesCLIPModel(**model_kwargs(use_variate_selection=False)).fit(series)
    with pytest.raises(ValueError, match=r"use_variate_selection=False"):
        TimesCLIPExplainer(no_selection)
    model = TimesCLIPModel(**model_kwargs()).fit(series)
    with pytest.raises(ValueError, match=r"`foreground_series` has 3 components, but the model was trained on 2"):
        TimesCLIPExplainer(model).explain(make_series(n_components=3))
    with pytest.raises(ValueError, match=r"`foreground_series` has 20 time steps; the input window needs at least 24"):
        TimesCLIPExplainer(model).explain(series[-20:])


def test_foreground_covariates_of_another_width_are_refused(fitted_with_covariates):
    model, series, covariates = fitted_with_covariates
    two = covariates.stack(covariates.with_columns_renamed("temp", "wind"))
    with pytest.raises(
        ValueError, match=r"`foreground_past_covariates` has 2 components, but the model was trained on 1"
    ):
        TimesCLIPExplainer(model, series, covariates).explain(series, two)


def test_plots_name_the_components(fitted_with_covariates, tmp_path):
    model, series, covariates = fitted_with_covariates
    explainer = TimesCLIPExplainer(model, series, covariates)
    ax = TimesCLIPExplainer.plot_variate_attention(explainer.explain())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c0", "c1"]
    figure = explainer.plot_views(series)
    assert len(figure.axes) == 2 * 4  # variates x encodings
    assert [a.get_title() for a in figure.axes[:1]] == ["line"]
    figure.savefig(tmp_path / "views.png")
    with pytest.raises(ValueError, match=r"`encodings` \['jpeg'\] are not among"):
        explainer.plot_views(series, encodings=["jpeg"])


def test_non_finite_foreground_values_are_refused_naming_the_argument(fitted_with_covariates):
    model, series, covariates = fitted_with_covariates
    explainer = TimesCLIPExplainer(model, series, covariates)
    values = series.values().copy()
    values[-3, 1] = np.nan
    with pytest.raises(ValueError, match=r"`foreground_series` has a non-finite value \(nan\) in component `c1`"):
        explainer.explain(series.with_values(values), covariates)
    values = covariates.values().copy()
    values[-2, 0] = np.inf
    with pytest.raises(ValueError, match=r"`foreground_past_covariates` has a non-finite value \(inf\) in component"):
        explainer.explain(series, covariates.with_values(values))


def test_a_network_left_in_training_mode_is_explained_as_it_forecasts(fitted_with_covariates):
    model, series, covariates = fitted_with_covariates
    network = model.model.network
    network.eval()
    reference = TimesCLIPExplainer(model, series, covariates).explain().get_attention()
    # a backbone with attention dropout: in training mode every token, hence the attention, would be perturbed
    clip_attention = [m for m in network.modules() if type(m).__name__ == "CLIPAttention"]
    assert clip_attention
    network.train()
    try:
        for module in clip_attention:
            module.dropout = 0.5
        torch.manual_seed(0)
        explained = TimesCLIPExplainer(model, series, covariates).explain().get_attention()
        assert network.training, "the explainer must put back the mode it found"
    finally:
        for module in clip_attention:
            module.dropout = 0.0
        network.eval()
    np.testing.assert_allclose(explained.to_numpy(), reference.to_numpy(), rtol=1e-6)
