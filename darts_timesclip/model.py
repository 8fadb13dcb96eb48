"""``TimesCLIPModel``: TimesCLIP as a Darts ``TorchForecastingModel``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from darts import TimeSeries
from darts.models.forecasting.torch_forecasting_model import PastCovariatesTorchModel
from darts.utils.data.torch_datasets.utils import TorchTrainingSample
from darts.utils.serialization import add_safe_globals

from darts_timesclip.checked_model import CheckedInputsMixin
from darts_timesclip.lightning_module import _TimesCLIPModule
from darts_timesclip.likelihoods import parameter_kinds
from darts_timesclip.network import TimesCLIPConfig, document_config_parameters
from darts_timesclip.network.image_encodings import period_from_freq
from darts_timesclip.validation import (
    as_series_list,
)

logger = logging.getLogger(__name__)

SeriesLike = TimeSeries | Sequence[TimeSeries]


@dataclass
class TimesCLIPEmbeddings:
    """Per-window, per-variate embeddings of one series, from :meth:`TimesCLIPModel.embed`.

    Variates are the series' components, then its past covariates' components, in the order the model was trained on.

    Attributes
    ----------
    numeric
        ``[n_windows, V, D]`` summary tokens of the numeric view, or ``None`` without it (``use_numeric=False``).
    image
        ``[n_windows, V, D]`` projected image embeddings, or ``None`` without the vision view.
    selected
        ``[n_windows, V, D]`` tokens after variate selection (without the block: what the generator reads instead).
    end_times
        Time of each window's last step, oldest first.
    """

    numeric: np.ndarray | None
    image: np.ndarray | None
    selected: np.ndarray
    end_times: pd.Index


class TimesCLIPModel(CheckedInputsMixin, PastCovariatesTorchModel):
    @document_config_parameters
    def __init__(
        self,
        input_chunk_length: int,
        output_chunk_length: int,
        output_chunk_shift: int = 0,
        optimizer_cls: type[torch.optim.Optimizer] = torch.optim.AdamW,
        **kwargs: Any,
    ) -> None:
        """TimesCLIP: forecasting with aligned visual and numeric views of a series [1]_.

        Each variate of an input window is seen twice: as a line chart encoded by a CLIP vision tower (frozen)
        and as patches encoded by a CLIP text transformer (fine-tuned). A contrastive loss aligns the two views;
        a variate-selection block lets every variate attend to all others; a linear generator forecasts each
        target variate from its patch tokens and its selected token. Windows are instance-normalised and
        forecasts returned to the original scale. Past covariates join as extra variates and are not forecast.

        The training loss is the forecast loss (``loss_fn`` or the likelihood) plus ``alignment_weight`` times
        the alignment loss; both are logged (``train_forecast_loss``, ``train_alignment_loss``). By default it is
        optimised by AdamW with ``optimizer_kwargs["lr"]`` (AdamW's default 1e-3) for the new parts,
        ``text_tower_lr`` for the pretrained text transformer, and a cosine decay to 0 over all training steps.

        TimesCLIP's own hyperparameters are those of :class:`~darts_timesclip.network.TimesCLIPConfig`, passed as
        keyword arguments; the model keeps them in :attr:`config`.

        Parameters
        ----------
        input_chunk_length
            Number of past time steps per window (the paper's long-term setting: 96).
        output_chunk_length
            Number of time steps forecast at once.
        output_chunk_shift
            Steps between the end of the input window and the start of the forecast. Default: ``0``.
        optimizer_cls
            Optimizer class. Default: ``torch.optim.AdamW``.
        {timesclip_parameters}
        **kwargs
            Every other argument of :class:`darts.models.forecasting.torch_forecasting_model.TorchForecastingModel`
            (``batch_size``, ``n_epochs``, ``loss_fn``, ``likelihood``, ``optimizer_kwargs``, ``lr_scheduler_cls``,
            ``pl_trainer_kwargs``, ``random_state``, ``save_checkpoints``, ...). Likelihoods: ``QuantileRegression``,
            ``GaussianLikelihood``, ``LaplaceLikelihood``, ``CauchyLikelihood``, ``GumbelLikelihood`` (with either
            ``normalization``); ``PoissonLikelihood``, ``NegativeBinomialLikelihood``, ``GammaLikelihood``,
            ``LogNormalLikelihood``, ``BetaLikelihood`` (with ``normalization="adaptive"``, the default with a
            likelihood). See :mod:`darts_timesclip.likelihoods`.

        {timesclip_references}

        Examples
        --------
        >>> from darts.datasets import AirPassengersDataset
        >>> from darts_timesclip import TimesCLIPModel
        >>> series = AirPassengersDataset().load().astype("float32")  # doctest: +SKIP
        >>> model = TimesCLIPModel(24, 12, backbone="compact", n_epochs=5)
        >>> model.fit(series)  # doctest: +SKIP
        >>> forecast = model.predict(12)  # doctest: +SKIP
        """
        config_kwargs, _ = TimesCLIPConfig.split_kwargs(kwargs)
        darts_params = self._trainer_defaults({k: v for k, v in self.model_params.items() if k not in config_kwargs})
        super().__init__(**self._extract_torch_model_params(**darts_params))
        self.pl_module_params = self._extract_pl_module_params(**darts_params)

        if kwargs.get("use_reversible_instance_norm"):
            raise ValueError("`use_reversible_instance_norm` must be False: TimesCLIP normalises every window itself.")
        #: Every TimesCLIP hyperparameter; ``n_targets`` is set from the training series in ``_create_model``.
        self.config = TimesCLIPConfig(
            input_chunk_length=input_chunk_length,
            output_chunk_length=output_chunk_length,
            parameter_kinds=parameter_kinds(self.likelihood, "TimesCLIP", config_kwargs.get("normalization")),
            **config_kwargs,
        )
        #: Component names of the training series and past covariates (``None`` before ``fit``, or where the
        #: training series do not share them); the forecasting service checks requests against them.
        self.target_components: list[str] | None = None
        self.past_covariate_components: list[str] | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "config" not in state:
            raise ValueError(
                "This TimesCLIPModel was saved by darts-timesclip 0.1, whose checkpoints this version cannot read "
                "(the hyperparameters now live in one `TimesCLIPConfig`); retrain the model, or load it with the "
                "version that saved it."
            )
        state.setdefault("target_components", None)  # saved before the names were kept
        state.setdefault("past_covariate_components", None)
        super().__setstate__(state)

    def _create_model(self, train_sample: TorchTrainingSample) -> _TimesCLIPModule:
        n_targets = train_sample.past_target.shape[1]
        config = self.config.replace(n_targets=n_targets)
        module = _TimesCLIPModule(config=config.to_dict(), **self.pl_module_params)
        if module.network.load_pretrained_backbone():
            logger.info("Loaded pretrained CLIP towers from `%s`.", config.backbone)
        return module

    def embed(
        self,
        series: SeriesLike,
        past_covariates: SeriesLike | None = None,
        all_windows: bool = False,
        stride: int = 1,
        batch_size: int | None = None,
    ) -> TimesCLIPEmbeddings | list[TimesCLIPEmbeddings]:
        """Embeddings of both views, per input window and per variate, for a downstream model of your own.

        Windows are ``input_chunk_length`` steps long, as the model forecasts from; the trained network encodes them
        in evaluation mode (:meth:`~darts_timesclip.network.TimesCLIPNetwork.encode`, the code path of
        ``predict``).

        Parameters
        ----------
        series
            One or several series with the components the model was trained on.
        past_covariates
            Their past covariates, where the model was trained with some; each must cover its series' time span.
        all_windows
            Embed every window (stepping back from the last by ``stride``) instead of the last one only.
            Default: ``False``.
        stride
            Steps between consecutive windows with ``all_windows=True``. Default: ``1``.
        batch_size
            Windows per forward pass. Default: the model's ``batch_size``.

        Returns
        -------
        TimesCLIPEmbeddings or list of TimesCLIPEmbeddings
            One per series (a list where ``series`` is a sequence).

        Raises
        ------
        ValueError
            Before ``fit``, or for NaN / inf values, series shorter than one window, component counts that differ
            from training, past covariates that do not cover their series, or a ``stride`` that is not a positive
            integer.
        """
        if self.model is None:
            raise ValueError("`embed` needs a fitted model; call `fit()` first (or load a fitted one).")
        if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
            raise ValueError(f"`stride` must be a positive integer, got `{stride!r}`.")
        self._check_inputs(series, past_covariates, self.input_chunk_length, "one window", check_trained=True)
        many = not isinstance(series, TimeSeries)
        targets = as_series_list(series)
        covariates = as_series_list(past_covariates)
        if covariates and len(covariates) != len(targets):
            raise ValueError(f"`past_covariates` holds {len(covariates)} series for {len(targets)} `series`.")
        network = self.model.network
        parameter = next(network.parameters())
        batch_size = batch_size or self.batch_size
        results = []
        for i, ts in enumerate(targets):
            values = ts.values(copy=False)
            if covariates:
                cov = covariates[i].slice_intersect(ts)
                if len(cov) != len(ts) or not cov.time_index.equals(ts.time_index):
                    which = f"`past_covariates[{i}]`" if many else "`past_covariates`"
                    raise ValueError(
                        f"{which} does not cover its series' time span {ts.start_time()}..{ts.end_time()}."
                    )
                values = np.concatenate([values, cov.values(copy=False)], axis=1)
            icl = self.input_chunk_length
            ends = np.arange(len(ts) - 1, icl - 2, -stride)[::-1] if all_windows else np.array([len(ts) - 1])
            windows = np.lib.stride_tricks.sliding_window_view(values, icl, axis=0)[ends - icl + 1]  # [n, V, icl]
            windows = torch.as_tensor(np.ascontiguousarray(windows.transpose(0, 2, 1)), dtype=parameter.dtype)
            parts: dict[str, list[np.ndarray]] = {"numeric": [], "image": [], "selected": []}
            was_training = network.training
            network.eval()
            try:
                with torch.no_grad():
                    for start in range(0, len(windows), batch_size):
                        encoding = network.encode(windows[start : start + batch_size].to(parameter.device))
                        for key, value in (("numeric", encoding.text), ("image", encoding.image)):
                            if value is not None:
                                parts[key].append(value.float().cpu().numpy())
                        parts["selected"].append(encoding.selected.float().cpu().numpy())
            finally:
                network.train(was_training)
            joined = {key: np.concatenate(value) if value else None for key, value in parts.items()}
            results.append(TimesCLIPEmbeddings(**joined, end_times=ts.time_index[ends]))
        return results if many else results[0]

    def _prepare_for_dataset(self, dataset: Any) -> None:
        """``image_encoding="periodic"`` without ``period``: take it from the training series' frequency."""
        config = self.config
        if not (config.use_vision and config.image_encoding == "periodic") or config.period is not None:
            return
        series = getattr(dataset, "series", None)
        freq = series[0].freq if series else None
        period = period_from_freq(freq)
        if period is None:
            raise ValueError(
                f"`image_encoding='periodic'` needs a `period`, and the training series' frequency `{freq}` has no "
                "natural one (sub-daily, daily, weekly, monthly or quarterly data do); pass `period=` in time steps."
            )
        logger.info("`image_encoding='periodic'`: period %d from the frequency `%s`.", period, freq)
        self.config = config.replace(period=period)


# `TimesCLIPModel.load` works without `trusted=True` (Darts' restricted unpickler): registered where it is defined
add_safe_globals([TimesCLIPModel, TimesCLIPConfig])
