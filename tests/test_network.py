"""The pure-torch network: rendering, normalisation, patching, towers, heads, cache."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from darts_timesclip.network import (
    ContrastiveAlignment,
    EmbeddingCache,
    TimesCLIPConfig,
    TimesCLIPNetwork,
    VariateSelection,
    denormalize,
    instance_normalize,
    make_patches,
    minmax_scale,
    num_patches,
    render_line_charts,
    render_line_charts_matplotlib,
    variate_colours,
    window_images,
)
from darts_timesclip.network.heads import UncertaintyWeighting
from darts_timesclip.network.image_encodings import (
    encode_images,
    gramian_angular_field,
    period_from_freq,
    periodic_grid,
)


def tiny_network(**overrides) -> TimesCLIPNetwork:
    kwargs = dict(
        input_chunk_length=32, output_chunk_length=8, n_targets=2, backbone="tiny", patch_length=8, patch_stride=4
    )
    kwargs.update(overrides)
    torch.manual_seed(0)
    return TimesCLIPNetwork(TimesCLIPConfig(**kwargs)).eval()


# ---------------------------------------------------------------------------------------------- rendering
@pytest.mark.parametrize("image_size", [32, 64, 224])
def test_torch_renderer_matches_matplotlib(image_size):
    torch.manual_seed(1)
    rows = minmax_scale(torch.cumsum(torch.randn(6, 96, dtype=torch.float64), dim=-1))
    colours = variate_colours(6, dtype=torch.float64)
    ours = render_line_charts(rows, colours, image_size).numpy()
    reference = render_line_charts_matplotlib(rows.numpy(), colours.numpy(), image_size)
    assert ours.shape == reference.shape == (6, 3, image_size, image_size)
    line_ours = ours.min(axis=1) < 0.75
    line_ref = reference.min(axis=1) < 0.75
    iou = (line_ours & line_ref).sum(axis=(1, 2)) / (line_ours | line_ref).sum(axis=(1, 2))
    assert iou.min() >= 0.8, iou


def test_renderer_is_deterministic_coloured_and_white():
    rows = minmax_scale(torch.randn(3, 40))
    colours = variate_colours(3)
    a = render_line_charts(rows, colours, 48)
    b = render_line_charts(rows.clone(), colours, 48)
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    # the corner is background; the darkest pixel of each chart has its variate's hue
    assert torch.allclose(a[:, :, 0, 0], torch.ones(3, 3))
    darkest = a.flatten(2).min(dim=2).values
    assert torch.allclose(darkest, colours, atol=0.05)


def test_renderer_draws_constant_series_as_flat_mid_line():
    rows = minmax_scale(torch.full((1, 20), 3.0))
    image = render_line_charts(rows, variate_colours(1), 32)[0]
    ink_rows = (image.min(dim=0).values < 0.9).any(dim=1).nonzero().flatten()
    assert 12 <= ink_rows.min() and ink_rows.max() <= 19


def test_renderer_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"shape \[N, L\] with L >= 2"):
        render_line_charts(torch.zeros(2, 1), variate_colours(2), 32)


# ----------------------------------------------------------------------------------- normalisation, patches
def test_instance_norm_is_reversible_and_robust():
    x = torch.randn(4, 32, 3, dtype=torch.float64) * torch.tensor([1.0, 1e12, 1e-9], dtype=torch.float64)
    x[1, :, 0] = 5.0  # constant variate
    z, stats = instance_normalize(x)
    assert torch.isfinite(z).all()
    assert torch.allclose(z[0].mean(dim=0), torch.zeros(3, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(z[0].std(dim=0, unbiased=False), torch.ones(3, dtype=torch.float64))
    back = denormalize(z.unsqueeze(-1), stats, ("location",)).squeeze(-1)
    assert torch.allclose(back, x, rtol=1e-9)


def test_instance_norm_does_not_overflow_float32():
    x = torch.randn(2, 16, 1) * 1e30
    z, stats = instance_normalize(x)
    assert torch.isfinite(z).all() and torch.isfinite(stats.std).all()


def test_denormalize_softplus_scale_multiplies_the_scale():
    raw = torch.randn(2, 5, 1, 2)
    stats = instance_normalize(torch.randn(2, 10, 1) * 7.0)[1]
    out = denormalize(raw, stats, ("location", "softplus_scale"))
    expected = torch.nn.functional.softplus(raw[..., 1]) * stats.std[:, :, :1]
    assert torch.allclose(torch.nn.functional.softplus(out[..., 1]), expected, rtol=1e-4)


def test_patching_counts_and_end_padding():
    x = torch.arange(96.0).view(1, 96)
    patches = make_patches(x, 16, 8)
    assert patches.shape == (1, num_patches(96, 16, 8), 16) == (1, 12, 16)
    assert torch.equal(patches[0, 0], torch.arange(16.0))
    assert torch.equal(patches[0, -1, -8:], torch.full((8,), 95.0))  # last stride repeats the last value


# ------------------------------------------------------------------------------------------------ network
@pytest.mark.parametrize(
    "switches",
    [
        {},
        {"use_alignment": False},
        {"use_variate_selection": False},
        {"use_vision": False, "use_alignment": False},
    ],
)
def test_network_shapes_and_ablations(switches):
    net = tiny_network(parameter_kinds=("location",) * 3, **switches)
    out = net(torch.randn(5, 32, 4), return_alignment=True)
    assert out.prediction.shape == (5, 8, 2, 3)
    assert out.text_embeddings.shape == (5, 4, 32)
    assert (out.alignment_loss is None) == (not switches.get("use_alignment", True))
    assert (out.image_embeddings is None) == (not switches.get("use_vision", True))
    assert (net.vision is None) == (not switches.get("use_vision", True))


def test_alignment_loss_is_computed_only_when_asked():
    net = tiny_network()
    x = torch.randn(4, 32, 2)
    assert net(x).alignment_loss is None
    asked = net(x, return_alignment=True)
    assert asked.alignment_loss.ndim == 0 and asked.alignment_loss > 0
    assert torch.equal(asked.prediction, net(x).prediction)  # asking changes nothing else


def test_network_takes_only_a_config():
    with pytest.raises(TypeError, match=r"`config` must be a TimesCLIPConfig, got dict"):
        TimesCLIPNetwork({"input_chunk_length": 32})


def test_windows_of_the_wrong_shape_are_rejected():
    net = tiny_network()
    with pytest.raises(ValueError, match=r"Expected windows \[B, 32, V >= 2\], got \[4, 30, 2\]"):
        net(torch.randn(4, 30, 2))


def test_summary_token_sees_every_patch_through_the_causal_mask():
    net = tiny_network(use_vision=False, use_alignment=False)
    x = torch.randn(1, 32, 1)
    _, summary = net.numeric(x)
    x2 = x.clone()
    x2[0, :4, 0] += 1.0  # only the first patch changes
    _, summary2 = net.numeric(x2)
    assert not torch.allclose(summary, summary2)


def test_variate_count_is_not_limited_by_text_positions():
    net = tiny_network(n_targets=100)
    out = net(torch.randn(2, 32, 100), return_alignment=True)
    assert out.prediction.shape == (2, 8, 100, 1)


def test_covariates_only_feed_selection():
    net = tiny_network(n_targets=1)
    x = torch.randn(3, 32, 2)
    y1 = net(x).prediction
    x[:, :, 1] = torch.randn(3, 32)
    y2 = net(x).prediction
    assert y1.shape == (3, 8, 1, 1)
    assert not torch.allclose(y1, y2)  # the covariate reaches the target through variate selection


def test_forecast_is_equivariant_to_affine_input_changes():
    net = tiny_network()
    x = torch.randn(2, 32, 2, dtype=torch.float64)
    net = net.double()
    y = net(x).prediction
    y_scaled = net(3.0 * x + 10.0).prediction
    assert torch.allclose(y_scaled, 3.0 * y + 10.0, atol=1e-6)


def test_alignment_loss_rewards_aligned_views():
    align = ContrastiveAlignment()
    assert torch.isclose(align.logit_scale.exp(), torch.tensor(1 / 0.07))
    image = torch.randn(8, 3, 16)
    aligned = align(image, image.clone())
    shuffled = align(image, image[torch.randperm(8)])
    assert aligned < shuffled
    assert align(image[:1], torch.randn(1, 3, 16)) == 0  # one window: nothing to contrast


def test_variate_selection_mixes_variates():
    block = VariateSelection(16, 2, dropout=0.0).eval()
    query = torch.randn(2, 3, 16)
    memory = torch.randn(2, 6, 16)
    out = block(query, memory)
    memory2 = memory.clone()
    memory2[:, 5] += 1
    assert out.shape == (2, 3, 16)
    assert not torch.allclose(out, block(query, memory2))


def test_network_gradients_reach_trainable_parts_only():
    net = tiny_network().train()
    out = net(torch.randn(4, 32, 2), return_alignment=True)
    (out.prediction.sum() + out.alignment_loss).backward()
    assert all(p.grad is None for p in net.vision.clip.parameters())
    assert not any(p.requires_grad for p in net.vision.clip.parameters())  # frozen: out of every optimizer
    assert net.numeric.clip.get_input_embeddings().weight.grad is None
    # the text tower's token embedding is never used (patches are the tokens): frozen, out of the optimizer
    embedding = net.numeric.clip.get_input_embeddings().weight
    assert not embedding.requires_grad and all(p is not embedding for p in net.text_tower_parameters())
    assert net.numeric.tokenizer.weight.grad is not None
    assert net.vision.projection.weight.grad is not None
    assert any(p.grad is not None for p in net.text_tower_parameters())


# ------------------------------------------------------------------------------------------ chart pipeline
def captured_pixels(vision) -> tuple[list[torch.Tensor], object]:
    """Record the pixel values the CLIP vision model of ``vision`` receives (a forward pre-hook)."""
    seen: list[torch.Tensor] = []
    hook = vision.clip.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["pixel_values"]), with_kwargs=True)
    return seen, hook


def test_the_chart_pipeline_draws_what_the_vision_tower_sees():
    net = tiny_network()
    x = torch.randn(3, 32, 2).cumsum(dim=1) * torch.tensor([1.0, 100.0]) + torch.tensor([5.0, -300.0])
    seen, hook = captured_pixels(net.vision)
    with torch.no_grad():
        net.encode(x)
    hook.remove()
    images = net.vision.images(x)  # [B, V, 3, S, S] in [0, 1]
    assert images.shape == (3, 2, 3, 32, 32) and 0 <= images.min() and images.max() <= 1
    pixels = (images.flatten(0, 1) - net.vision.pixel_mean) / net.vision.pixel_std
    assert torch.equal(torch.cat(seen), pixels)  # the same bits, sample-major, variate-minor
    # by hand: each variate of each window instance-normalised, min-max scaled, drawn in the palette's colour v
    normalised = instance_normalize(x)[0]
    for b, v in np.ndindex(3, 2):
        by_hand = render_line_charts(minmax_scale(normalised[b, :, v][None]), variate_colours(2)[v : v + 1], 32)
        assert torch.equal(images[b, v], by_hand[0]), (b, v)
    # min-max scaling makes the charts blind to each variate's level and scale
    assert torch.allclose(window_images(3 * x - 7, 32), images, atol=1e-5)


def test_explicit_colours_and_bad_colour_shapes():
    x = torch.randn(2, 16, 3)
    default = window_images(x, 24)
    recoloured = window_images(x, 24, colour_index=torch.tensor([[2, 0, 1], [0, 1, 2]]))
    assert torch.equal(recoloured[1], default[1])
    rows = minmax_scale(instance_normalize(x)[0][0].T)  # window 0's variates
    assert torch.equal(recoloured[0], render_line_charts(rows, variate_colours(3)[[2, 0, 1]], 24))
    assert not torch.equal(recoloured[0], default[0])
    with pytest.raises(ValueError, match=r"`colour_index` must have shape \[B, V\] = \[2, 3\], got \[3\]"):
        window_images(x, 24, colour_index=torch.arange(3))


# -------------------------------------------------------------------------------------------------- cache
def test_embedding_cache_serves_identical_embeddings():
    net = tiny_network()
    x = torch.randn(3, 32, 2)
    first = net.vision(x)
    assert len(net.vision.cache) == 6 and net.vision.cache.misses == 6
    second = net.vision(x)
    assert net.vision.cache.hits == 6
    assert torch.equal(first, second)
    net.vision.cache.clear()
    assert torch.allclose(net.vision(x), first)


def test_cached_and_fresh_embeddings_are_the_same_bits_with_duplicate_charts():
    # duplicate windows in one batch (e.g. copies of a series) are encoded once; a later call serves that result
    net = tiny_network().double()
    x = torch.randn(6, 32, 2, dtype=torch.float64)
    x = torch.cat([x, x[:3], x[1:2]])
    first = net.vision(x)
    assert len(net.vision.cache) == 12
    assert torch.equal(first[:3], first[6:9]) and torch.equal(first[1], first[9])
    assert torch.equal(net.vision(x), first)
    # a later batch of other composition gets the very same pooled embeddings (the projection, a matmul over the
    # batch, may round differently for another batch size, with or without a cache)
    rows = minmax_scale(x.permute(0, 2, 1).reshape(-1, 32))
    colours = torch.arange(2).repeat(10)
    pooled = net.vision.pooled(rows, colours)
    assert torch.equal(net.vision.pooled(rows[4:15], colours[4:15]), pooled[4:15])


def test_embedding_cache_follows_the_module_across_dtype_and_device_moves():
    net = tiny_network()
    x = torch.randn(3, 32, 2)
    net.vision(x)
    assert net.vision.cache._store.dtype == torch.float32
    net.to("cpu")  # same device and dtype: entries kept
    assert len(net.vision.cache) == 6
    net.double()  # a float32 embedding is not what the float64 tower computes: entries dropped
    assert len(net.vision.cache) == 0
    fresh = net.vision(x.double())
    assert net.vision.cache._store.dtype == torch.float64
    assert torch.equal(net.vision(x.double()), fresh)
    net.to("meta")  # another device (the only other one a CPU machine has): the entries move with the tower
    assert net.vision.cache._store.device.type == "meta" and len(net.vision.cache) == 6


def test_a_frozen_vision_tower_in_training_mode_keeps_clip_in_inference_mode():
    vision = tiny_network().vision
    vision.eval()
    vision.train()
    assert vision.training and vision.projection.training and not vision.clip.training


def test_embedding_cache_respects_its_memory_bound():
    entry = 10 + 8 * 4 + EmbeddingCache.ENTRY_OVERHEAD
    cache = EmbeddingCache(max_bytes=3 * entry)
    keys = [bytes([i]) * 10 for i in range(10)]
    cache.insert(keys[:2], torch.zeros(2, 8))
    cache.lookup([keys[0]])  # keys[0] becomes the most recently used
    cache.insert(keys[2:4], torch.arange(16.0).view(2, 8))
    assert cache.capacity == 3 and len(cache) == 3
    rows = cache.lookup([keys[0], keys[1], keys[3]])
    assert rows[1] == -1 and rows[0] >= 0 and rows[2] >= 0  # keys[1] was the least recently used
    assert torch.equal(cache.gather(torch.tensor([rows[2]])), torch.arange(8.0, 16.0).view(1, 8))
    with pytest.raises(ValueError, match="max_bytes"):
        EmbeddingCache(-1)


def test_embedding_cache_grows_its_store_and_keeps_entries():
    cache = EmbeddingCache(max_bytes=1 << 24)
    keys = [i.to_bytes(4, "little") for i in range(3000)]
    values = torch.randn(3000, 4)
    for start in range(0, 3000, 500):
        cache.insert(keys[start : start + 500], values[start : start + 500])
    rows = torch.tensor(cache.lookup(keys))
    assert (rows >= 0).all() and torch.equal(cache.gather(rows), values)


def test_embedding_cache_filled_under_inference_mode_accepts_later_training_inserts():
    # Lightning predicts under `torch.inference_mode()`; a store created there used to be an inference tensor,
    # and the next training step's insert failed with "Inplace update to inference tensor outside InferenceMode"
    cache = EmbeddingCache(max_bytes=1 << 20)
    first, second = torch.randn(3, 4), torch.randn(2, 4)
    with torch.inference_mode():
        cache.insert([b"a", b"b", b"c"], first * 1)
    cache.insert([b"d", b"e"], second)
    rows = torch.tensor(cache.lookup([b"a", b"b", b"c", b"d", b"e"]))
    assert torch.equal(cache.gather(rows), torch.cat([first, second]))
    with torch.inference_mode():
        cache.insert([i.to_bytes(4, "little") for i in range(2000)], torch.randn(2000, 4))  # grows the store
    cache.insert([b"f"], torch.ones(1, 4))
    assert torch.equal(cache.gather(torch.tensor(cache.lookup([b"f"]))), torch.ones(1, 4))


def test_loading_new_vision_weights_clears_the_cache():
    net = tiny_network()
    net.vision(torch.randn(2, 32, 2))
    assert len(net.vision.cache) > 0
    net.load_state_dict(net.state_dict())
    assert len(net.vision.cache) == 0


def test_unfrozen_vision_tower_trains_and_skips_the_cache():
    net = tiny_network(freeze_vision=False).train()
    out = net(torch.randn(4, 32, 2))
    out.prediction.sum().backward()
    assert not net.vision.cache.enabled
    assert any(p.grad is not None for p in net.vision.clip.parameters())


def test_rows_of_many_variates_are_chunked():
    """10 charts in chunks of 3, 3, 3 and 1: the same forecast and image tokens as in one chunk, same weights."""
    chunked, whole = tiny_network(vision_chunk_size=3, n_targets=1), tiny_network(n_targets=1)
    assert chunked.vision.chunk_size == 3 and whole.vision.chunk_size >= 10
    x = torch.randn(2, 32, 5)
    with torch.no_grad():
        got, expected = chunked(x), whole(x)
    torch.testing.assert_close(got.image_embeddings, expected.image_embeddings, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.prediction, expected.prediction, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------ variants of the views
def _gramian_reference(scaled: np.ndarray, method: str) -> np.ndarray:
    """Wang and Oates' fields from their definition, as pyts computes them: each row rescaled to [-1, 1] is the
    cosine of an angle phi; GASF[i, j] = cos(phi_i + phi_j), GADF[i, j] = sin(phi_i - phi_j)."""
    phi = np.arccos(np.clip(2 * scaled - 1, -1, 1))
    left, right = phi[:, :, None], phi[:, None, :]
    return np.cos(left + right) if method == "summation" else np.sin(left - right)


@pytest.mark.parametrize("method", ["summation", "difference"])
def test_gramian_angular_fields_match_their_definition(method):
    x = np.random.default_rng(0).normal(size=(4, 40)).cumsum(axis=1)
    scaled = (x - x.min(axis=1, keepdims=True)) / np.ptp(x, axis=1, keepdims=True)
    ours = gramian_angular_field(torch.tensor(scaled), method).numpy()
    assert np.abs(ours - _gramian_reference(scaled, method)).max() < 1e-6


def test_periodic_grid_folds_the_window_by_its_period():
    rows = torch.arange(10.0).view(1, 10)
    grid = periodic_grid(rows, 4)  # 3 segments, the oldest padded at its start with the first value
    assert grid.shape == (1, 4, 3)
    assert grid[0, :, 0].tolist() == [0.0, 0.0, 0.0, 1.0] and grid[0, :, 2].tolist() == [6.0, 7.0, 8.0, 9.0]


@pytest.mark.parametrize("encoding", ["gasf", "gadf", "periodic"])
def test_image_encodings_are_batched_grey_images_in_range(encoding):
    rows = minmax_scale(torch.randn(5, 48).cumsum(dim=-1))
    images = encode_images(rows, variate_colours(5)[torch.arange(5)], 32, encoding, period=12)
    assert images.shape == (5, 3, 32, 32) and images.min() >= 0 and images.max() <= 1
    assert torch.equal(images[:, 0], images[:, 2])  # grey
    assert not torch.allclose(images[0], images[1])


@pytest.mark.parametrize(
    ("freq", "period"), [("h", 24), ("15min", 96), ("D", 7), ("B", 5), ("W-SUN", 52), ("MS", 12), ("YS", None)]
)
def test_period_from_frequency(freq, period):
    assert period_from_freq(freq) == period


def test_vision_only_network_forecasts_from_image_tokens():
    net = tiny_network(use_numeric=False, use_alignment=False)
    out = net(torch.randn(3, 32, 2))
    assert net.numeric is None and out.text_embeddings is None
    assert out.prediction.shape == (3, 8, 2, 1)
    assert net.generator.linear.in_features == net.config.width  # one token per variate
    assert net.text_tower_parameters() == []


@pytest.mark.parametrize("level", ["variate", "sample", "hybrid"])
def test_every_alignment_level_rewards_aligned_views(level):
    align = ContrastiveAlignment(level=level, mix=0.3)
    image = torch.randn(8, 3, 16)
    assert align(image, image.clone()) < align(image, image[torch.randperm(8)])


def test_hybrid_alignment_mixes_variate_and_global_losses():
    image, text = torch.randn(6, 3, 16), torch.randn(6, 3, 16)
    variate = ContrastiveAlignment(level="variate")(image, text)
    hybrid_all_variate = ContrastiveAlignment(level="hybrid", mix=1.0)(image, text)
    assert torch.isclose(variate, hybrid_all_variate)


def test_auto_weighting_keeps_the_alignment_weight_above_its_floor():
    weighting = UncertaintyWeighting(min_relative_weight=0.01)
    with torch.no_grad():
        weighting.log_variances.copy_(torch.tensor([0.0, 50.0]))  # as if training tried to switch alignment off
    total, relative = weighting(torch.tensor(1.0), torch.tensor(2.0))
    assert relative == pytest.approx(0.01)
    forecast, alignment = torch.tensor(1.0, requires_grad=True), torch.tensor(2.0, requires_grad=True)
    UncertaintyWeighting()(forecast, alignment)[0].backward()
    assert forecast.grad == pytest.approx(1.0) and alignment.grad == pytest.approx(1.0)  # exp(-0) at the start


def _reference_info_nce(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """CLIP's symmetric loss of ``B`` pairs ``a, b [B, D]``, written out pair by pair."""
    a, b = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    n = a.shape[0]
    logits = [[scale * float(a[i] @ b[j]) for j in range(n)] for i in range(n)]
    rows = [-logits[i][i] + math.log(sum(math.exp(x) for x in logits[i])) for i in range(n)]
    cols = [-logits[j][j] + math.log(sum(math.exp(logits[i][j]) for i in range(n))) for j in range(n)]
    return torch.tensor((sum(rows) / n + sum(cols) / n) / 2, dtype=torch.float64)


@pytest.mark.parametrize(("temperature", "scale"), [(0.5, 2.0), (0.001, 100.0)])  # CLIP's bound: at most 100
def test_alignment_losses_equal_clips_loss_written_out(temperature, scale):
    torch.manual_seed(0)
    image, text = torch.randn(5, 3, 4, dtype=torch.float64), torch.randn(5, 3, 4, dtype=torch.float64)
    unit = [view / view.norm(dim=-1, keepdim=True) for view in (image, text)]
    variate = sum(_reference_info_nce(image[:, v], text[:, v], scale) for v in range(3)) / 3
    sample = _reference_info_nce(unit[0].mean(dim=1), unit[1].mean(dim=1), scale)
    joined = _reference_info_nce(unit[0].flatten(1), unit[1].flatten(1), scale)
    expected = {"variate": variate, "sample": sample, "hybrid": 0.3 * variate + 0.7 * joined}
    for level, value in expected.items():
        loss = ContrastiveAlignment(temperature=temperature, level=level, mix=0.3).double()(image, text)
        assert float(loss) == pytest.approx(float(value), rel=1e-9), level


def test_defaults_are_the_documented_ones():
    assert ContrastiveAlignment().mix == 0.5 and ContrastiveAlignment().level == "variate"
    assert UncertaintyWeighting().max_gap == pytest.approx(math.log(100.0))  # relative weight at least 0.01
    from darts_timesclip.network.towers import VisionTower

    assert VisionTower(tiny_network().vision.clip, out_dim=8).cache.max_bytes == 1 << 30  # 1 GiB


def test_uncertainty_weighting_is_the_homoscedastic_total_with_its_learnt_log_variances():
    weighting = UncertaintyWeighting()
    with torch.no_grad():
        weighting.log_variances.copy_(torch.tensor([0.5, -0.3]))
    total, relative = weighting(torch.tensor(2.0), torch.tensor(3.0))
    expected = math.exp(-0.5) * 2.0 + math.exp(0.3) * 3.0 + 0.5 - 0.3
    assert total.item() == pytest.approx(expected, rel=1e-6) and relative.item() == pytest.approx(math.exp(0.8))


def test_adaptive_norm_gives_a_tiny_scale_a_finite_bounded_statistics_token():
    from darts_timesclip.network.normalization import AdaptiveNormalization, InstanceStats

    adaptive = AdaptiveNormalization(n_targets=1, n_params=1, width=4)
    seen = []
    adaptive.statistics_token.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    stats = InstanceStats(mean=torch.zeros(1, 1, 1), std=torch.full((1, 1, 1), 1e-30))  # log std = -69
    adaptive.eval()(stats)
    limit = math.log(torch.finfo(torch.float32).max) / 2  # 44.4
    assert seen[0][0, 0, 1].item() == pytest.approx(-limit)


def test_adaptive_norm_reference_statistics_and_features():
    from darts_timesclip.network.normalization import AdaptiveNormalization, InstanceStats

    adaptive = AdaptiveNormalization(n_targets=2, n_params=1, width=4, momentum=0.01)
    means = torch.tensor([[1.0, 10.0], [3.0, 30.0], [5.0, 50.0]])  # medians 3 and 30
    stds = torch.tensor([[1.0, 2.0], [2.0, 4.0], [4.0, 8.0]])  # median log stds log 2, log 4
    adaptive.update(InstanceStats(mean=means[:, None], std=stds[:, None]))  # the first batch sets the references
    torch.testing.assert_close(adaptive.reference_mean, torch.tensor([3.0, 30.0]))
    torch.testing.assert_close(adaptive.reference_log_scale, torch.log(torch.tensor([2.0, 4.0])))
    adaptive.update(InstanceStats(mean=means[:, None] + 2.0, std=stds[:, None]))  # then a running average (1/2)
    torch.testing.assert_close(adaptive.reference_mean, torch.tensor([4.0, 31.0]))
    # the token's features: asinh((mean - reference mean) / reference scale) and log(std / reference scale)
    seen = []
    adaptive.statistics_token.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    returned, _ = adaptive.eval()(InstanceStats(mean=torch.tensor([[[6.0, 31.0]]]), std=torch.tensor([[[2.0, 2.0]]])))
    # the forecast returns to location a * mean + (1 - a) * reference and scale exp(b * log std + (1 - b) * reference)
    # with the blends a = b = 1/2 they start at
    torch.testing.assert_close(returned.mean[0, 0], torch.tensor([(6.0 + 4.0) / 2, (31.0 + 31.0) / 2]))
    torch.testing.assert_close(returned.std[0, 0], torch.sqrt(torch.tensor([2.0 * 2.0, 2.0 * 4.0])))
    expected = torch.stack(
        [torch.asinh(torch.tensor([2.0 / 2.0, 0.0])), torch.log(torch.tensor([2.0 / 2.0, 2.0 / 4.0]))], dim=-1
    )
    torch.testing.assert_close(seen[0][0], expected)


def test_the_input_length_is_checked_against_the_towers_bounds():
    net = tiny_network()
    shortest = net.config.min_input_length
    assert net.encode(torch.randn(2, shortest, 2)).selected.shape[:2] == (2, 2)  # the shortest window is taken
    with pytest.raises(ValueError, match=rf"Expected series \[B, L, V\] with {shortest} <= L"):
        net.encode(torch.randn(2, shortest - 1, 2))
    with pytest.raises(ValueError, match=r"Expected series \[B, L, V\] .* got \[2, 32\]"):
        net.encode(torch.randn(2, 32))


@pytest.mark.parametrize("return_attention", [False, True])
def test_variate_selection_is_a_post_norm_block_of_torchs_multi_head_attention(return_attention):
    torch.manual_seed(0)
    block = VariateSelection(16, 4, dropout=0.0).eval().double()
    query, memory = torch.randn(2, 3, 16, dtype=torch.float64), torch.randn(2, 6, 16, dtype=torch.float64)
    reference = torch.nn.MultiheadAttention(16, 4, batch_first=True).double().eval()
    with torch.no_grad():
        reference.in_proj_weight.copy_(torch.cat([block.query.weight, block.key_value.weight]))
        reference.in_proj_bias.copy_(torch.cat([block.query.bias, block.key_value.bias]))
        reference.out_proj.weight.copy_(block.out.weight)
        reference.out_proj.bias.copy_(block.out.bias)
    attended, weights = reference(query, memory, memory, average_attn_weights=False)
    h = block.norm_attention(query + attended)
    expected = block.norm_feed_forward(h + block.feed_forward(h))
    out = block(query, memory, return_attention=return_attention)
    if return_attention:
        out, attention = out
        torch.testing.assert_close(attention, weights)  # [B, heads, V, M]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("views", ["both", "vision"])
def test_without_variate_selection_each_variate_keeps_the_sum_of_its_views(views):
    switches = {"use_numeric": False, "use_alignment": False} if views == "vision" else {}
    net = tiny_network(use_variate_selection=False, **switches)
    encoding = net.encode(torch.randn(3, 32, 2))
    expected = encoding.image if views == "vision" else encoding.text + encoding.image
    assert torch.equal(encoding.selected, expected)


def test_the_numeric_tower_refuses_more_patches_than_the_text_positions_hold():
    from darts_timesclip.backbones import build_text_tower
    from darts_timesclip.network.towers import NumericTower

    text_config = dict(tiny_network().config.text_config)
    patches = num_patches(32, 8, 4)  # 8 patches, 9 tokens with the summary
    fits = NumericTower(build_text_tower({**text_config, "max_position_embeddings": patches + 1}), 32, 8, 4)
    assert fits.n_patches == patches
    with pytest.raises(ValueError, match=r"cut into 8 patches .* exceeds the text tower's 8 positions"):
        NumericTower(build_text_tower({**text_config, "max_position_embeddings": patches}), 32, 8, 4)
