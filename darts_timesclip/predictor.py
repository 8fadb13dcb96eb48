"""Forecasts from a fitted model's network without a Lightning trainer: :class:`DirectPredictor`.

Darts' ``predict`` builds an inference dataset, a data loader and a trainer for every call, which costs several
times a forward pass of a small network. A :class:`DirectPredictor` keeps the fitted network in evaluation mode and
forecasts windows batch-first, with the sampling and auto-regression of Darts' own prediction loop
(``PLForecastingModule.predict_step``): its forecasts equal ``model.predict``'s (within float rounding of a different
batch composition) and, for a model with a likelihood, its samples are Darts' samples for the same ``random_state``.

Two engines run the network: ``"torch"`` (the fitted module, on the CPU or a GPU) and ``"onnx"`` (ONNX Runtime on a
graph exported through Darts' ``to_onnx`` with a dynamic batch dimension; the likelihood's sampling, which the graph
does not hold, runs in torch on its outputs).
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
import threading
import warnings
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from darts import TimeSeries
from darts.utils.data.torch_datasets.utils import ModuleStage, PLModuleInput
from darts.utils.torch import MAX_TORCH_SEED_VALUE
from darts.utils.utils import generate_index

from darts_timesclip.validation import as_series_list, check_components, check_finite, check_min_length

ENGINES = ("torch", "onnx")

SeriesLike = TimeSeries | Sequence[TimeSeries]


@dataclass(frozen=True)
class WindowTask:
    """One window to forecast, with its own settings: what :meth:`DirectPredictor.predict_windows` takes.

    Attributes
    ----------
    target
        ``[L, V_target]`` the last ``input_chunk_length`` values of the target.
    past_covariates
        ``[L + max(0, n - output_chunk_length), V_cov]`` past covariates over the window and, for ``n`` beyond
        ``output_chunk_length``, the steps after it; ``None`` for a model without past covariates.
    n
        Forecast horizon.
    num_samples
        Samples of a probabilistic forecast (1 for a deterministic model).
    seed
        Seed of the samples, as ``random_state`` of Darts' ``predict``; ``None`` for a deterministic forecast.
    predict_likelihood_parameters
        Return the likelihood's parameters instead of samples (``n <= output_chunk_length``).
    """

    target: np.ndarray
    past_covariates: np.ndarray | None
    n: int
    num_samples: int = 1
    seed: int | None = None
    predict_likelihood_parameters: bool = False


class DirectPredictor:
    """Forecasts of a fitted Darts torch model of this package, straight from its network.

    Build one with :meth:`TimesCLIPModel.predictor <darts_timesclip.TimesCLIPModel.predictor>` (or
    ``VQTransformerModel.predictor``). The ``torch`` engine shares the model's network where ``device`` is the one the
    network is on (training the model further changes the predictor's forecasts), and holds a copy on another device.
    Calls are serialised by a lock: one predictor may be shared by threads.

    Parameters
    ----------
    model
        A fitted (or loaded) ``TimesCLIPModel`` or ``VQTransformerModel``.
    engine
        ``"torch"`` or ``"onnx"``. Default: ``"torch"``.
    device
        Device of the ``torch`` engine, e.g. ``"cpu"`` or ``"cuda"``. Default: the network's device.
    batch_size
        Most rows (windows x samples) per forward pass. Default: the model's ``batch_size``; what Darts' ``predict``
        uses too, and what makes the samples of ``num_samples > batch_size`` equal to Darts'.
    autocast
        ``torch.bfloat16`` or ``torch.float16``: run the ``torch`` engine's forward under ``torch.autocast`` (GPU
        throughput; forecasts then differ from ``predict`` by the reduced precision). Default: ``None``.
    onnx_path
        With ``engine="onnx"``: where to write the graph (kept after the predictor is built). Default: a temporary
        file, removed once ONNX Runtime has read it.
    onnx_threads
        With ``engine="onnx"``: ONNX Runtime's intra-op threads. Default: torch's thread count.
    """

    def __init__(
        self,
        model: Any,
        engine: str = "torch",
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        autocast: torch.dtype | None = None,
        onnx_path: str | Path | None = None,
        onnx_threads: int | None = None,
    ) -> None:
        module = getattr(model, "model", None)
        if module is None or model.trained_component_counts[0] is None:
            raise ValueError(f"`{type(model).__name__}.predictor()` needs a fitted model; `fit()` or `load()` first.")
        if engine not in ENGINES:
            raise ValueError(f"`engine` must be one of {list(ENGINES)}, got `{engine!r}`.")
        if batch_size is not None and (
            not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1
        ):
            raise ValueError(f"`batch_size` must be a positive integer, got `{batch_size!r}`.")
        if autocast not in (None, torch.bfloat16, torch.float16):
            raise ValueError(f"`autocast` must be None, torch.bfloat16 or torch.float16, got `{autocast!r}`.")
        if engine == "onnx" and (device not in (None, "cpu") or autocast is not None):
            raise ValueError(
                f"`engine='onnx'` runs on the CPU in float32 (ONNX Runtime's CPU provider); got `device={device!r}`, "
                f"`autocast={autocast!r}`. Use `engine='torch'` for a GPU."
            )
        n_targets, n_covariates = model.trained_component_counts
        self.engine = engine
        self.input_chunk_length: int = int(model.input_chunk_length)
        self.output_chunk_length: int = int(model.output_chunk_length)
        self.output_chunk_shift: int = int(model.output_chunk_shift)
        self.n_targets: int = int(n_targets)
        self.n_covariates: int = int(n_covariates or 0)
        self.likelihood = model.likelihood
        self.batch_size: int = int(batch_size or model.batch_size)
        self.target_components: list[str] | None = model.target_components
        self.past_covariate_components: list[str] | None = model.past_covariate_components
        self.model_name = type(model).__name__
        self._lock = threading.Lock()
        self._random = np.random.RandomState()
        if engine == "torch":
            self._forward = _TorchForward(module, device, autocast)
        else:
            self._forward = _OnnxForward(model, onnx_path, onnx_threads)
        self.device: torch.device = self._forward.device
        self.dtype: torch.dtype = self._forward.dtype

    # ------------------------------------------------------------------------------------------------- properties
    @property
    def probabilistic(self) -> bool:
        """Whether the model forecasts samples (it has a likelihood)."""
        return self.likelihood is not None

    @property
    def numpy_dtype(self) -> type:
        """NumPy dtype of the network's inputs and forecasts."""
        return np.float64 if self.dtype == torch.float64 else np.float32

    def covariate_rows(self, n: int) -> int:
        """Rows of past covariates a window needs for a forecast of ``n`` steps: ``L + max(0, n - ocl)``."""
        return self.input_chunk_length + max(0, n - self.output_chunk_length)

    # ------------------------------------------------------------------------------------------------- public API
    def predict(
        self,
        n: int,
        series: np.ndarray | SeriesLike,
        past_covariates: np.ndarray | SeriesLike | None = None,
        num_samples: int = 1,
        predict_likelihood_parameters: bool = False,
        random_state: int | None = None,
    ) -> np.ndarray | SeriesLike:
        """Forecast ``n`` steps after each window, as ``model.predict(n, series, past_covariates, ...)`` does.

        Parameters
        ----------
        n
            Forecast horizon; beyond ``output_chunk_length`` the forecast is auto-regressive, as Darts' (the past
            covariates then must extend ``n - output_chunk_length`` steps past each window).
        series
            Windows ``[B, L, V_target]`` (``L = input_chunk_length``) as an array, or one or several ``TimeSeries``
            (their last ``L`` steps are the windows).
        past_covariates
            For a model trained with past covariates: ``[B, L + max(0, n - output_chunk_length), V_cov]`` aligned
            with the windows (row 0 is the window's first step), or series covering each window (and the steps
            after it that ``n`` needs), as for ``predict``.
        num_samples
            Samples of a probabilistic model (one with a likelihood); 1 for a deterministic one.
        predict_likelihood_parameters
            Return the likelihood's parameters instead of samples (``num_samples=1``, ``n <= output_chunk_length``).
        random_state
            Seed of the samples: equal seeds give Darts' samples of ``model.predict(..., random_state=seed)``.
            Default: a fresh seed per call.

        Returns
        -------
        numpy.ndarray or TimeSeries or list of TimeSeries
            For arrays: ``[B, n, C, num_samples]`` (``C``: the target components, or their likelihood parameters).
            For series: a forecast ``TimeSeries`` per series, as ``predict`` returns them.

        Raises
        ------
        ValueError
            For a bad argument, non-finite values, windows of the wrong shape or component count, too-short series,
            or covariates that do not cover what the forecast needs; the message names the argument.
        """
        self._check_settings(n, num_samples, predict_likelihood_parameters, random_state)
        as_arrays = isinstance(series, np.ndarray) or torch.is_tensor(series)
        if as_arrays:
            targets, covariates = self._arrays(n, series, past_covariates)
            starts = None
        else:
            targets, covariates, starts = self._windows_of_series(n, series, past_covariates)
        sampled = self.probabilistic and not predict_likelihood_parameters
        seed = None
        if sampled:
            seed = int(self._seed_of(random_state))
        with self._lock:
            outputs = self._run(
                self._predict_call_units(n, targets, covariates, num_samples, predict_likelihood_parameters, seed)
            )
        forecasts = np.concatenate(outputs, axis=0) if outputs else np.empty((0, n, self.n_targets, num_samples))
        if as_arrays:
            return forecasts
        result = [
            self._as_series(values, ts, start, predict_likelihood_parameters)
            for values, ts, start in zip(forecasts, as_series_list(series), starts)
        ]
        return result[0] if isinstance(series, TimeSeries) else result

    def predict_windows(self, tasks: Sequence[WindowTask]) -> list[np.ndarray]:
        """Forecast many windows, each with its own horizon, samples and seed, in shared forward passes.

        This is the forecasting service's entry: the windows are gathered into batches of ``batch_size`` rows per
        forward pass; a task's forecast is what :meth:`predict` gives for that window alone with
        ``random_state=task.seed``. Inputs are taken as given (the service checks them first); shapes are checked.

        Returns
        -------
        list of numpy.ndarray
            Per task, ``[n, C, num_samples]``.
        """
        units = []
        for i, task in enumerate(tasks):
            self._check_settings(task.n, task.num_samples, task.predict_likelihood_parameters, task.seed)
            target, cov = self._arrays(
                task.n,
                task.target[None],
                None if task.past_covariates is None else task.past_covariates[None],
                name=f"tasks[{i}]",
            )
            sampled = self.probabilistic and not task.predict_likelihood_parameters
            seed = int(self._seed_of(task.seed)) if sampled else None
            units.append(
                self._predict_call_units(
                    task.n, target, cov, task.num_samples, task.predict_likelihood_parameters, seed
                )
            )
        with self._lock:
            return [out[0][0] for out in self._run_many(units)]

    # ------------------------------------------------------------------------------------------------- inputs
    def _check_settings(self, n: Any, num_samples: Any, plp: bool, random_state: Any) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"`n` must be a positive integer, got `{n!r}`.")
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 1:
            raise ValueError(f"`num_samples` must be a positive integer, got `{num_samples!r}`.")
        if num_samples > 1 and not self.probabilistic:
            raise ValueError(
                f"`num_samples={num_samples}` needs a probabilistic model (trained with a `likelihood`); this "
                f"{self.model_name} is deterministic: use `num_samples=1`."
            )
        if plp:
            if not self.probabilistic:
                raise ValueError("`predict_likelihood_parameters=True` needs a model trained with a `likelihood`.")
            if num_samples != 1:
                raise ValueError(f"`predict_likelihood_parameters=True` needs `num_samples=1`, got `{num_samples}`.")
            if n > self.output_chunk_length:
                raise ValueError(
                    f"`predict_likelihood_parameters=True` needs `n <= output_chunk_length` "
                    f"({self.output_chunk_length}), got `n={n}`."
                )
        if self.output_chunk_shift and n > self.output_chunk_length:
            raise ValueError(
                f"`n={n}` is beyond `output_chunk_length={self.output_chunk_length}`, and a model with "
                f"`output_chunk_shift={self.output_chunk_shift}` cannot forecast auto-regressively (as in Darts)."
            )
        if random_state is not None and (
            isinstance(random_state, bool)
            or not isinstance(random_state, (int, np.integer))
            or not 0 <= random_state < 2**32
        ):
            raise ValueError(f"`random_state` must be an integer in [0, 2**32), got `{random_state!r}`.")

    def _seed_of(self, random_state: int | None) -> int:
        """The torch seed Darts' ``@random_method`` derives from ``random_state`` (a fresh one without)."""
        state = self._random if random_state is None else np.random.RandomState(random_state)
        return state.randint(0, high=MAX_TORCH_SEED_VALUE)

    def _arrays(
        self, n: int, series: Any, past_covariates: Any, name: str = "series"
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Check array windows (``[B, L, V]``) and covariates and make them tensors of the network's dtype."""
        cov_name = "past_covariates" if name == "series" else f"{name}.past_covariates"
        target = self._array(series, name, self.input_chunk_length, self.n_targets, "target components")
        if not self.n_covariates:
            if past_covariates is not None:
                raise ValueError(f"`{cov_name}` were given, but the {self.model_name} was trained without them.")
            return target, None
        if past_covariates is None:
            raise ValueError(
                f"`{cov_name}` are required: the {self.model_name} was trained with {self.n_covariates} past "
                f"covariate component(s)."
            )
        covariates = self._array(past_covariates, cov_name, self.covariate_rows(n), self.n_covariates, "components")
        if covariates.shape[0] != target.shape[0]:
            raise ValueError(
                f"`{cov_name}` holds {covariates.shape[0]} windows for {target.shape[0]} windows of `{name}`."
            )
        return target, covariates

    def _array(self, values: Any, name: str, rows: int, columns: int, what: str) -> torch.Tensor:
        array = values.detach().cpu().numpy() if torch.is_tensor(values) else np.asarray(values)
        if array.ndim != 3 or array.shape[1:] != (rows, columns):
            raise ValueError(
                f"`{name}` has shape {list(array.shape)}; expected [B, {rows}, {columns}] (windows of {rows} steps "
                f"and the model's {columns} {what})."
            )
        if not np.issubdtype(array.dtype, np.number):
            raise ValueError(f"`{name}` must hold numbers, got dtype `{array.dtype}`.")
        bad = ~np.isfinite(array)
        if bad.any():
            b, t, c = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"`{name}` has a non-finite value ({array[b, t, c]}) in window {b}, step {t}, component {c}."
            )
        with np.errstate(over="ignore"):
            cast = array.astype(self.numpy_dtype, copy=False)
        if not np.isfinite(cast).all():
            b, t, c = (int(i) for i in np.argwhere(~np.isfinite(cast))[0])
            raise ValueError(
                f"`{name}` holds {array[b, t, c]:g} (window {b}, step {t}, component {c}), out of the model's "
                f"{np.dtype(self.numpy_dtype).name} range."
            )
        return torch.from_numpy(np.ascontiguousarray(cast))

    def _windows_of_series(
        self, n: int, series: SeriesLike, past_covariates: SeriesLike | None
    ) -> tuple[torch.Tensor, torch.Tensor | None, list[Any]]:
        """The last window of each series (and its covariates, sliced by time) and each forecast's first time."""
        many = not isinstance(series, TimeSeries)
        targets = as_series_list(series)
        if not targets or not all(isinstance(ts, TimeSeries) for ts in targets):
            raise ValueError("`series` must be an array of windows, a TimeSeries or a non-empty sequence of them.")
        covariates = as_series_list(past_covariates)
        check_finite(series, "series")
        check_min_length(series, "series", self.input_chunk_length, "the input window")
        check_components(series, "series", self.n_targets)
        if not self.n_covariates and covariates:
            raise ValueError(f"`past_covariates` were given, but the {self.model_name} was trained without them.")
        if self.n_covariates:
            if not covariates:
                raise ValueError(
                    f"`past_covariates` are required: the {self.model_name} was trained with {self.n_covariates} past "
                    "covariate component(s)."
                )
            if len(covariates) != len(targets):
                raise ValueError(f"`past_covariates` holds {len(covariates)} series for {len(targets)} `series`.")
            check_finite(past_covariates, "past_covariates")
            check_components(past_covariates, "past_covariates", self.n_covariates)
        icl, rows = self.input_chunk_length, self.covariate_rows(n)
        windows, cov_windows, starts = [], [], []
        for i, ts in enumerate(targets):
            windows.append(ts.values(copy=False)[-icl:])
            first = ts.time_index[-icl]
            starts.append(ts.end_time() + (1 + self.output_chunk_shift) * ts.freq)
            if not self.n_covariates:
                continue
            cov = covariates[i]
            which = f"`past_covariates[{i}]`" if many else "`past_covariates`"
            if cov.freq != ts.freq:
                raise ValueError(f"{which} has frequency `{cov.freq_str}`; its series has `{ts.freq_str}`.")
            needed_end = first + (rows - 1) * ts.freq
            if first < cov.start_time() or needed_end > cov.end_time():
                extra = rows - icl
                beyond = f" and {extra} step(s) after it (n = {n} > output_chunk_length = {self.output_chunk_length})"
                raise ValueError(
                    f"{which} spans {cov.start_time()} .. {cov.end_time()}; the forecast needs {first} .. "
                    f"{needed_end}: the input window{beyond if extra else ''}."
                )
            offset = cov.get_index_at_point(first)
            cov_windows.append(cov.values(copy=False)[offset : offset + rows])
        target = self._array(np.stack(windows), "series", icl, self.n_targets, "target components")
        cov_tensor = None
        if self.n_covariates:
            cov_tensor = self._array(np.stack(cov_windows), "past_covariates", rows, self.n_covariates, "components")
        return target, cov_tensor, starts

    def _as_series(self, values: np.ndarray, series: TimeSeries, start: Any, plp: bool) -> TimeSeries:
        """A forecast ``[n, C, S]`` as the ``TimeSeries`` Darts' ``predict`` builds for ``series``."""
        index = generate_index(start=start, freq=series.freq, length=values.shape[0], name=series.time_index.name)
        if plp:
            return TimeSeries(
                times=index,
                values=values,
                components=pd.Index(self.likelihood.component_names(components=series.components)),
                metadata=series.metadata,
            )
        return TimeSeries(
            times=index,
            values=values,
            components=series.components,
            static_covariates=series.static_covariates,
            hierarchy=series.hierarchy,
            metadata=series.metadata,
        )

    # ------------------------------------------------------------------------------------------------- the loop
    def _predict_call_units(
        self,
        n: int,
        targets: torch.Tensor,
        covariates: torch.Tensor | None,
        num_samples: int,
        plp: bool,
        seed: int | None,
    ) -> list[_Unit]:
        """The work of one ``predict`` call, in Darts' order: batches of ``batch_size`` windows, each forecast in
        groups of samples (``predict_step``'s tiling), drawn from one random stream seeded as Darts seeds it."""
        stream = _RandomStream(seed, self.device) if seed is not None else None
        units = []
        for first in range(0, targets.shape[0], self.batch_size):
            chunk = slice(first, first + self.batch_size)
            target = targets[chunk]
            cov = covariates[chunk] if covariates is not None else None
            n_series = target.shape[0]
            group = min(max(self.batch_size // n_series, 1), num_samples)
            done = 0
            while done < num_samples:
                size = min(group, num_samples - done)
                units.append(_Unit(self, n, target, cov, size, plp, stream))
                done += size
        return units

    def _run(self, units: list[_Unit]) -> list[np.ndarray]:
        """Run the units of one call; ``[B, n, C, num_samples]`` per batch of windows, in order."""
        return self._run_many([units])[0]

    def _run_many(self, calls: list[list[_Unit]]) -> list[list[np.ndarray]]:
        """Run the units of several calls together, forward pass by forward pass, and assemble each call's output.

        A random stream's units draw in their order: a unit that forecasts in several chunks waits for the previous
        unit of its stream to finish (its first draw follows that unit's last); single-chunk units of a stream and
        units of different streams share forward passes.
        """
        pending = [unit for units in calls for unit in units]
        active: list[_Unit] = []
        while pending or active:
            # streams whose next draw belongs to a unit already running over several chunks
            waiting = {id(u.stream) for u in active if u.stream is not None and u.chunks > 1}
            still = []
            for unit in pending:
                key = None if unit.stream is None else id(unit.stream)
                if key is not None and key in waiting:
                    still.append(unit)
                    continue
                unit.start()
                active.append(unit)
                if key is not None and unit.chunks > 1:
                    waiting.add(key)
            pending = still
            inputs: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
            for unit in active:
                inputs.setdefault(id(unit.request[0]), unit.request)
            outputs = self._forward_all(list(inputs.values()))
            by_input = dict(zip(inputs, outputs))
            for unit in active:  # in order: draws of a stream happen in its units' order
                unit.advance(by_input[id(unit.request[0])])
            active = [unit for unit in active if not unit.finished]
        results = []
        for units in calls:
            per_batch: dict[int, list[np.ndarray]] = {}
            order = []
            for unit in units:
                key = id(unit.target)
                if key not in per_batch:
                    per_batch[key] = []
                    order.append(key)
                per_batch[key].append(unit.result)
            results.append([np.concatenate(per_batch[key], axis=-1) for key in order])
        return results

    def _forward_all(self, inputs: list[tuple[torch.Tensor, torch.Tensor | None]]) -> list[torch.Tensor]:
        """Raw network outputs ``[R, ocl, C, P]`` for each ``(target, covariates)`` pair, in forward passes of at most
        ``batch_size`` rows."""
        if not inputs:
            return []
        sizes = [target.shape[0] for target, _ in inputs]
        target = torch.cat([t for t, _ in inputs]) if len(inputs) > 1 else inputs[0][0]
        cov = None
        if inputs[0][1] is not None:
            cov = torch.cat([c for _, c in inputs]) if len(inputs) > 1 else inputs[0][1]
        outs = [
            self._forward(target[i : i + self.batch_size], None if cov is None else cov[i : i + self.batch_size])
            for i in range(0, target.shape[0], self.batch_size)
        ]
        out = torch.cat(outs) if len(outs) > 1 else outs[0]
        return list(torch.split(out, sizes))


class _RandomStream:
    """A torch random state of its own (CPU, and the device's where it is a GPU), seeded as Darts seeds ``predict``.

    Darts' ``predict`` seeds torch's global generator, then its data loader draws one number for its workers' base
    seed before the first batch; the likelihood's samples follow. :meth:`drawing` swaps this stream's state in for
    the duration of a draw, so that streams of concurrent requests do not disturb each other or the caller.
    """

    def __init__(self, seed: int, device: torch.device) -> None:
        self.cuda = device if device.type == "cuda" else None
        with self._forked():
            torch.manual_seed(seed)
            torch.empty((), dtype=torch.int64).random_()  # the data loader's base seed (`_BaseDataLoaderIter`)
            self._save()

    def _forked(self) -> contextlib.AbstractContextManager:
        return torch.random.fork_rng(devices=[self.cuda] if self.cuda is not None else [])

    def _save(self) -> None:
        self.cpu_state = torch.get_rng_state()
        self.cuda_state = torch.cuda.get_rng_state(self.cuda) if self.cuda is not None else None

    @contextlib.contextmanager
    def drawing(self) -> Iterator[None]:
        with self._forked():
            torch.set_rng_state(self.cpu_state)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda_state, self.cuda)
            yield
            self._save()


class _Unit:
    """One group of Darts' prediction loop: windows ``[B, L, ...]`` tiled ``tiles`` times (sample-major, as
    ``TorchInferenceBatch.tile_tensors``), forecast chunk by chunk as ``PLForecastingModule._get_batch_prediction``.

    The first chunk's input is the same for every tile, so it is forecast once per window and its output tiled.
    """

    def __init__(
        self,
        predictor: DirectPredictor,
        n: int,
        target: torch.Tensor,
        covariates: torch.Tensor | None,
        tiles: int,
        plp: bool,
        stream: _RandomStream | None,
    ) -> None:
        self.predictor, self.n, self.target, self.covariates = predictor, n, target, covariates
        self.tiles, self.plp, self.stream = tiles, plp, stream
        ocl = predictor.output_chunk_length
        self.chunks = _chunk_count(n, ocl)
        self.finished = False
        self.result: np.ndarray | None = None
        self._steps: Generator[tuple[torch.Tensor, torch.Tensor | None], torch.Tensor, torch.Tensor] | None = None
        self.request: tuple[torch.Tensor, torch.Tensor | None] = (target, None)

    def start(self) -> None:
        self._steps = self._rollout()
        self.request = next(self._steps)

    def advance(self, raw: torch.Tensor) -> None:
        try:
            self.request = self._steps.send(raw)
        except StopIteration as stop:
            forecast = stop.value  # [tiles * B, n, C]
            batch = self.target.shape[0]
            forecast = forecast.reshape(self.tiles, batch, *forecast.shape[1:]).float().cpu().numpy()
            self.result = forecast.transpose(1, 2, 3, 0)  # [B, n, C, tiles]
            self.finished = True

    def _draw(self, raw: torch.Tensor) -> torch.Tensor:
        """Darts' ``_produce_predict_output``: parameters, a sample, or the forecast itself."""
        likelihood = self.predictor.likelihood
        if likelihood is None:
            return raw.squeeze(dim=-1)
        if self.plp:
            return likelihood.predict_likelihood_parameters(raw)
        with self.stream.drawing():
            return likelihood.sample(raw)

    def _rollout(self) -> Generator[tuple[torch.Tensor, torch.Tensor | None], torch.Tensor, torch.Tensor]:
        icl, ocl = self.predictor.input_chunk_length, self.predictor.output_chunk_length
        n, tiles = self.n, self.tiles
        past_cov = future_cov = None
        if self.covariates is not None:
            past_cov, future_cov = self.covariates[:, :icl], self.covariates[:, icl:]
        raw = yield (self.target, past_cov)
        raw = raw.repeat(tiles, *([1] * (raw.dim() - 1))) if tiles > 1 else raw
        out = self._draw(raw)
        if self.chunks == 1:
            return out[:, :n]
        past_target = self.target.tile((tiles, 1, 1)).to(out.device)
        if past_cov is not None:
            past_cov = past_cov.tile((tiles, 1, 1)).to(out.device)
            future_cov = future_cov.tile((tiles, 1, 1)).to(out.device)
        roll_size = ocl
        pieces = [out[:, :roll_size]]
        length = roll_size
        min_n = max(n, ocl)
        while length < min_n:
            if length + ocl > min_n:  # the last chunk ends at `min_n`: step back and truncate the previous one
                spill = length + ocl - min_n
                roll_size -= spill
                length -= spill
                pieces[-1] = pieces[-1][:, :roll_size]
            past_target = torch.roll(past_target, -roll_size, 1)
            if icl >= roll_size:
                past_target[:, -roll_size:] = out[:, :roll_size].to(past_target.dtype)
                left, right = length - roll_size, length
            else:
                past_target[:, :] = out[:, -icl:].to(past_target.dtype)
                left, right = length - icl, length
            if past_cov is not None:
                past_cov = torch.roll(past_cov, -roll_size, 1)
                if icl >= roll_size:
                    past_cov[:, -roll_size:] = future_cov[:, left:right]
                else:
                    past_cov[:, :] = future_cov[:, left:right]
            raw = yield (past_target, past_cov)
            out = self._draw(raw)
            pieces.append(out)
            length += ocl
        return torch.cat(pieces, dim=1)[:, :n]


def _chunk_count(n: int, ocl: int) -> int:
    """Forward passes of Darts' loop for a horizon ``n``: one, plus one per further (possibly overlapping) chunk."""
    return 1 if n <= ocl else -(-n // ocl)


# ----------------------------------------------------------------------------------------------------- engines
class _TorchForward:
    """The fitted Lightning module's forward (``PLModuleInput`` in, raw output ``[B, ocl, C, P]`` out), no trainer."""

    def __init__(self, module: torch.nn.Module, device: str | torch.device | None, autocast: torch.dtype | None):
        current = next(module.parameters()).device
        self.device = torch.device(device) if device is not None else current
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.module = module if self.device == current else copy.deepcopy(module).to(self.device)
        self.dtype = next(module.parameters()).dtype
        self.autocast = autocast

    def __call__(self, target: torch.Tensor, covariates: torch.Tensor | None) -> torch.Tensor:
        module = self.module
        x = PLModuleInput(
            past_target=target.to(self.device, self.dtype),
            past_covariates=None if covariates is None else covariates.to(self.device, self.dtype),
            stage=ModuleStage.PREDICT,
        )
        was_training = module.training
        module.eval()
        try:
            with (
                torch.inference_mode(),
                torch.autocast(
                    self.device.type, dtype=self.autocast or torch.bfloat16, enabled=self.autocast is not None
                ),
            ):
                out = module(x).prediction
        finally:
            if was_training:
                module.train()
        return out.to(self.dtype)


class _OnnxForward:
    """ONNX Runtime on the module exported by Darts' ``to_onnx``, with a dynamic batch dimension."""

    def __init__(self, model: Any, path: str | Path | None, threads: int | None) -> None:
        import onnxruntime as ort

        self.device = torch.device("cpu")
        self.dtype = next(model.model.parameters()).dtype
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.log_severity_level = 3
        with contextlib.ExitStack() as stack:
            if path is None:
                path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "model.onnx"
            export_onnx(model, path)
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.names = [i.name for i in self.session.get_inputs()]

    def __call__(self, target: torch.Tensor, covariates: torch.Tensor | None) -> torch.Tensor:
        feeds = {"past_target": target.numpy()}
        if "past_covariates" in self.names:
            feeds["past_covariates"] = covariates.numpy()
        (out,) = self.session.run(["prediction"], feeds)
        return torch.from_numpy(out)


class _BatchForward(torch.nn.Module):
    """The Lightning module's prediction-stage forward over named tensors (what Darts' ONNX wrapper does too)."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, past_target: torch.Tensor, past_covariates: torch.Tensor | None = None) -> torch.Tensor:
        x = PLModuleInput(past_target=past_target, past_covariates=past_covariates, stage=ModuleStage.PREDICT)
        return self.module(x).prediction


def export_onnx(model: Any, path: str | Path) -> None:
    """Export a fitted model's network to ONNX with a dynamic batch dimension, for ONNX Runtime.

    The graph is the one Darts' ``to_onnx`` exports (the Lightning module's forward at the prediction stage, with
    inputs ``past_target [B, L, V_target]``, ``past_covariates [B, L, V_cov]`` where the model has them, and output
    ``prediction [B, ocl, V_target, nr_params]``, the likelihood's raw parameters), but traced at batch 2 with the
    batch dimension left free: Darts' export fixes it at 1.

    Raises
    ------
    ValueError
        Where the exporter fails (the message carries its error).
    """
    from torch.export import Dim

    from darts_timesclip.quiet import quiet_onnx_export

    module = model.model
    n_targets, n_covariates = model.trained_component_counts
    parameter = next(module.parameters())
    shape = (2, model.input_chunk_length)
    inputs = [torch.rand(*shape, n_targets, dtype=parameter.dtype, device=parameter.device)]
    names = ["past_target"]
    if n_covariates:
        inputs.append(torch.rand(*shape, n_covariates, dtype=parameter.dtype, device=parameter.device))
        names.append("past_covariates")
    batch = Dim("batch", min=1, max=1 << 16)
    was_training = module.training
    module.eval()
    try:
        with quiet_onnx_export(), warnings.catch_warnings():
            # both inputs share the one batch dimension, which the exporter announces as a renaming it skips
            warnings.filterwarnings("ignore", message=".*will not be used, since it shares the same shape.*")
            torch.onnx.export(
                _BatchForward(module).eval(),
                tuple(inputs),
                str(path),
                input_names=names,
                output_names=["prediction"],
                dynamic_shapes=tuple({0: batch} for _ in inputs),
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    except Exception as err:  # the exporter's errors are many and deep: say what failed, keep the cause
        raise ValueError(f"Could not export this {type(model).__name__} to ONNX with a dynamic batch: {err}") from err
    finally:
        module.train(was_training)
