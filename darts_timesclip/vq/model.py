"""``VQTransformerModel``: a VQ-VAE tokenizer and a causal Transformer over its codes, as a Darts torch model."""

from __future__ import annotations

import logging
from typing import Any

import torch
from darts import TimeSeries
from darts.models.forecasting.pl_forecasting_module import PLForecastingModule, io_processor
from darts.models.forecasting.torch_forecasting_model import PastCovariatesTorchModel
from darts.utils.data import SequentialTorchTrainingDataset
from darts.utils.data.torch_datasets.utils import PLModuleInput, PLModuleOutput, TorchTrainingSample
from darts.utils.serialization import add_safe_globals
from darts.utils.torch import random_method
from torch.utils.data import Dataset

from darts_timesclip.checked_model import CheckedInputsMixin, SeriesLike
from darts_timesclip.config_options import document_parameters
from darts_timesclip.likelihoods import affine_parameter_kinds
from darts_timesclip.validation import as_series_list
from darts_timesclip.vq.config import VQTransformerConfig
from darts_timesclip.vq.network import VQTransformerNetwork
from darts_timesclip.vq.stages import STAGES, ChannelWindows, StageHistory, concat_windows, run_stage

logger = logging.getLogger(__name__)


class _VQTransformerModule(PLForecastingModule):
    """Lightning module of the fine-tune: Darts' forecast loss over :class:`VQTransformerNetwork`'s forecast.

    Parameters
    ----------
    config
        :meth:`VQTransformerConfig.to_dict` output with every size resolved (a plain dictionary, so that
        Lightning checkpoints rebuild the module).
    **kwargs
        The arguments of ``PLForecastingModule``.
    """

    def __init__(self, config: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = VQTransformerConfig.from_dict(config)
        self.network = VQTransformerNetwork(self.config)

    @io_processor
    def forward(self, x_in: PLModuleInput) -> PLModuleOutput:
        return PLModuleOutput(prediction=self.network(x_in.concatenate_past_features()))


class VQTransformerModel(CheckedInputsMixin, PastCovariatesTorchModel):
    @document_parameters({"{vq_parameters}": VQTransformerConfig.parameters_doc})
    def __init__(
        self,
        input_chunk_length: int,
        output_chunk_length: int,
        output_chunk_shift: int = 0,
        **kwargs: Any,
    ) -> None:
        """A VQ-VAE tokenizer and a causal Transformer pretrained on its codes, fine-tuned to forecast.

        Channel independent: every target variate is forecast from its own past (past covariates inform every
        target through one linear projection). Each input window is instance-normalised per variate (RevIN
        without affine parameters) and the forecast returned to the original scale. Training runs three stages:

        1. **tokenizer** (``tokenizer_epochs``): a convolutional VQ-VAE learns to reconstruct windows through a
           codebook of ``codebook_size`` codes, one per ``compression`` steps; the codebook is updated by
           exponential moving averages and unused codes are restarted (logged: ``tokenizer_loss``,
           ``tokenizer_reconstruction_loss``, ``tokenizer_perplexity``, ``tokenizer_codebook_usage``);
        2. **pretrain** (``pretrain_epochs``): a causal Transformer learns next-token prediction over the codes of
           whole training windows (``pretrain_loss``, cross-entropy; ``pretrain_accuracy``);
        3. **fine-tune** (``n_epochs``): the forecast runs through the pretrained Transformer (its next-token head
           weighs the code vectors of the forecast span) and the VQ-VAE decoder, trained with the forecast loss
           (``train_loss``). What it trains is Darts' ``enable_finetuning`` (default: everything).

        ``fit`` runs the stages that have not run yet. :meth:`pretrain` runs the first two alone, on any series
        (any number of variates), so that a tokenizer and Transformer pretrained on many series can be fine-tuned
        on a target by a later ``fit``. Stages 1 and 2 use AdamW at ``pretrain_lr``; stage 3 uses
        ``optimizer_cls`` / ``optimizer_kwargs`` and the scheduler as any Darts model. :attr:`stage_history` holds
        the epoch means of stages 1 and 2.

        The defaults are the original scripts' (codebook 256, compression 4, ``d_model`` 128, 3 layers, 8 heads,
        ``d_ff`` 256, dropout 0.1; TOTEM's code width 64 and tokenizer width 128 [1]_), with the context of 512
        steps (128 tokens) scaled to the input window.

        Parameters
        ----------
        input_chunk_length
            Number of past time steps per window.
        output_chunk_length
            Number of time steps forecast at once.
        output_chunk_shift
            Steps between the end of the input window and the start of the forecast. Default: ``0``.
        {vq_parameters}
        **kwargs
            Every other argument of :class:`darts.models.forecasting.torch_forecasting_model.TorchForecastingModel`
            (``batch_size``, ``n_epochs``, ``loss_fn``, ``likelihood``, ``optimizer_kwargs``,
            ``enable_finetuning``, ``pl_trainer_kwargs``, ``random_state``, ...). ``enable_finetuning`` chooses
            what the fine-tune trains, by parameter-name patterns of the Lightning module, e.g.
            ``{"freeze": ["network.tokenizer.*"]}`` or ``{"unfreeze": ["network.transformer.*",
            "network.parameter_head.*"]}``. Likelihoods: ``QuantileRegression``, ``GaussianLikelihood``,
            ``LaplaceLikelihood``, ``CauchyLikelihood``, ``GumbelLikelihood``.

        References
        ----------
        .. [1] S. Talukder, Y. Yue, G. Gkioxari. "TOTEM: TOkenized Time Series EMbeddings for General Time Series
               Analysis", TMLR 2024, https://arxiv.org/abs/2402.16412

        Examples
        --------
        >>> from darts.datasets import ETTh1Dataset
        >>> from darts_timesclip import VQTransformerModel
        >>> series = ETTh1Dataset().load().astype("float32")  # doctest: +SKIP
        >>> model = VQTransformerModel(96, 96, tokenizer_epochs=2, pretrain_epochs=2, n_epochs=2)
        >>> model.fit(series)  # doctest: +SKIP
        >>> forecast = model.predict(96)  # doctest: +SKIP
        """
        config_kwargs, _ = VQTransformerConfig.split_kwargs(kwargs)
        darts_params = self._trainer_defaults({k: v for k, v in self.model_params.items() if k not in config_kwargs})
        super().__init__(**self._extract_torch_model_params(**darts_params))
        self.pl_module_params = self._extract_pl_module_params(**darts_params)
        if kwargs.get("use_reversible_instance_norm"):
            raise ValueError(
                "`use_reversible_instance_norm` must be False: VQTransformerModel normalises every window itself."
            )
        if kwargs.get("enable_finetuning") is False:
            raise ValueError(
                "`enable_finetuning=False` would train nothing (trainable parameters: 0): the forecast queries and "
                "head of VQTransformerModel must be fine-tuned. Freeze parts instead, e.g. "
                "`enable_finetuning={'freeze': ['network.tokenizer.*']}`."
            )
        #: Every hyperparameter of the network and its pretraining stages; the variate counts are set from the
        #: training series in ``_create_model``.
        self.config = VQTransformerConfig(
            input_chunk_length=input_chunk_length,
            output_chunk_length=output_chunk_length,
            output_chunk_shift=output_chunk_shift,
            parameter_kinds=affine_parameter_kinds(self.likelihood, "VQTransformerModel"),
            **config_kwargs,
        )
        #: Epoch means of the tokenizer and pretraining stages' logged values, in the order they ran.
        self.stage_history = StageHistory()
        #: Weights from :meth:`pretrain` that the network built by ``fit`` starts from (``None`` without).
        self.pretrained_state: dict[str, torch.Tensor] | None = None

    def _create_model(self, train_sample: TorchTrainingSample) -> _VQTransformerModule:
        covariates = train_sample.past_covariates
        config = self.config.replace(
            n_targets=train_sample.past_target.shape[1],
            n_past_covariates=covariates.shape[1] if covariates is not None else 0,
        )
        module = _VQTransformerModule(config=config.to_dict(), **self.pl_module_params)
        if self.pretrained_state is not None:
            module.network.load_pretrained_state(self.pretrained_state)
            logger.info("VQTransformerModel: starting from the pretrained tokenizer and Transformer.")
        return module

    # ------------------------------------------------------------------ the stages
    def _stage_seed(self) -> int:
        # inside `fit` / `pretrain` (both `@random_method`), torch's generator is seeded from `random_state`
        return int(torch.randint(0, 2**31 - 1, (1,)))

    def _run_stages(self, network: VQTransformerNetwork, windows: Any, force: bool) -> None:
        epochs = {"tokenizer": self.config.tokenizer_epochs, "pretrain": self.config.pretrain_epochs}
        for i, stage in enumerate(STAGES):
            if bool(network.stages_done[i]) and not force:
                continue
            run_stage(
                network,
                stage,
                windows,
                epochs=epochs[stage],
                batch_size=self.batch_size,
                lr=self.config.pretrain_lr,
                trainer_kwargs=self.trainer_params,
                history=self.stage_history,
                seed=self._stage_seed(),
            )

    def _train(self, trainer: Any, model: _VQTransformerModule, datamodule: Any, load_best: bool = False) -> None:
        """Run the stages that have not run yet, then Darts' training (the fine-tune)."""
        network = model.network
        if not bool(network.stages_done.all()):
            self._run_stages(network, ChannelWindows(datamodule.train_dataset, self.config.output_chunk_shift), False)
        self._setup_finetuning(model)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if trainable == 0:
            raise ValueError(
                f"`enable_finetuning={self.enable_finetuning!r}` leaves no parameter to train (trainable "
                "parameters: 0); unfreeze some, e.g. `enable_finetuning={'unfreeze': ['network.transformer.*']}`."
            )
        total = sum(p.numel() for p in model.parameters())
        logger.info("VQTransformerModel fine-tune: %d of %d parameters trainable.", trainable, total)
        super()._train(trainer, model, datamodule, load_best)

    def _standalone_network(self) -> VQTransformerNetwork:
        """A one-variate network for stages 1-2 outside ``fit``, starting from :attr:`pretrained_state` if any."""
        network = VQTransformerNetwork(self.config.replace(n_targets=1))
        if self.pretrained_state is not None:
            network.load_pretrained_state(self.pretrained_state)
        return network

    def _univariate_windows(self, series: list[TimeSeries], max_samples_per_ts: int | None) -> Dataset:
        """Every variate of every series as univariate ``L + shift + H`` windows (see :class:`ChannelWindows`)."""
        return concat_windows(
            ChannelWindows(
                SequentialTorchTrainingDataset(
                    ts.univariate_component(i),
                    input_chunk_length=self.input_chunk_length,
                    output_chunk_length=self.output_chunk_length,
                    output_chunk_shift=self.output_chunk_shift,
                    max_samples_per_ts=max_samples_per_ts,
                    use_static_covariates=False,
                ),
                self.output_chunk_shift,
            )
            for ts in series
            for i in range(ts.n_components)
        )

    @random_method
    def pretrain(
        self,
        series: SeriesLike,
        max_samples_per_ts: int | None = None,
    ) -> VQTransformerModel:
        """Run the tokenizer and next-token stages alone, on series of any number of variates.

        Every variate of every series is a sample (the stages are channel independent). A later ``fit`` builds the
        forecasting network from these weights and runs the fine-tune only, on series that may have other
        variates. Called on a fitted model, it pretrains that model's network further.

        Parameters
        ----------
        series
            One or several series, each at least ``input_chunk_length + output_chunk_shift + output_chunk_length``
            steps long.
        max_samples_per_ts
            At most this many (the most recent) windows per variate. Default: ``None`` (all).

        Returns
        -------
        VQTransformerModel
            This model, pretrained.

        Raises
        ------
        ValueError
            For no series, NaN / inf values or a series shorter than one window.
        """
        series_list = as_series_list(series)
        if not series_list:
            raise ValueError("`series` is empty: `pretrain` needs at least one series.")
        window = self.input_chunk_length + self.output_chunk_shift + self.output_chunk_length
        self._check_inputs(series, None, window, "one pretraining window", check_trained=False)
        windows = self._univariate_windows(series_list, max_samples_per_ts)
        network = self.model.network if self.model is not None else self._standalone_network()
        self._run_stages(network, windows, force=True)
        self.pretrained_state = network.pretrained_state()
        return self

    def codebook_usage(self, series: SeriesLike, max_samples_per_ts: int | None = None) -> dict[str, float]:
        """How many codes the model's tokenizer uses on the windows of ``series``, and how well it reconstructs them.

        The tokenizer is the model's current one: after ``fit`` the fine-tuned one (unless ``enable_finetuning``
        froze it), after :meth:`pretrain` alone the pretrained one.

        Returns
        -------
        dict
            ``perplexity`` (the effective number of codes, ``exp`` of the code entropy), ``used`` (codes used at
            least once), ``codebook_size`` and ``reconstruction_mse`` (normalised scale).
        """
        if self.model is None and self.pretrained_state is None:
            raise ValueError("`codebook_usage` needs a fitted or pretrained model; call `fit()` or `pretrain()` first.")
        window = self.input_chunk_length + self.output_chunk_shift + self.output_chunk_length
        self._check_inputs(series, None, window, "one window", check_trained=False)
        network = self.model.network if self.model is not None else self._standalone_network()
        windows = self._univariate_windows(as_series_list(series), max_samples_per_ts)
        parameter = next(network.parameters())
        counts = torch.zeros(self.config.codebook_size, dtype=torch.float64)
        squared_error, n_values = 0.0, 0
        was_training = network.training
        network.eval()
        try:
            with torch.no_grad():
                for batch in torch.utils.data.DataLoader(windows, batch_size=max(self.batch_size, 256)):
                    sequences = network.sequences(batch.to(parameter.device, parameter.dtype))
                    reconstruction, quantised = network.tokenizer(sequences)
                    counts += torch.bincount(quantised.codes.flatten().cpu(), minlength=counts.numel()).double()
                    squared_error += float(((reconstruction - sequences) ** 2).sum())
                    n_values += sequences.numel()
        finally:
            network.train(was_training)
        probs = counts / counts.sum()
        entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
        return {
            "perplexity": float(entropy.exp()),
            "used": int((counts > 0).sum()),
            "codebook_size": self.config.codebook_size,
            "reconstruction_mse": squared_error / max(n_values, 1),
        }


# `VQTransformerModel.load` works without `trusted=True` (Darts' restricted unpickler)
add_safe_globals([VQTransformerModel, VQTransformerConfig, StageHistory])
