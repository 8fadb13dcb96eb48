"""``TimesCLIPRegressor``: one number (or several) per series, from a TimesCLIP encoder, as a scikit-learn estimator."""

from __future__ import annotations

import copy
import logging
import os
import pickle
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils import Tags, check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from darts_timesclip._io import atomic_path
from darts_timesclip.network import TimesCLIPConfig, TimesCLIPNetwork, instance_normalize
from darts_timesclip.regression.head import RegressionHead, variate_features
from darts_timesclip.regression.inputs import as_sample_arrays, as_targets, check_samples, length_groups

if TYPE_CHECKING:
    from darts_timesclip.model import TimesCLIPModel

logger = logging.getLogger(__name__)

#: Network parts the regressor never trains: the forecaster's generator and its learnt loss weights.
_UNUSED_PREFIXES = ("generator.", "loss_weighting.")


class TimesCLIPRegressor(RegressorMixin, BaseEstimator):
    """Series-level regression over TimesCLIP's two views of a series, in scikit-learn's conventions.

    Each sample is one multivariate series (a season of satellite indices, a day of weather readings); the target
    is one number per sample, or a few. A TimesCLIP encoder turns each variate into its numeric and image tokens
    and the variate-selection token; a small head pools them per variate, joins the variates and predicts the
    targets. The encoder is either a fitted :class:`~darts_timesclip.TimesCLIPModel` (a forecaster trained on
    windows of the same kind of series), whose towers and variate selection are reused, or a fresh
    :class:`~darts_timesclip.network.TimesCLIPNetwork`. Training runs in up to two stages:

    - ``freeze_encoder=True``: the encoder is frozen (evaluation mode); its features are computed once and the head
      alone is trained for ``n_epochs`` (stage 2). ``freeze_encoder=False`` trains head and encoder together from
      the start (the encoder at ``finetune_lr``).
    - ``finetune_epochs > 0``: the encoder is then unfrozen and trained with the head for ``finetune_epochs``
      epochs, both at ``finetune_lr`` (stage 3). Parts the encoder keeps frozen by its own config (the CLIP
      vision tower with ``freeze_vision=True``) stay frozen.

    While the encoder trains, the loss is the mean squared error of the standardised targets plus
    ``alignment_weight`` times the encoder's contrastive loss between its two views.

    Series may be of any length from one patch (``patch_length``) up to what the numeric tower's positions allow,
    also longer than the windows the encoder was trained on; lengths may differ between samples. Samples are
    batched by length (no padding, no mask): every batch holds series of one length, so every series is encoded
    exactly as it would be alone. Each window is instance-normalised as the forecaster does; each variate's mean and
    log standard deviation join its tokens (standardised over the training samples), as normalisation hides them.
    Targets are standardised inside; :meth:`predict` returns the original scale.

    ``X`` is a collection of series: an array ``[n_samples, length]`` holds one univariate series per row (aeon's
    convention), ``[n_samples, length, n_variates]`` one multivariate series per sample; a list of ``TimeSeries``
    (or of arrays ``[length, n_variates]``) may mix lengths. The estimator follows scikit-learn's rules: ``clone``,
    ``set_params``, pipelines and model selection work, and it passes scikit-learn's estimator checks except those
    written for a fixed number of tabular columns (``tests/test_regression_sklearn.py`` lists them).

    Parameters
    ----------
    encoder
        A fitted :class:`~darts_timesclip.TimesCLIPModel` whose network is reused (deep-copied at ``fit``: the
        model itself is never changed), or ``None`` for a fresh network built from ``encoder_params``.
        Default: ``None``.
    encoder_params
        For a fresh encoder (``encoder=None``): the hyperparameters of
        :class:`~darts_timesclip.network.TimesCLIPConfig`, as :class:`~darts_timesclip.TimesCLIPModel` takes them
        (e.g. ``{"backbone": "compact", "patch_length": 8}``); ``None`` uses their defaults. Refused with an
        ``encoder``, whose own config applies. Default: ``None``.
    freeze_encoder
        Train the head only in the first stage. Default: ``True``.
    finetune_epochs
        Epochs of the second stage, which trains the encoder too; ``0`` skips it. Default: ``0``.
    finetune_lr
        Learning rate of the encoder whenever it trains, and of the head in stage 3. Default: ``1e-4``.
    alignment_weight
        Weight of the contrastive alignment loss while the encoder trains; ``0`` turns it off. Needs an encoder
        with alignment (``use_alignment=True``) where the encoder trains. Default: ``0.1``.
    hidden_size
        Width of the head. Default: ``64``.
    head_dropout
        Dropout of the head. Default: ``0.1``.
    n_epochs
        Epochs of the first stage. Default: ``20``.
    batch_size
        Series per batch. Default: ``32``.
    lr
        Learning rate of the head (AdamW). Default: ``1e-3``.
    weight_decay
        AdamW's weight decay, head and encoder. Default: ``1e-2``.
    validation_fraction
        Share of the training samples held out for early stopping; ``0`` trains on all of them for every epoch.
        Default: ``0.0``.
    patience
        With a validation share: epochs without a better validation loss before a stage stops; each stage ends on
        its best epoch's weights (or its starting weights, where no epoch beat them). Default: ``5``.
    random_state
        Seed of the weights, the shuffling, the validation split and dropout (``None``: drawn from NumPy's global
        generator). With a seed, ``fit`` is deterministic on a given machine. Default: ``None``.
    device
        Torch device of training and prediction. Default: ``"cpu"``.
    verbose
        Log every epoch's losses at INFO level. Default: ``False``.

    Attributes
    ----------
    network_
        The encoder (a :class:`~darts_timesclip.network.TimesCLIPNetwork`, the regressor's own copy).
    head_
        The :class:`~darts_timesclip.regression.head.RegressionHead`.
    n_variates_, n_targets_
        Variates per series and targets per sample seen at ``fit``.
    y_ndim_
        Dimensions of ``y`` at ``fit`` (1 or 2): :meth:`predict` returns the same.
    y_mean_, y_scale_, level_mean_, level_scale_
        The standardisation of the targets and of the variates' levels, from the training samples.
    history_
        One dictionary per epoch: ``stage`` (``"head"``, ``"joint"`` or ``"finetune"``), ``epoch``, ``train_loss``
        and ``val_loss`` (``None`` without a validation share), on standardised targets.

    Examples
    --------
    >>> import numpy as np
    >>> from darts_timesclip.regression import TimesCLIPRegressor
    >>> X = np.random.default_rng(0).normal(size=(64, 36, 3)).astype("float32")
    >>> y = X[:, :, 0].mean(axis=1)
    >>> regressor = TimesCLIPRegressor(encoder_params={"backbone": "tiny"}, n_epochs=2, random_state=0).fit(X, y)
    >>> regressor.predict(X[:2]).shape
    (2,)
    """

    def __init__(
        self,
        encoder: TimesCLIPModel | None = None,
        encoder_params: dict[str, Any] | None = None,
        freeze_encoder: bool = True,
        finetune_epochs: int = 0,
        finetune_lr: float = 1e-4,
        alignment_weight: float = 0.1,
        hidden_size: int = 64,
        head_dropout: float = 0.1,
        n_epochs: int = 20,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        validation_fraction: float = 0.0,
        patience: int = 5,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        verbose: bool = False,
    ) -> None:
        self.encoder = encoder
        self.encoder_params = encoder_params
        self.freeze_encoder = freeze_encoder
        self.finetune_epochs = finetune_epochs
        self.finetune_lr = finetune_lr
        self.alignment_weight = alignment_weight
        self.hidden_size = hidden_size
        self.head_dropout = head_dropout
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    # ------------------------------------------------------------------------------------------ scikit-learn
    def __sklearn_clone__(self) -> TimesCLIPRegressor:
        # Clones share the `encoder` rather than deep-copy it: a deep copy of a Darts model drops its trained weights
        # (Darts leaves the Lightning module out of its pickled state), and `fit` never changes the encoder.
        params = self.get_params(deep=False)
        encoder = params.pop("encoder")
        return type(self)(encoder=encoder, **{k: clone(v, safe=False) for k, v in params.items()})

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # [n_samples, length]: univariate series
        tags.input_tags.three_d_array = True  # [n_samples, length, n_variates]
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        return tags

    # ------------------------------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> TimesCLIPRegressor:
        """Train the head (and, as configured, the encoder) on series ``X`` and targets ``y``.

        Parameters
        ----------
        X
            An array ``[n_samples, length]`` (one univariate series per row) or ``[n_samples, length, n_variates]``,
            or a sequence of ``TimeSeries`` (one multivariate series per sample) or of arrays ``[length,
            n_variates]``.
        y
            Targets ``[n_samples]`` or ``[n_samples, n_targets]``.

        Returns
        -------
        TimesCLIPRegressor
            The fitted estimator (``self``).

        Raises
        ------
        ValueError
            For NaN / inf in ``X`` or ``y``, ``len(X) != len(y)``, a series shorter than one patch or too long for
            the numeric tower, a variate count that differs from the encoder's or between samples, an unfitted or
            foreign ``encoder``, or an invalid hyperparameter.
        TypeError
            For a sparse ``X`` or ``y``.
        """
        self._check_hyperparameters()
        samples = as_sample_arrays(X)
        targets = as_targets(y, len(samples))
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        device = torch.device(self.device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            self._fit(samples, targets, np.random.default_rng(seed), device)
        return self

    def _check_hyperparameters(self) -> None:
        for name in ("n_epochs", "finetune_epochs", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"`{name}` must be a non-negative integer, got `{value!r}`.")
        for name in ("batch_size", "hidden_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got `{value!r}`.")
        for name in ("lr", "finetune_lr"):
            if not (isinstance(getattr(self, name), (int, float)) and getattr(self, name) > 0):
                raise ValueError(f"`{name}` must be > 0, got `{getattr(self, name)!r}`.")
        for name, upper in (("weight_decay", np.inf), ("alignment_weight", np.inf), ("head_dropout", 1.0)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < upper):
                raise ValueError(f"`{name}` must be a number in [0, {upper}), got `{value!r}`.")
        if not (isinstance(self.validation_fraction, (int, float)) and 0 <= self.validation_fraction < 1):
            raise ValueError(f"`validation_fraction` must be in [0, 1), got `{self.validation_fraction!r}`.")
        if self.n_epochs == 0 and self.finetune_epochs == 0:
            raise ValueError("`n_epochs=0` and `finetune_epochs=0` leave nothing to train.")
        self._encoder_config_kwargs()

    def _encoder_config_kwargs(self) -> dict[str, Any]:
        """``encoder_params``, checked: TimesCLIPConfig's keyword arguments for a fresh encoder."""
        params = self.encoder_params
        if params is None:
            return {}
        if not isinstance(params, Mapping):
            raise ValueError(
                f"`encoder_params` must be a dict of TimesCLIPConfig's parameters or None, got `{params!r}`."
            )
        config_kwargs, unknown = TimesCLIPConfig.split_kwargs(params)
        if unknown:
            raise ValueError(
                f"`encoder_params` has unknown key(s) {sorted(unknown)}; a fresh encoder takes TimesCLIPConfig's "
                f"parameters: {', '.join(TimesCLIPConfig.public_parameters())}."
            )
        if self.encoder is not None and config_kwargs:
            raise ValueError(
                f"`encoder_params={dict(params)!r}` configures a fresh encoder and is not used with `encoder=`; the "
                "encoder's own config applies. Leave it out, or pass `encoder=None`."
            )
        return config_kwargs

    def _build_network(self, samples: list[np.ndarray]) -> tuple[TimesCLIPNetwork, int, str]:
        """The regressor's own encoder, the variate count it takes, and where that count comes from."""
        if self.encoder is None:
            config_kwargs = self._encoder_config_kwargs()
            # a window of one patch validates the settings; the generator it sizes is never used
            patch_length = config_kwargs.get("patch_length", TimesCLIPConfig.patch_length)  # the field's default
            config = TimesCLIPConfig(input_chunk_length=max(2, patch_length), output_chunk_length=1, **config_kwargs)
            check_samples(samples, samples[0].shape[1], "`X[0]` has", *self._length_limits(config))
            config = config.replace(input_chunk_length=max(len(s) for s in samples))
            network = TimesCLIPNetwork(config)
            network.load_pretrained_backbone()
            return network, samples[0].shape[1], "`X[0]` has"

        from darts_timesclip.model import TimesCLIPModel

        if not isinstance(self.encoder, TimesCLIPModel):
            raise ValueError(f"`encoder` must be a fitted TimesCLIPModel or None, got {type(self.encoder).__name__}.")
        if self.encoder.model is None:
            raise ValueError(
                "`encoder` is a TimesCLIPModel without trained weights; call its `fit()` first (or load a fitted one; "
                "a deep copy or a pickle of a Darts model leaves its weights behind)."
            )
        n_target, n_cov = self.encoder.trained_component_counts
        n_variates = n_target + (n_cov or 0)
        return copy.deepcopy(self.encoder.model.network).float(), n_variates, "the encoder was trained on"

    @staticmethod
    def _length_limits(config: TimesCLIPConfig) -> tuple[int, int | None, str]:
        limits = f"`patch_length={config.patch_length}`, `patch_stride={config.patch_stride}`"
        return config.min_input_length, config.max_input_length, limits

    def _fit(self, samples: list[np.ndarray], targets: np.ndarray, rng: np.random.Generator, device: torch.device):
        network, n_variates, whose = self._build_network(samples)
        check_samples(samples, n_variates, whose, *self._length_limits(network.config))
        trains_encoder = not self.freeze_encoder or self.finetune_epochs > 0
        if trains_encoder and self.alignment_weight > 0 and network.alignment is None:
            raise ValueError(
                f"`alignment_weight={self.alignment_weight}` needs an encoder with alignment (`use_alignment=True`); "
                "pass `alignment_weight=0`."
            )
        # what the encoder's own config trains (not the frozen CLIP vision tower, not the unused token embedding)
        trainable = [
            name for name, p in network.named_parameters() if p.requires_grad and not name.startswith(_UNUSED_PREFIXES)
        ]
        network.requires_grad_(False).to(device).eval()
        self.network_ = network
        self.n_variates_ = n_variates
        self.n_targets_ = 1 if targets.ndim == 1 else targets.shape[1]
        self.y_ndim_ = targets.ndim
        matrix = targets.reshape(len(targets), -1)
        self.y_mean_ = matrix.mean(axis=0)
        self.y_scale_ = np.where(matrix.std(axis=0) > 0, matrix.std(axis=0), 1.0)
        levels = self._levels(samples)
        self.level_mean_ = levels.mean(axis=0)
        self.level_scale_ = np.where(levels.std(axis=0) > 0, levels.std(axis=0), 1.0)

        data = _Data(samples, torch.as_tensor((matrix - self.y_mean_) / self.y_scale_, dtype=torch.float32))
        order = rng.permutation(len(samples))
        n_val = int(round(self.validation_fraction * len(samples)))
        if self.validation_fraction > 0 and not 1 <= n_val < len(samples):
            raise ValueError(
                f"`validation_fraction={self.validation_fraction}` of {len(samples)} samples leaves "
                f"{n_val} for validation; it needs at least one, and one for training."
            )
        train_idx, val_idx = np.sort(order[n_val:]), np.sort(order[:n_val])
        config = network.config
        token_dim = config.width * (2 * config.use_numeric + config.use_vision + 1)  # see `variate_features`
        self.head_ = RegressionHead(n_variates, token_dim, self.n_targets_, self.hidden_size, self.head_dropout)
        self.head_.to(device)
        self.history_: list[dict[str, Any]] = []

        if self.n_epochs > 0 and self.freeze_encoder:
            self._train_head(data, train_idx, val_idx, rng)
        elif self.n_epochs > 0:
            self._train_jointly("joint", self.n_epochs, trainable, data, train_idx, val_idx, rng)
        if self.finetune_epochs > 0:
            self._train_jointly("finetune", self.finetune_epochs, trainable, data, train_idx, val_idx, rng)
        self.network_.requires_grad_(False).eval()
        self.head_.eval()

    def _levels(self, samples: list[np.ndarray]) -> np.ndarray:
        """``[n, V, 2]`` instance mean and log standard deviation of every sample's variates, as the encoder sees
        them (:func:`~darts_timesclip.network.instance_normalize`)."""
        out = np.empty((len(samples), samples[0].shape[1], 2))
        for _, members in length_groups(samples).items():
            _, stats = instance_normalize(torch.as_tensor(np.stack([samples[i] for i in members])))
            out[members, :, 0] = stats.mean[:, 0].numpy()
            out[members, :, 1] = stats.std[:, 0].log().numpy()
        return out

    # ------------------------------------------------------------------------------------------ training
    def _features(
        self, encoding_input: torch.Tensor, with_alignment: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[B, L, V]`` series -> head output ``[B, n_targets]`` (standardised) and, when asked, the alignment loss."""
        encoding = self.network_.encode(encoding_input)
        tokens, levels = variate_features(encoding)
        prediction = self.head_(tokens, self._standardise_levels(levels))
        alignment = None
        if with_alignment and encoding_input.shape[0] > 1:
            alignment = self.network_.alignment(encoding.image, encoding.text)
        return prediction, alignment

    def _standardise_levels(self, levels: torch.Tensor) -> torch.Tensor:
        mean = torch.as_tensor(self.level_mean_, dtype=levels.dtype, device=levels.device)
        scale = torch.as_tensor(self.level_scale_, dtype=levels.dtype, device=levels.device)
        return (levels - mean) / scale

    def _train_head(self, data: _Data, train_idx: np.ndarray, val_idx: np.ndarray, rng: np.random.Generator) -> None:
        """Stage 2: the frozen encoder's features are computed once; the head trains on them."""
        device = next(self.head_.parameters()).device
        tokens, levels = self._encode_all(data.samples, device)
        levels = self._standardise_levels(levels)
        optimizer = torch.optim.AdamW(self.head_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        target = data.targets.to(device)

        def run_epoch() -> float:
            self.head_.train()
            total = 0.0
            for batch in _batches(train_idx, self.batch_size, rng):
                loss = F.mse_loss(self.head_(tokens[batch], levels[batch]), target[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(batch)
            return total / len(train_idx)

        def validate() -> float:
            self.head_.eval()
            with torch.no_grad():
                return float(F.mse_loss(self.head_(tokens[val_idx], levels[val_idx]), target[val_idx]))

        self._run_stage("head", self.n_epochs, run_epoch, validate if len(val_idx) else None, [self.head_])

    def _train_jointly(
        self,
        stage: str,
        epochs: int,
        trainable: list[str],
        data: _Data,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """Head and encoder (its parameters named ``trainable``) together, the encoder at ``finetune_lr``
        (``joint``: from the start; ``finetune``: stage 3)."""
        network, head = self.network_, self.head_
        device = next(head.parameters()).device
        named = dict(network.named_parameters())
        encoder_parameters = [named[name] for name in trainable]
        for p in encoder_parameters:
            p.requires_grad_(True)
        # stage 3 fine-tunes everything at `finetune_lr` (a head trained at `lr` would drift from the features it
        # was fitted to); a joint run from the start trains the new head at `lr`
        head_lr = self.finetune_lr if stage == "finetune" else self.lr
        optimizer = torch.optim.AdamW(
            [{"params": list(head.parameters()), "lr": head_lr}, {"params": encoder_parameters}],
            lr=self.finetune_lr,
            weight_decay=self.weight_decay,
        )
        with_alignment = self.alignment_weight > 0 and network.alignment is not None

        def run_epoch() -> float:
            network.train()
            head.train()
            total = 0.0
            for _, batch in _length_batches(data.samples, train_idx, self.batch_size, rng):
                x = torch.as_tensor(np.stack([data.samples[i] for i in batch]), device=device)
                prediction, alignment = self._features(x, with_alignment)
                loss = F.mse_loss(prediction, data.targets[batch].to(device))
                total += float(loss.detach()) * len(batch)
                if alignment is not None:
                    loss = loss + self.alignment_weight * alignment
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            return total / len(train_idx)

        def validate() -> float:
            prediction = self._predict_standardised([data.samples[i] for i in val_idx], device)
            return float(F.mse_loss(prediction, data.targets[val_idx].to(device)))

        try:
            self._run_stage(stage, epochs, run_epoch, validate if len(val_idx) else None, [head, network])
        finally:
            for p in encoder_parameters:
                p.requires_grad_(False)

    def _run_stage(self, stage: str, epochs: int, run_epoch, validate, modules: list[nn.Module]) -> None:
        """Epochs of one stage with early stopping on the validation loss: the stage ends on the weights of its best
        epoch, or on those it started from where no epoch beat them."""
        best, best_state, waited = np.inf, None, 0
        if validate is not None:
            best, best_state = validate(), [copy.deepcopy(m.state_dict()) for m in modules]
        for epoch in range(epochs):
            train_loss = run_epoch()
            val_loss = validate() if validate is not None else None
            self.history_.append({"stage": stage, "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
            if self.verbose:
                logger.info("%s epoch %d: train loss %.4f, val loss %s", stage, epoch, train_loss, val_loss)
            if val_loss is None:
                continue
            if val_loss < best:
                best, waited = val_loss, 0
                best_state = [copy.deepcopy(m.state_dict()) for m in modules]
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best_state is not None:
            for module, state in zip(modules, best_state):
                module.load_state_dict(state)

    # ------------------------------------------------------------------------------------------ prediction
    def _encode_all(self, samples: list[np.ndarray], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen encoder features of every sample: ``tokens [n, V, F]``, ``levels [n, V, 2]`` (raw)."""
        self.network_.eval()
        tokens: torch.Tensor | None = None
        levels: torch.Tensor | None = None
        with torch.no_grad():
            for _, batch in _length_batches(samples, np.arange(len(samples)), self.batch_size, None):
                x = torch.as_tensor(np.stack([samples[i] for i in batch]), device=device)
                t, lv = variate_features(self.network_.encode(x))
                if tokens is None:
                    tokens = t.new_empty((len(samples), *t.shape[1:]))
                    levels = lv.new_empty((len(samples), *lv.shape[1:]))
                tokens[batch], levels[batch] = t, lv
        return tokens, levels

    def _predict_standardised(self, samples: list[np.ndarray], device: torch.device) -> torch.Tensor:
        self.network_.eval()
        self.head_.eval()
        out = torch.empty((len(samples), self.n_targets_), device=device)
        with torch.no_grad():
            for _, batch in _length_batches(samples, np.arange(len(samples)), self.batch_size, None):
                x = torch.as_tensor(np.stack([samples[i] for i in batch]), device=device)
                out[batch] = self._features(x)[0]
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Predict the targets of series ``X`` (same kinds as :meth:`fit`'s).

        Returns
        -------
        numpy.ndarray
            ``[n_samples]``, or ``[n_samples, n_targets]`` where ``fit`` was given 2-D targets; original scale.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before :meth:`fit`.
        ValueError
            For NaN / inf, a variate count other than at ``fit``, or a length the encoder cannot take.
        """
        check_is_fitted(self, "head_")
        samples = as_sample_arrays(X)
        limits = self._length_limits(self.network_.config)
        check_samples(samples, self.n_variates_, "the regressor was fitted on", *limits)
        device = next(self.head_.parameters()).device
        standardised = self._predict_standardised(samples, device).double().cpu().numpy()
        prediction = standardised * self.y_scale_ + self.y_mean_
        return prediction[:, 0] if self.y_ndim_ == 1 else prediction

    # ------------------------------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the estimator to ``path`` (pickle), atomically: a temporary file in the same folder, then a rename.

        The file holds the fitted encoder copy and head. The ``encoder`` argument is pickled as Darts pickles models,
        without its trained weights (predictions do not need them).
        """
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            pickle.dump(self, handle, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TimesCLIPRegressor:
        """Read an estimator written by :meth:`save`. Unpickling runs code: load only files you trust.

        Raises
        ------
        ValueError
            If the file holds something else than a ``TimesCLIPRegressor``.
        """
        with open(path, "rb") as handle:
            estimator = pickle.load(handle)
        if not isinstance(estimator, cls):
            raise ValueError(f"`{path}` holds a {type(estimator).__name__}, not a {cls.__name__}.")
        return estimator


class _Data:
    """Training samples (``[length, V]`` float32 arrays) and their standardised targets ``[n, n_targets]``."""

    def __init__(self, samples: list[np.ndarray], targets: torch.Tensor) -> None:
        self.samples = samples
        self.targets = targets


def _batches(indices: np.ndarray, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    shuffled = rng.permutation(indices)
    for start in range(0, len(shuffled), batch_size):
        yield shuffled[start : start + batch_size]


def _length_batches(
    samples: list[np.ndarray], indices: np.ndarray, batch_size: int, rng: np.random.Generator | None
) -> Iterator[tuple[int, np.ndarray]]:
    """Batches of ``indices`` whose series share one length; shuffled within and across lengths when ``rng``."""
    batches = []
    for length, members in length_groups(samples, indices).items():
        if rng is not None:
            members = rng.permutation(members)
        batches.extend((length, members[s : s + batch_size]) for s in range(0, len(members), batch_size))
    if rng is not None:
        batches = [batches[k] for k in rng.permutation(len(batches))]
    yield from batches
