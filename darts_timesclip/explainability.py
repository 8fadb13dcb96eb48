"""``TimesCLIPExplainer``: what TimesCLIP attends to and what its vision tower sees, the Darts explainer way.

For each explained series, the last input window is run through the network; the result holds, per target
component, the variate-selection attention (mean over heads) over every variate's numeric and image tokens, and
the images the vision tower was given. Like Darts' ``TFTExplainer``, it reads the model's own weights and needs no
background data beyond the series to explain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from darts import TimeSeries
from darts.explainability.explainability_result import ComponentBasedExplainabilityResult

from darts_timesclip.model import TimesCLIPModel
from darts_timesclip.network.image_encodings import IMAGE_ENCODINGS, period_from_freq, window_images
from darts_timesclip.validation import as_series_list, check_components, check_finite, check_min_length


class TimesCLIPExplainabilityResult(ComponentBasedExplainabilityResult):
    """Per target component: its attention over the memory tokens (``get_explanation``), and the charts.

    Attributes
    ----------
    explained_components
        ``{target component: pd.Series}`` (a list of such dicts for several series): the attention, mean over heads
        and summing to 1, indexed by memory token (``"<component> (numbers)"``, ``"<component> (image)"``).
    images
        ``{component: array [3, S, S]}`` (a list for several series): what the vision tower was given, in
        ``[0, 1]`` before CLIP's normalisation; empty without the vision view.
    """

    def __init__(
        self,
        explained_components: dict[str, pd.Series] | list[dict[str, pd.Series]],
        images: dict[str, np.ndarray] | list[dict[str, np.ndarray]],
    ) -> None:
        super().__init__(explained_components)
        self.images = images

    def get_attention(self) -> pd.DataFrame | list[pd.DataFrame]:
        """Targets x memory tokens, one ``DataFrame`` per explained series."""
        many = isinstance(self.explained_components, list)
        items = self.explained_components if many else [self.explained_components]
        frames = [pd.DataFrame(item).T for item in items]
        return frames if many else frames[0]


class TimesCLIPExplainer:
    """Explainer of a fitted :class:`~darts_timesclip.TimesCLIPModel`, with the interface of Darts' explainers
    (``explain(foreground_series, foreground_past_covariates, ...)`` returning a component-based result).

    Parameters
    ----------
    model
        A fitted ``TimesCLIPModel`` with the variate-selection block (``use_variate_selection=True``).
    background_series, background_past_covariates
        What ``explain()`` explains when it is given no foreground; default: the model's training series (where it
        was fitted on one).

    Examples
    --------
    >>> explainer = TimesCLIPExplainer(model)  # doctest: +SKIP
    >>> result = explainer.explain()  # doctest: +SKIP
    >>> result.get_attention()  # targets x tokens  # doctest: +SKIP
    >>> explainer.plot_variate_attention(result)  # doctest: +SKIP
    """

    def __init__(
        self,
        model: TimesCLIPModel,
        background_series: TimeSeries | Sequence[TimeSeries] | None = None,
        background_past_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
    ) -> None:
        if not isinstance(model, TimesCLIPModel):
            raise ValueError(f"`model` must be a TimesCLIPModel, got {type(model).__name__}.")
        if not model.is_fitted:
            raise ValueError("`model` must be fitted before it can be explained; call `model.fit(...)` first.")
        if not model.config.use_variate_selection:
            raise ValueError(
                "`model` was built with `use_variate_selection=False`: it has no variate-selection attention to show."
            )
        self.model = model
        if background_series is None:  # as Darts' explainers: the series the model was fitted on, if it was one
            background_series, background_past_covariates = model.training_series, model.past_covariate_series
        self.background_series = background_series
        self.background_past_covariates = background_past_covariates

    def explain(
        self,
        foreground_series: TimeSeries | Sequence[TimeSeries] | None = None,
        foreground_past_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        foreground_future_covariates: TimeSeries | Sequence[TimeSeries] | None = None,
        horizons: Sequence[int] | None = None,
        target_components: Sequence[str] | None = None,
    ) -> TimesCLIPExplainabilityResult:
        """Explain the last input window of each series.

        Parameters
        ----------
        foreground_series, foreground_past_covariates
            The series (and past covariates, if the model uses them) to explain; default: the background.
        foreground_future_covariates, horizons
            Not used (TimesCLIP has no future covariates; its attention does not depend on the horizon).
        target_components
            Restrict the result to these target components.
        """
        if foreground_future_covariates is not None:
            raise ValueError("TimesCLIP uses no future covariates; leave `foreground_future_covariates` out.")
        series = foreground_series if foreground_series is not None else self.background_series
        covariates = foreground_past_covariates if foreground_series is not None else self.background_past_covariates
        if series is None:
            raise ValueError(
                "Nothing to explain: pass `foreground_series` (the model was fitted on several series, so it keeps "
                "none)."
            )
        many = not isinstance(series, TimeSeries)
        series_list, covariate_list = as_series_list(series), as_series_list(covariates)
        n_target, n_cov = self.model.trained_component_counts
        check_finite(series, "foreground_series")
        check_finite(covariates, "foreground_past_covariates")
        check_components(series, "foreground_series", n_target)
        check_components(covariates, "foreground_past_covariates", n_cov)
        length = self.model.input_chunk_length
        check_min_length(series, "foreground_series", length, "the input window")
        if n_cov and len(covariate_list) != len(series_list):
            raise ValueError("The model uses past covariates: pass one `foreground_past_covariates` per series.")

        network = self.model.model.network
        attentions, images = [], []
        for i, ts in enumerate(series_list):
            window = ts.values(copy=False)[-length:]
            names = list(ts.components)
            if n_cov:
                cov = covariate_list[i].slice_intersect(ts)
                window = np.concatenate([window, cov.values(copy=False)[-length:]], axis=1)
                names += list(covariate_list[i].components)
            explained, seen = self._explain_window(network, window, names, ts.components)
            if target_components is not None:
                unknown = [c for c in target_components if c not in explained]
                if unknown:
                    raise ValueError(f"`target_components` {unknown} are not among {list(explained)}.")
                explained = {c: explained[c] for c in target_components}
            attentions.append(explained)
            images.append(seen)
        if many:
            return TimesCLIPExplainabilityResult(attentions, images)
        return TimesCLIPExplainabilityResult(attentions[0], images[0])

    def _explain_window(
        self, network: Any, window: np.ndarray, names: list[str], targets: Sequence[str]
    ) -> tuple[dict[str, pd.Series], dict[str, np.ndarray]]:
        dtype = next(network.parameters()).dtype
        device = next(network.parameters()).device
        x = torch.as_tensor(np.ascontiguousarray(window), dtype=dtype, device=device).unsqueeze(0)
        was_training = network.training
        network.eval()
        try:
            with torch.no_grad():
                out = network(x, return_attention=True)
                seen = {}
                if network.vision is not None:
                    pixels = network.vision.images(x)[0]  # [V, 3, S, S]
                    seen = {name: pixels[v].float().cpu().numpy() for v, name in enumerate(names)}
        finally:
            network.train(was_training)
        tokens = []
        if network.numeric is not None:
            tokens += [f"{name} (numbers)" for name in names]
        if network.vision is not None:
            tokens += [f"{name} (image)" for name in names]
        weights = out.attention[0].mean(dim=0).float().cpu().numpy()  # [V, M]
        explained = {target: pd.Series(weights[v], index=tokens, name=target) for v, target in enumerate(targets)}
        return explained, seen

    @staticmethod
    def plot_variate_attention(result: TimesCLIPExplainabilityResult, series_idx: int = 0, ax: Any = None) -> Any:
        """Heatmap of the attention of each target (rows) over the memory tokens (columns), with component names."""
        import matplotlib.pyplot as plt

        frames = result.get_attention()
        frame = frames[series_idx] if isinstance(frames, list) else frames
        if ax is None:
            _, ax = plt.subplots(figsize=(1.0 + 0.55 * frame.shape[1], 1.2 + 0.45 * frame.shape[0]))
        image = ax.imshow(frame.to_numpy(), cmap="viridis", vmin=0, aspect="auto")
        ax.set_xticks(range(frame.shape[1]), frame.columns, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(frame.shape[0]), frame.index, fontsize=8)
        ax.set_xlabel("memory token")
        ax.set_ylabel("forecast target")
        ax.set_title("TimesCLIP variate-selection attention (mean over heads)", fontsize=9)
        ax.figure.colorbar(image, ax=ax, fraction=0.04)
        ax.figure.tight_layout()
        return ax

    def plot_views(
        self,
        series: TimeSeries,
        encodings: Sequence[str] = IMAGE_ENCODINGS,
        period: int | None = None,
        max_variates: int = 7,
    ) -> Any:
        """The last input window of ``series`` in each image encoding (rows: variates; columns: encodings)."""
        import matplotlib.pyplot as plt

        unknown = [e for e in encodings if e not in IMAGE_ENCODINGS]
        if unknown:
            raise ValueError(f"`encodings` {unknown} are not among {IMAGE_ENCODINGS}.")
        length = self.model.input_chunk_length
        check_min_length(series, "series", length, "the input window")
        period = period or self.model.config.period or period_from_freq(series.freq) or max(2, length // 4)
        names = list(series.components)[:max_variates]
        window = torch.as_tensor(series.values(copy=False)[-length:, : len(names)], dtype=torch.float64)
        size = int(self.model.config.vision_config["image_size"])
        size = max(size, 64)  # tiny presets: draw the figures at a readable size
        fig, axes = plt.subplots(
            len(names), len(encodings), figsize=(1.9 * len(encodings), 1.9 * len(names)), squeeze=False
        )
        for c, encoding in enumerate(encodings):
            pixels = window_images(window.unsqueeze(0), size, encoding, period)[0].permute(0, 2, 3, 1).numpy()
            for v, name in enumerate(names):
                ax = axes[v][c]
                ax.imshow(pixels[v])
                ax.set_xticks([])
                ax.set_yticks([])
                if v == 0:
                    ax.set_title(encoding, fontsize=9)
                if c == 0:
                    ax.set_ylabel(name, fontsize=9)
        fig.tight_layout()
        return fig
