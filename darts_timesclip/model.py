"""``TimesCLIPModel``: TimesCLIP as a Darts ``TorchForecastingModel``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from darts import TimeSeries
from darts.models.forecasting.torch_forecasting_model import PastCovariatesTorchModel
from darts.utils.data.torch_datasets.utils import TorchTrainingSample
from darts.utils.likelihood_models.torch import (
    CauchyLikelihood,
    GaussianLikelihood,
    GumbelLikelihood,
    LaplaceLikelihood,
    QuantileRegression,
    TorchLikelihood,
)

from darts_timesclip.backbones import (
    DEFAULT_BACKBONE,
    BackboneSpec,
    load_pretrained_towers,
    resolve_backbone,
)
from darts_timesclip.lightning_module import _TimesCLIPModule
from darts_timesclip.network.hyperparameters import check_timesclip_hyperparameters
from darts_timesclip.validation import check_components, check_finite, check_min_length

logger = logging.getLogger(__name__)

SeriesLike = TimeSeries | Sequence[TimeSeries]

#: Likelihoods whose parameters TimesCLIP can return to the scale of the input (location, softplus-scale).
_LOCATION_SCALE_LIKELIHOODS = (GaussianLikelihood, LaplaceLikelihood, CauchyLikelihood, GumbelLikelihood)


def _parameter_kinds(likelihood: TorchLikelihood | None) -> tuple[str, ...]:
    if likelihood is None:
        return ("location",)
    if isinstance(likelihood, QuantileRegression):
        return ("location",) * likelihood.num_parameters
    if isinstance(likelihood, _LOCATION_SCALE_LIKELIHOODS):
        return ("location", "softplus_scale")
    supported = ", ".join(c.__name__ for c in (QuantileRegression, *_LOCATION_SCALE_LIKELIHOODS))
    raise ValueError(
        f"`likelihood={type(likelihood).__name__}()` is not supported: TimesCLIP normalises each window and "
        f"must return the likelihood's parameters to the original scale. Supported: {supported}."
    )


class TimesCLIPModel(PastCovariatesTorchModel):
    def __init__(
        self,
        input_chunk_length: int,
        output_chunk_length: int,
        output_chunk_shift: int = 0,
        backbone: str = DEFAULT_BACKBONE,
        pretrained: bool | None = None,
        patch_length: int = 16,
        patch_stride: int = 8,
        use_vision: bool = True,
        use_alignment: bool = True,
        use_variate_selection: bool = True,
        alignment_weight: float = 0.1,
        freeze_vision: bool = True,
        text_tower_lr: float = 1e-4,
        cosine_schedule: bool = True,
        dropout: float = 0.1,
        embedding_cache_mb: float = 1024.0,
        vision_chunk_size: int = 256,
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

        Parameters
        ----------
        input_chunk_length
            Number of past time steps per window (the paper's long-term setting: 96).
        output_chunk_length
            Number of time steps forecast at once.
        output_chunk_shift
            Steps between the end of the input window and the start of the forecast. Default: ``0``.
        backbone
            CLIP backbone: a hub id, a local directory saved with ``CLIPModel.save_pretrained``, or a random-weight
            preset (``"compact"``, a CPU-sized model; ``"tiny"``, for tests). Default:
            ``"openai/clip-vit-base-patch16"``, the paper's.
        pretrained
            Load the backbone's pretrained weights (``True``) or use its architecture with random weights
            (``False``). Default: ``None``, pretrained for hub ids and directories, random for presets.
        patch_length
            Length of the patches of the numeric view. Default: ``16``.
        patch_stride
            Step between patches. Default: ``8``.
        use_vision
            Use the chart (vision) view. Default: ``True``.
        use_alignment
            Add the contrastive alignment loss (needs ``use_vision``). Default: ``True``.
        use_variate_selection
            Use the variate-selection block; without it each variate's summary (plus its image embedding) feeds the
            generator directly. Default: ``True``.
        alignment_weight
            Weight of the alignment loss. Default: ``0.1`` (paper).
        freeze_vision
            Keep the CLIP vision tower frozen (paper). Only a frozen tower caches its embeddings. Default: ``True``.
        text_tower_lr
            Learning rate of the pretrained text transformer. Default: ``1e-4`` (paper).
        cosine_schedule
            With no ``lr_scheduler_cls``, decay every learning rate to 0 by a per-step cosine. Default: ``True``.
        dropout
            Dropout of the variate selection and the generator. Default: ``0.1``.
        embedding_cache_mb
            Memory bound, in MiB, of the cache of frozen vision embeddings (per chart); ``0`` disables it.
            Default: ``1024``.
        vision_chunk_size
            Charts rendered and encoded per pass; lower it for many variates on a small GPU. Default: ``256``.
        optimizer_cls
            Optimizer class. Default: ``torch.optim.AdamW``.
        **kwargs
            Every other argument of :class:`darts.models.forecasting.torch_forecasting_model.TorchForecastingModel`
            (``batch_size``, ``n_epochs``, ``loss_fn``, ``likelihood``, ``optimizer_kwargs``, ``lr_scheduler_cls``,
            ``pl_trainer_kwargs``, ``random_state``, ``save_checkpoints``, ...). Likelihoods: ``QuantileRegression``,
            ``GaussianLikelihood``, ``LaplaceLikelihood``, ``CauchyLikelihood``, ``GumbelLikelihood``.

        References
        ----------
        .. [1] S. Dong, W. Fan, T. Wu, Y. Fu, "Teaching Time Series to See and Speak: Forecasting with Aligned
               Visual and Textual Perspectives", arXiv:2506.24124, 2025.

        Examples
        --------
        >>> from darts.datasets import AirPassengersDataset
        >>> from darts_timesclip import TimesCLIPModel
        >>> series = AirPassengersDataset().load().astype("float32")  # doctest: +SKIP
        >>> model = TimesCLIPModel(24, 12, backbone="compact", n_epochs=5)
        >>> model.fit(series)  # doctest: +SKIP
        >>> forecast = model.predict(12)  # doctest: +SKIP
        """
        super().__init__(**self._extract_torch_model_params(**self.model_params))
        self.pl_module_params = self._extract_pl_module_params(**self.model_params)

        if kwargs.get("use_reversible_instance_norm"):
            raise ValueError("`use_reversible_instance_norm` must be False: TimesCLIP normalises every window itself.")
        self._parameter_kinds = _parameter_kinds(self.likelihood)
        self.backbone_spec: BackboneSpec = resolve_backbone(backbone, pretrained)
        check_timesclip_hyperparameters(
            input_length=input_chunk_length,
            output_length=output_chunk_length,
            patch_length=patch_length,
            patch_stride=patch_stride,
            use_vision=use_vision,
            use_alignment=use_alignment,
            alignment_weight=alignment_weight,
            text_tower_lr=text_tower_lr,
            dropout=dropout,
            embedding_cache_mb=embedding_cache_mb,
            vision_chunk_size=vision_chunk_size,
            backbone=backbone,
            max_text_positions=self.backbone_spec.max_text_positions,
        )

        self.patch_length = patch_length
        self.patch_stride = patch_stride
        self.use_vision = use_vision
        self.use_alignment = use_alignment
        self.use_variate_selection = use_variate_selection
        self.alignment_weight = alignment_weight
        self.freeze_vision = freeze_vision
        self.text_tower_lr = text_tower_lr
        self.cosine_schedule = cosine_schedule
        self.dropout = dropout
        self.embedding_cache_mb = embedding_cache_mb
        self.vision_chunk_size = vision_chunk_size

    @property
    def supports_static_covariates(self) -> bool:
        return False

    @property
    def supports_multivariate(self) -> bool:
        return True

    def _create_model(self, train_sample: TorchTrainingSample) -> _TimesCLIPModule:
        past_target = train_sample.past_target
        past_covariates = train_sample.past_covariates
        output_dim = past_target.shape[1]
        input_dim = output_dim + (past_covariates.shape[1] if past_covariates is not None else 0)
        spec = self.backbone_spec
        module = _TimesCLIPModule(
            input_dim=input_dim,
            output_dim=output_dim,
            vision_config=spec.vision_config,
            text_config=spec.text_config,
            patch_length=self.patch_length,
            patch_stride=self.patch_stride,
            parameter_kinds=self._parameter_kinds,
            use_vision=self.use_vision,
            use_alignment=self.use_alignment,
            use_variate_selection=self.use_variate_selection,
            alignment_weight=self.alignment_weight,
            freeze_vision=self.freeze_vision,
            text_tower_lr=self.text_tower_lr,
            cosine_schedule=self.cosine_schedule,
            dropout=self.dropout,
            embedding_cache_bytes=int(self.embedding_cache_mb * 2**20),
            vision_chunk_size=self.vision_chunk_size,
            **self.pl_module_params,
        )
        if spec.pretrained:
            vision, text = load_pretrained_towers(spec)
            module.network.load_backbone_weights(vision if self.use_vision else None, text)
            logger.info("Loaded pretrained CLIP towers from `%s`.", spec.name)
        return module

    # ------------------------------------------------------------------ input checks Darts does not make
    def _trained_components(self) -> tuple[int | None, int | None]:
        sample = self.train_sample
        if sample is None:
            return None, None
        cov = sample.past_covariates
        return sample.past_target.shape[1], (cov.shape[1] if cov is not None else None)

    def _check_inputs(
        self,
        series: SeriesLike | None,
        past_covariates: SeriesLike | None,
        min_length: int,
        why: str,
        check_trained: bool,
    ) -> None:
        check_finite(series, "series")
        check_finite(past_covariates, "past_covariates")
        check_min_length(series, "series", min_length, why)
        if check_trained:
            n_target, n_cov = self._trained_components()
            check_components(series, "series", n_target)
            check_components(past_covariates, "past_covariates", n_cov)

    def fit(
        self,
        series: SeriesLike,
        past_covariates: SeriesLike | None = None,
        future_covariates: SeriesLike | None = None,
        val_series: SeriesLike | None = None,
        val_past_covariates: SeriesLike | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> TimesCLIPModel:
        """Fit the model; see :meth:`TorchForecastingModel.fit`. Rejects NaN / inf and too-short series."""
        window = self.input_chunk_length + self.output_chunk_shift + self.output_chunk_length
        self._check_inputs(series, past_covariates, window, "one training window", check_trained=False)
        self._check_inputs(val_series, val_past_covariates, window, "one validation window", check_trained=False)
        return super().fit(series, past_covariates, future_covariates, val_series, val_past_covariates, *args, **kwargs)

    def predict(
        self, n: int, series: SeriesLike | None = None, past_covariates: SeriesLike | None = None, *args, **kwargs
    ) -> SeriesLike:
        """Forecast ``n`` steps; see :meth:`TorchForecastingModel.predict`. Rejects NaN / inf and mismatched series."""
        self._check_inputs(series, past_covariates, self.input_chunk_length, "the input window", check_trained=True)
        return super().predict(n, series, past_covariates, *args, **kwargs)

    def historical_forecasts(
        self, series: SeriesLike, past_covariates: SeriesLike | None = None, *args: Any, **kwargs: Any
    ) -> TimeSeries | list[TimeSeries] | list[list[TimeSeries]]:
        """See :meth:`ForecastingModel.historical_forecasts`. Rejects NaN / inf and mismatched series."""
        retrain = kwargs.get("retrain", True)
        self._check_inputs(
            series, past_covariates, self.input_chunk_length, "the input window", check_trained=retrain is False
        )
        return super().historical_forecasts(series, past_covariates, *args, **kwargs)
