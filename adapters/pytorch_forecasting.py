"""``TimesCLIP`` for pytorch-forecasting 1.x: a thin ``BaseModelWithCovariates`` over the shared network.

The layers are those of the Darts model (:class:`~darts_timesclip.network.TimesCLIPNetwork`, unchanged); this module
only maps pytorch-forecasting batches onto it:

- the encoder window of every target and of every real-valued time-varying covariate becomes one variate of
  ``x [B, L, V]``, targets first (the network forecasts the first ``n_targets`` variates only);
- the network sees ``encoder_cont``, i.e. values as scaled by the dataset (its ``target_normalizer`` and
  ``scalers``), and its forecast is returned to the target's scale by pytorch-forecasting's ``transform_output``,
  as in every pytorch-forecasting model. TimesCLIP normalises each window itself, so an affine normalizer (the
  default ``EncoderNormalizer`` / ``GroupNormalizer`` without transformation, standard scalers) does not change
  the forecast beyond float rounding; a transforming one (``"log"``, ``"softplus"``) makes TimesCLIP forecast in
  the transformed space;
- known-future reals (``time_varying_known_reals``) take part through their encoder window like any other
  covariate; their future (decoder) values are not used: TimesCLIP has no decoder inputs, like the Darts model
  with past covariates.

Requires the ``pytorch-forecasting`` extra: ``pip install "darts-timesclip[pytorch-forecasting]"``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from copy import copy
from typing import Any

import torch

from darts_timesclip.extras import require_extra

# before importing pytorch-forecasting: without it, an error that names the extra to install (imports below: E402)
require_extra("pytorch-forecasting", "`darts_timesclip.adapters.pytorch_forecasting`")

from pytorch_forecasting.data import TimeSeriesDataSet
from pytorch_forecasting.data.encoders import NaNLabelEncoder
from pytorch_forecasting.metrics import (
    MAE,
    MAPE,
    MASE,
    RMSE,
    SMAPE,
    CrossEntropy,
    DistributionLoss,
    MultiLoss,
    PoissonLoss,
    QuantileLoss,
    TweedieLoss,
)
from pytorch_forecasting.metrics.base_metrics import Metric
from pytorch_forecasting.models.base import BaseModelWithCovariates
from pytorch_forecasting.utils import to_list
from torch import nn

from darts_timesclip.network import TimesCLIPConfig, TimesCLIPNetwork, document_config_parameters

logger = logging.getLogger(__name__)

__all__ = ["TimesCLIP"]

#: pytorch-forecasting's names of the window lengths, for the config's error messages
_ARGUMENT_NAMES = {"input_chunk_length": "context_length", "output_chunk_length": "prediction_length"}

#: Losses whose network outputs are not values on the target's scale (log-rates, distribution parameters, class
#: scores); TimesCLIP de-normalises every output as a location, so it cannot produce them.
_UNSUPPORTED_LOSSES: tuple[type, ...] = (DistributionLoss, PoissonLoss, TweedieLoss, CrossEntropy)


class TimesCLIP(BaseModelWithCovariates):
    """TimesCLIP [1]_ for pytorch-forecasting: aligned visual and numeric views of a series.

    Build it with :meth:`from_dataset`; see the module docstring for how a ``TimeSeriesDataSet`` maps onto the
    network.
    """

    @document_config_parameters
    def __init__(
        self,
        context_length: int,
        prediction_length: int,
        output_size: int | list[int] = 1,
        learning_rate: float | list[float] = 1e-3,
        optimizer: str | Any = "adamw",
        weight_decay: float = 0.01,
        loss: Metric | MultiLoss | None = None,
        logging_metrics: nn.ModuleList | None = None,
        static_categoricals: list[str] | None = None,
        static_reals: list[str] | None = None,
        time_varying_categoricals_encoder: list[str] | None = None,
        time_varying_categoricals_decoder: list[str] | None = None,
        categorical_groups: dict[str, list[str]] | None = None,
        time_varying_reals_encoder: list[str] | None = None,
        time_varying_reals_decoder: list[str] | None = None,
        embedding_sizes: dict[str, tuple[int, int]] | None = None,
        embedding_paddings: list[str] | None = None,
        embedding_labels: dict[str, Any] | None = None,
        x_reals: list[str] | None = None,
        x_categoricals: list[str] | None = None,
        vision_config: dict[str, Any] | None = None,
        text_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """TimesCLIP: forecasting with aligned visual and numeric views of a series [1]_.

        Use :meth:`from_dataset`, which derives every dataset-dependent argument (lengths, output sizes,
        variables). Each variate of an input window is seen twice: as a line chart encoded by a CLIP vision tower
        (frozen) and as patches encoded by a CLIP text transformer (fine-tuned). A contrastive loss aligns the two
        views; a variate-selection block lets every variate attend to all others; a linear generator forecasts each
        target from its patch tokens and its selected token.

        The training loss is ``loss`` plus ``alignment_weight`` times the alignment loss. Logged per stage:
        ``{stage}_loss``, the forecast loss as pytorch-forecasting logs it (what early stopping and checkpoint
        selection should track), ``{stage}_alignment_loss`` and ``{stage}_total_loss`` (what is optimised).

        Parameters
        ----------
        context_length
            Encoder length, the window TimesCLIP sees (from the dataset's ``max_encoder_length``).
        prediction_length
            Decoder length, the forecast horizon (from the dataset's ``max_prediction_length``).
        output_size
            Outputs per time step and target (from the loss: the number of quantiles for ``QuantileLoss``, else 1),
            or one per target; all targets must have the same. Default: ``1``.
        {timesclip_parameters}
        learning_rate
            Learning rate of everything but the text transformer (a list: per-epoch schedule, with
            ``cosine_schedule=False``). Default: ``1e-3``.
        optimizer
            Any optimizer that :class:`~pytorch_forecasting.models.base.BaseModel` accepts. Default: ``"adamw"``.
        weight_decay
            Weight decay. Default: ``0.01`` (AdamW's, as in the Darts model).
        loss
            Point metrics (``MAE``, ``RMSE``, ``SMAPE``, ``MAPE``, ``MASE``, ...), ``QuantileLoss``, or a
            ``MultiLoss`` of them for several targets. Distribution losses, ``PoissonLoss``, ``TweedieLoss`` and
            ``CrossEntropy`` are not supported. Default: ``RMSE()`` (the paper trains on the MSE).
        logging_metrics
            Metrics logged in training and validation. Default: ``SMAPE, MAE, RMSE, MAPE, MASE``.
        static_categoricals, static_reals, time_varying_categoricals_encoder, time_varying_categoricals_decoder,
        categorical_groups, time_varying_reals_encoder, time_varying_reals_decoder, embedding_sizes,
        embedding_paddings, embedding_labels, x_reals, x_categoricals
            The dataset's variables, set by :meth:`from_dataset`. Static and categorical variables are not
            supported; ``time_varying_reals_decoder`` (future values of known reals) are not used.
        vision_config, text_config
            Set by the model itself (the resolved backbone), so that checkpoints rebuild the network without the
            backbone's files; when given, no pretrained weights are loaded. Leave them ``None``.
        **kwargs
            Other arguments of :class:`~pytorch_forecasting.models.base.BaseModel` (``log_interval``,
            ``optimizer_params``, ``reduce_on_plateau_patience``, ...). With ``cosine_schedule=True`` (the default),
            the per-step cosine replaces pytorch-forecasting's ``ReduceLROnPlateau``; it needs a scalar
            ``learning_rate`` and a trainer with a finite ``max_epochs`` or ``max_steps``.

        {timesclip_references}

        Examples
        --------
        >>> from lightning.pytorch import Trainer
        >>> from darts_timesclip.adapters.pytorch_forecasting import TimesCLIP
        >>> model = TimesCLIP.from_dataset(training, backbone="compact")  # doctest: +SKIP
        >>> Trainer(max_epochs=5).fit(model, train_dataloader, val_dataloader)  # doctest: +SKIP
        >>> model.predict(val_dataloader, mode="prediction", return_index=True)  # doctest: +SKIP
        """
        # no mutable defaults: None stands for "none of these"
        static_categoricals = static_categoricals or []
        static_reals = static_reals or []
        time_varying_categoricals_encoder = time_varying_categoricals_encoder or []
        time_varying_categoricals_decoder = time_varying_categoricals_decoder or []
        categorical_groups = categorical_groups or {}
        time_varying_reals_encoder = time_varying_reals_encoder or []
        time_varying_reals_decoder = time_varying_reals_decoder or []
        embedding_sizes = embedding_sizes or {}
        embedding_paddings = embedding_paddings or []
        embedding_labels = embedding_labels or {}
        x_reals = x_reals or []
        x_categoricals = x_categoricals or []
        loss = RMSE() if loss is None else loss
        if logging_metrics is None:
            logging_metrics = nn.ModuleList([SMAPE(), MAE(), RMSE(), MAPE(), MASE()])

        config_kwargs, base_kwargs = TimesCLIPConfig.split_kwargs(kwargs)
        if base_kwargs.get("monotone_constraints"):
            raise ValueError(
                "`monotone_constraints` act on decoder covariates, which TimesCLIP does not use; leave them empty."
            )
        _check_variables(static_categoricals + static_reals, time_varying_categoricals_encoder)
        _check_loss(loss)
        output_sizes = to_list(output_size)
        if len(set(output_sizes)) != 1:
            raise ValueError(
                f"`output_size={output_size}`: TimesCLIP forecasts every target with one generator and thus the "
                "same number of outputs; use losses with the same number of outputs (e.g. the same quantiles) for "
                "all targets."
            )
        # given tower configurations mean a rebuild from a checkpoint, whose state dict holds the weights
        restoring = vision_config is not None
        config = TimesCLIPConfig(
            input_chunk_length=context_length,
            output_chunk_length=prediction_length,
            parameter_kinds=("location",) * output_sizes[0],
            vision_config=vision_config,
            text_config=text_config,
            argument_names=_ARGUMENT_NAMES,
            **config_kwargs,
        )
        if config.cosine_schedule and isinstance(learning_rate, list | tuple):
            raise ValueError(
                f"`learning_rate={learning_rate}` is a per-epoch schedule, which `cosine_schedule=True` would "
                "replace; pass `cosine_schedule=False` to use it."
            )

        # the local values go to the checkpoint; BaseModel keeps `loss` and `logging_metrics` itself, and the resolved
        # tower configurations travel with it so that a checkpoint rebuilds the network without the backbone's files
        self.save_hyperparameters(ignore=["loss", "logging_metrics"])
        self.hparams.update(vision_config=config.vision_config, text_config=config.text_config)
        # pytorch-forecasting's hook for a custom optimizer: a callable given the parameters (see `_build_optimizer`)
        self.optimizer = self._build_optimizer
        super().__init__(
            loss=loss,
            logging_metrics=logging_metrics,
            learning_rate=learning_rate,
            optimizer=optimizer,
            weight_decay=weight_decay,
            **base_kwargs,
        )

        targets = self.target_names
        missing = [name for name in targets if name not in x_reals]
        if missing:
            raise ValueError(
                f"Targets {missing} are not among the dataset's real-valued inputs {x_reals}: list them in the "
                "`TimeSeriesDataSet`'s `time_varying_unknown_reals`, and build the model with "
                "`TimesCLIP.from_dataset(dataset, ...)`."
            )
        covariates = [name for name in time_varying_reals_encoder if name not in targets]
        self.variate_names: list[str] = targets + covariates
        # columns of `encoder_cont` in variate order: targets first, then covariates
        self.register_buffer(
            "variate_positions", torch.tensor([x_reals.index(n) for n in self.variate_names]), persistent=False
        )

        self.config = config.replace(n_targets=len(targets))
        self.network = TimesCLIPNetwork(self.config)
        if not restoring and self.network.load_pretrained_backbone():
            logger.info("Loaded pretrained CLIP towers from `%s`.", self.config.backbone)

    # ------------------------------------------------------------------------------------------------ creation
    @classmethod
    def from_dataset(cls, dataset: TimeSeriesDataSet, **kwargs: Any) -> TimesCLIP:
        """Create a TimesCLIP model for a ``TimeSeriesDataSet``.

        Parameters
        ----------
        dataset
            The training dataset: fixed encoder and prediction lengths, real-valued targets listed in
            ``time_varying_unknown_reals``, real-valued time-varying covariates only.
        **kwargs
            Hyperparameters of :meth:`__init__` (``backbone``, ``loss``, ``patch_length``, ...), except those derived
            from the dataset (``context_length``, ``prediction_length``).

        Returns
        -------
        TimesCLIP
            An untrained model.

        Raises
        ------
        ValueError
            Where the dataset has something TimesCLIP cannot use, or a hyperparameter is invalid.
        """
        _check_dataset(dataset)
        derived = {"context_length": dataset.max_encoder_length, "prediction_length": dataset.max_prediction_length}
        for name, value in derived.items():
            if name in kwargs and kwargs[name] != value:
                raise ValueError(
                    f"`{name}={kwargs[name]}` differs from the dataset's {value}; it is derived from the dataset, "
                    "leave it out."
                )
        loss = kwargs.get("loss", RMSE())
        n_targets = len(dataset.target_names)
        if isinstance(loss, MultiLoss) and len(loss.metrics) != n_targets:
            raise ValueError(
                f"`loss` is a MultiLoss of {len(loss.metrics)} metrics, but the dataset has {n_targets} target(s) "
                f"{dataset.target_names}; pass one metric per target (or one metric for a single target)."
            )
        new_kwargs = copy(kwargs)
        new_kwargs.update(derived)
        new_kwargs.update(cls.deduce_default_output_parameters(dataset, kwargs, RMSE()))
        return super().from_dataset(dataset, **new_kwargs)

    # ------------------------------------------------------------------------------------------------ forward
    def forward(
        self, x: dict[str, torch.Tensor], return_alignment: bool = False
    ) -> dict[str, torch.Tensor | list[torch.Tensor] | None]:
        """Forecast a batch of a ``TimeSeriesDataSet`` dataloader.

        Parameters
        ----------
        x
            The dataloader's ``x``; reads ``encoder_cont [B, L, n_reals]``, ``encoder_lengths`` and
            ``target_scale``.
        return_alignment
            Compute the alignment loss (training and validation steps ask for it, see :meth:`step`).

        Returns
        -------
        dict
            ``prediction``: ``[B, H, output_size]`` on the target's scale, or a list of them, one per target;
            ``alignment_loss``: the scalar alignment loss, or ``None`` where not asked for or alignment is off.
        """
        encoder_cont = x["encoder_cont"]
        context_length = self.hparams.context_length
        if encoder_cont.shape[1] != context_length or bool((x["encoder_lengths"] != context_length).any()):
            raise ValueError(
                f"TimesCLIP needs encoder windows of exactly {context_length} steps, got lengths "
                f"{sorted(set(x['encoder_lengths'].tolist()))}; build the dataset with "
                f"`min_encoder_length = max_encoder_length = {context_length}`."
            )
        out = self.network(encoder_cont[..., self.variate_positions], return_alignment=return_alignment)
        prediction = out.prediction  # [B, H, n_targets, output_size]
        if isinstance(self.loss, MultiLoss):
            prediction = [prediction[:, :, i] for i in range(prediction.shape[2])]
        else:
            prediction = prediction[:, :, 0]
        return self.to_network_output(
            prediction=self.transform_output(prediction, target_scale=x["target_scale"]),
            alignment_loss=out.alignment_loss,
        )

    # ------------------------------------------------------------------------------------------------ training
    def step(
        self, x: dict[str, torch.Tensor], y: tuple[torch.Tensor, torch.Tensor], batch_idx: int, **kwargs: Any
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """pytorch-forecasting's step (forecast loss, logged as ``{stage}_loss``), plus the alignment loss.

        As in pytorch-forecasting's N-BEATS (backcast loss): the base step computes and logs the forecast loss;
        this adds ``alignment_weight`` x the alignment loss to what is optimised and logs the parts under the names
        the Darts model uses (:func:`~darts_timesclip.network.combine_losses`).
        """
        log, out = super().step(x, y, batch_idx, return_alignment=not self.predicting, **kwargs)
        if self.predicting:
            return log, out
        stage = self.current_stage
        losses = self.network.losses(log["loss"], out["alignment_loss"], stage)
        for name, value in losses.logged.items():
            self.log(name, value, on_step=self.training, on_epoch=True, batch_size=len(x["decoder_target"]))
        log["loss"] = losses.total
        return log, out

    def __getstate__(self) -> dict[str, Any]:
        # pytorch-forecasting caches a namedtuple class defined inside `to_network_output` (not picklable) and
        # Lightning attaches the trainer; both are rebuilt on use, so a pickled model leaves them out
        state = super().__getstate__()
        state.pop("_output_class", None)
        state["_trainer"] = None
        return state

    def _build_optimizer(self, parameters: Any, lr: float, **kwargs: Any) -> torch.optim.Optimizer:
        """The optimizer that ``optimizer`` names, over two parameter groups (the text tower at ``text_tower_lr``).

        pytorch-forecasting builds its optimizer by calling ``self.optimizer(self.parameters(), lr=lr, ...)`` where
        ``optimizer`` is a callable; this is that callable, so everything else of its ``configure_optimizers``
        (``optimizer_params``, ``weight_decay``, its schedulers) applies unchanged.
        """
        groups = self.network.parameter_groups(parameters, base_lr=lr)
        return _optimizer_class(self.hparams.optimizer)(groups, lr=lr, **kwargs)

    def configure_optimizers(self) -> dict[str, Any]:
        """pytorch-forecasting's optimizer and schedule; with ``cosine_schedule``, a per-step cosine in its place."""
        config = super().configure_optimizers()
        if not self.config.cosine_schedule:
            return config
        total_steps = self.trainer.estimated_stepping_batches
        if not math.isfinite(total_steps):
            raise ValueError(
                "`cosine_schedule=True` needs a finite number of training steps; set the trainer's `max_epochs` or "
                "`max_steps`, or pass `cosine_schedule=False`."
            )
        optimizer = config["optimizer"]
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, int(total_steps)), eta_min=0.0)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}


def _optimizer_class(optimizer: str | Callable[..., torch.optim.Optimizer]) -> Callable[..., torch.optim.Optimizer]:
    """What ``optimizer`` names, as pytorch-forecasting resolves it: a callable, or a ``torch.optim`` name."""
    if callable(optimizer):
        return optimizer
    names = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}
    name = names.get(optimizer, optimizer)
    if isinstance(name, str) and hasattr(torch.optim, name):
        return getattr(torch.optim, name)
    try:
        import pytorch_optimizer
    except ImportError:
        pytorch_optimizer = None
    if isinstance(name, str) and pytorch_optimizer is not None and hasattr(pytorch_optimizer, name):
        return getattr(pytorch_optimizer, name)
    raise ValueError(
        f"`optimizer={optimizer!r}` is not a `torch.optim` (or `pytorch_optimizer`) optimizer name nor a callable; "
        "TimesCLIP gives its text tower a learning rate of its own and builds the optimizer from such a name or "
        "callable (for Ranger, pass `optimizer=pytorch_optimizer.Ranger21`)."
    )


# ---------------------------------------------------------------------------------------------------- checks
def _check_variables(static: list[str], categoricals: list[str]) -> None:
    if static:
        raise ValueError(
            f"TimesCLIP has no static covariates, but the dataset has {static} (`static_reals`, "
            "`static_categoricals`, `add_target_scales=True` or `add_encoder_length=True`); leave them out."
        )
    if categoricals:
        raise ValueError(
            f"TimesCLIP takes real-valued covariates only, but the dataset has the time-varying categoricals "
            f"{categoricals}; leave them out or encode them as reals (e.g. one-hot columns)."
        )


def _check_loss(loss: Metric | MultiLoss) -> None:
    metrics = loss.metrics if isinstance(loss, MultiLoss) else [loss]
    for metric in metrics:
        if isinstance(metric, _UNSUPPORTED_LOSSES):
            raise ValueError(
                f"`loss={type(metric).__name__}()` is not supported: its network outputs are not values on the "
                "target's scale, which TimesCLIP returns. Use a point metric (MAE, RMSE, SMAPE, MAPE, MASE) or "
                "QuantileLoss."
            )
    if isinstance(loss, MultiLoss):
        sizes = {len(m.quantiles) if isinstance(m, QuantileLoss) else 1 for m in metrics}
        if len(sizes) > 1:
            raise ValueError(
                f"`loss={loss}` mixes metrics with different numbers of outputs; TimesCLIP forecasts every target "
                "with one generator: use the same kind of metric (and the same quantiles) for all targets."
            )


def _check_dataset(dataset: TimeSeriesDataSet) -> None:
    """Raise ``ValueError`` for what a ``TimeSeriesDataSet`` has that TimesCLIP cannot use."""
    if not isinstance(dataset, TimeSeriesDataSet):
        raise ValueError(f"`dataset` must be a pytorch-forecasting `TimeSeriesDataSet`, got {type(dataset).__name__}.")
    categorical = [
        name
        for name, normalizer in zip(dataset.target_names, dataset.target_normalizers, strict=True)
        if isinstance(normalizer, NaNLabelEncoder)
    ]
    if categorical:
        raise ValueError(
            f"Targets {categorical} are categorical (their normalizer is a NaNLabelEncoder); TimesCLIP forecasts "
            "real values only."
        )
    if dataset.min_encoder_length != dataset.max_encoder_length:
        raise ValueError(
            f"The dataset's encoder length varies (`min_encoder_length={dataset.min_encoder_length}`, "
            f"`max_encoder_length={dataset.max_encoder_length}`); TimesCLIP sees fixed windows: make them equal."
        )
    if dataset.min_prediction_length != dataset.max_prediction_length:
        raise ValueError(
            f"The dataset's prediction length varies (`min_prediction_length={dataset.min_prediction_length}`, "
            f"`max_prediction_length={dataset.max_prediction_length}`); TimesCLIP forecasts a fixed horizon: make "
            "them equal."
        )
    if dataset.randomize_length is not None:
        raise ValueError(
            f"`randomize_length={dataset.randomize_length}` varies the window lengths; TimesCLIP sees fixed windows: "
            "pass `randomize_length=None`."
        )
    if dataset.add_relative_time_idx:
        raise ValueError(
            "`add_relative_time_idx=True` adds the same ramp to every window, which carries nothing once TimesCLIP "
            "normalises each window; pass `add_relative_time_idx=False`."
        )
    _check_variables(
        dataset._static_categoricals + dataset._static_reals,
        dataset._time_varying_known_categoricals + dataset._time_varying_unknown_categoricals,
    )
    missing = [name for name in dataset.target_names if name not in dataset.reals]
    if missing:
        raise ValueError(
            f"Targets {missing} are not inputs of the dataset; TimesCLIP reads each target's past from the encoder: "
            "list them in the `TimeSeriesDataSet`'s `time_varying_unknown_reals`."
        )
