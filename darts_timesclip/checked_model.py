"""Input checks that Darts itself does not make, shared by this package's Darts models.

:class:`CheckedInputsMixin` comes before Darts' model class in the bases (``class M(CheckedInputsMixin,
PastCovariatesTorchModel)``): ``fit``, ``predict``, ``historical_forecasts`` and the ``*_from_dataset`` methods reject
NaN / inf values, series too short for a window and component counts that differ from training, naming the series,
component and time, before Darts or torch see them. ``save`` writes Darts' two files atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darts import TimeSeries

from darts_timesclip._io import atomic_path, fsync_file
from darts_timesclip.extras import require_extra
from darts_timesclip.quiet import quiet_lightning, quiet_onnx_export
from darts_timesclip.serialization import missing_module_cause, portable_pandas_strings
from darts_timesclip.validation import (
    check_components,
    check_finite,
    check_inference_dataset,
    check_min_length,
    check_training_dataset,
)

if TYPE_CHECKING:
    from darts_timesclip.predictor import DirectPredictor

SeriesLike = TimeSeries | Sequence[TimeSeries]


class CheckedInputsMixin:
    """Checked ``fit`` / ``predict`` / ``historical_forecasts`` / ``*_from_dataset`` for a Darts torch model.

    Both models are multivariate and take no static covariates. Also keeps the component names of the training
    series (:attr:`target_components`, :attr:`past_covariate_components`) for services and exports. Subclasses may
    override :meth:`_prepare_for_dataset` to derive settings from the training data before the network is built.
    """

    target_components: list[str] | None = None
    past_covariate_components: list[str] | None = None

    @property
    def supports_static_covariates(self) -> bool:
        return False  # the networks see targets and past covariates only

    @property
    def supports_multivariate(self) -> bool:
        return True

    def _prepare_for_dataset(self, train_dataset: Any) -> None:
        """Hook called by ``fit_from_dataset`` before training (nothing by default)."""

    @staticmethod
    def _trainer_defaults(darts_params: dict[str, Any]) -> dict[str, Any]:
        """Darts' model parameters with this package's trainer defaults under the user's ``pl_trainer_kwargs``.

        Lightning's model summary table is off unless asked for (``pl_trainer_kwargs={"enable_model_summary":
        True}``): a fit shows a progress bar, or one line per epoch, and nothing else.
        """
        trainer_kwargs = {"enable_model_summary": False, **(darts_params.get("pl_trainer_kwargs") or {})}
        return {**darts_params, "pl_trainer_kwargs": trainer_kwargs}

    @property
    def is_fitted(self) -> bool:
        """Whether the model has trained weights: it was fitted, or loaded (or given weights) after a fit."""
        # Darts keeps this in a private attribute and offers no public accessor (0.48); this is the package's one
        # read of it, and `tests/test_darts_api.py` fails where Darts renames it or stops setting it at fit / load.
        return bool(self._fit_called)

    @property
    def trained_component_counts(self) -> tuple[int | None, int | None]:
        """Target and past-covariate components of the training series: ``(n_targets, n_past_covariates)``.

        ``n_past_covariates`` is ``None`` for a model trained without past covariates; both are ``None`` before
        the model has seen training data.
        """
        sample = self.train_sample
        if sample is None:
            return None, None
        cov = sample.past_covariates
        return sample.past_target.shape[1], (cov.shape[1] if cov is not None else None)

    # ------------------------------------------------------------------ input checks Darts does not make

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
            n_target, n_cov = self.trained_component_counts
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
    ) -> CheckedInputsMixin:
        """Fit the model; see :meth:`TorchForecastingModel.fit`. Rejects NaN / inf and too-short series."""
        window = self.input_chunk_length + self.output_chunk_shift + self.output_chunk_length
        self._check_inputs(series, past_covariates, window, "one training window", check_trained=False)
        self._check_inputs(val_series, val_past_covariates, window, "one validation window", check_trained=False)
        with quiet_lightning():
            return super().fit(
                series, past_covariates, future_covariates, val_series, val_past_covariates, *args, **kwargs
            )

    def predict(
        self, n: int, series: SeriesLike | None = None, past_covariates: SeriesLike | None = None, *args, **kwargs
    ) -> SeriesLike:
        """Forecast ``n`` steps; see :meth:`TorchForecastingModel.predict`. Rejects NaN / inf and mismatched series."""
        self._check_inputs(series, past_covariates, self.input_chunk_length, "the input window", check_trained=True)
        with quiet_lightning():
            return super().predict(n, series, past_covariates, *args, **kwargs)

    def historical_forecasts(
        self, series: SeriesLike, past_covariates: SeriesLike | None = None, *args: Any, **kwargs: Any
    ) -> TimeSeries | list[TimeSeries] | list[list[TimeSeries]]:
        """See :meth:`ForecastingModel.historical_forecasts`. Rejects NaN / inf and mismatched series."""
        retrain = kwargs.get("retrain", True)
        self._check_inputs(
            series, past_covariates, self.input_chunk_length, "the input window", check_trained=retrain is False
        )
        with quiet_lightning():
            return super().historical_forecasts(series, past_covariates, *args, **kwargs)

    def fit_from_dataset(
        self, train_dataset: Any, val_dataset: Any | None = None, *args: Any, **kwargs: Any
    ) -> CheckedInputsMixin:
        """See :meth:`TorchForecastingModel.fit_from_dataset`. Rejects NaN / inf and mismatched component counts."""
        expected = self.trained_component_counts
        check_training_dataset(train_dataset, "train_dataset", expected)
        check_training_dataset(val_dataset, "val_dataset", expected)
        self._prepare_for_dataset(train_dataset)
        self._record_components(train_dataset)
        with quiet_lightning():
            return super().fit_from_dataset(train_dataset, val_dataset, *args, **kwargs)

    def _record_components(self, dataset: Any) -> None:
        """Keep the training series' component names (when every series shares them), for services and exports."""

        def shared(seq: Any) -> list[str] | None:
            if not seq:
                return None
            names = [list(s.components) for s in (seq if isinstance(seq, Sequence) else [seq])]
            return names[0] if all(n == names[0] for n in names) else None

        self.target_components = shared(getattr(dataset, "series", None))
        self.past_covariate_components = shared(getattr(dataset, "past_covariates", None))

    def predict_from_dataset(self, n: int, dataset: Any, *args: Any, **kwargs: Any) -> Sequence[TimeSeries]:
        """See :meth:`TorchForecastingModel.predict_from_dataset`. Rejects NaN / inf and mismatched datasets."""
        check_inference_dataset(dataset, "dataset", self.trained_component_counts, self.input_chunk_length)
        with quiet_lightning():
            return super().predict_from_dataset(n, dataset, *args, **kwargs)

    def predictor(
        self,
        engine: str = "torch",
        device: str | Any | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> DirectPredictor:
        """A :class:`~darts_timesclip.predictor.DirectPredictor`: this fitted model's forecasts without a trainer.

        ``predictor.predict(n, series, past_covariates, num_samples=..., random_state=...)`` gives what
        :meth:`predict` gives (the same samples for the same ``random_state``), for windows as arrays
        ``[B, L, V]`` or as series, at the speed of the network's forward pass: no dataset, data loader or
        Lightning trainer per call.

        Parameters
        ----------
        engine
            ``"torch"`` (the fitted network, on ``device``) or ``"onnx"`` (ONNX Runtime on the CPU, from an export
            through :meth:`to_onnx` with a dynamic batch dimension; needs the ``onnx`` extra). Default: ``"torch"``.
        device
            Device of the ``torch`` engine (``"cpu"``, ``"cuda"``, ...). Default: where the network is.
        batch_size
            Most rows (windows x samples) per forward pass. Default: the model's ``batch_size``.
        **kwargs
            Further arguments of :class:`~darts_timesclip.predictor.DirectPredictor` (``autocast``,
            ``onnx_path``, ``onnx_threads``).

        Raises
        ------
        ValueError
            Before ``fit``, or for an unknown ``engine`` or a bad ``batch_size``.
        """
        from darts_timesclip.predictor import DirectPredictor

        if engine == "onnx":
            require_extra("onnx", "`predictor(engine='onnx')`")
            require_extra("onnxruntime", "`predictor(engine='onnx')`")
        return DirectPredictor(self, engine=engine, device=device, batch_size=batch_size, **kwargs)

    def to_onnx(self, path: str | None = None, **kwargs: Any) -> None:
        """Darts' :meth:`TorchForecastingModel.to_onnx`: export the fitted network to ONNX (the ``onnx`` extra).

        Parameters
        ----------
        path
            Where to write the graph; default ``"{ModelClass}_{YYYY-mm-dd_HH_MM_SS}.onnx"`` (Darts').
        **kwargs
            Passed to :func:`torch.onnx.export`; ``verbose=True`` shows the exporter's progress.
        """
        require_extra("onnx", "`to_onnx`")
        verbose = bool(kwargs.pop("verbose", False))
        if verbose:
            return super().to_onnx(path, verbose=True, **kwargs)
        with quiet_onnx_export():
            return super().to_onnx(path, verbose=False, **kwargs)

    # ------------------------------------------------------------------ saving
    def save(self, path: str | os.PathLike[str] | None = None, clean: bool = False) -> None:
        """Darts' :meth:`TorchForecastingModel.save`, written atomically.

        Writes ``path`` (the model object) and ``path.ckpt`` (the weights) as Darts does, each through a temporary
        file in the same folder and one ``os.replace``, checkpoint first: an interrupted or failed save leaves the
        files that were there before, never a truncated one. A model saved without weights (never trained) removes
        a ``path.ckpt`` left by an earlier save, which Darts' ``load`` would otherwise pair with it.

        Parameters
        ----------
        path
            Where to save; default ``"{ModelClass}_{YYYY-mm-dd_HH_MM_SS}.pt"`` in the working directory (Darts').
        clean
            Strip training-related attributes and save the weights only (Darts' ``clean``).
        """
        target = Path(self._default_save_path() + ".pt" if path is None else path)
        ckpt = target.with_name(target.name + ".ckpt")
        with atomic_path(target) as tmp:
            tmp_ckpt = tmp.with_name(tmp.name + ".ckpt")
            try:
                with portable_pandas_strings():  # loads where pyarrow is not installed (a slim serving environment)
                    super().save(str(tmp), clean=clean)
                    if not tmp_ckpt.exists() and self.model is not None:
                        self._save_weights_without_trainer(tmp_ckpt)
                if tmp_ckpt.exists():
                    fsync_file(tmp_ckpt)
                    os.replace(tmp_ckpt, ckpt)
                else:
                    ckpt.unlink(missing_ok=True)
            finally:
                tmp_ckpt.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str, pl_trainer_kwargs: dict | None = None, trusted: bool = False, **kwargs: Any) -> Any:
        """Darts' :meth:`TorchForecastingModel.load`, with an error that names a missing module as the cause.

        Parameters
        ----------
        path
            What :meth:`save` wrote (the ``.ckpt`` beside it is read too).
        pl_trainer_kwargs, trusted, **kwargs
            As for Darts' ``load`` (``map_location="cpu"`` to load GPU-trained weights on a CPU).
        """
        try:
            return super().load(path, pl_trainer_kwargs=pl_trainer_kwargs, trusted=trusted, **kwargs)
        except Exception as err:
            cause = missing_module_cause(err, str(path))
            if cause is not None:
                raise cause from err
            raise

    def _save_weights_without_trainer(self, path: Path) -> None:
        """Write the network's weights as a weights-only Lightning checkpoint (what ``save(clean=True)`` writes)."""
        import pytorch_lightning as pl

        with quiet_lightning():
            trainer = pl.Trainer(
                accelerator="cpu",
                devices=1,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
            )
            trainer.strategy.connect(self.model)
            trainer.save_checkpoint(str(path), weights_only=True)
