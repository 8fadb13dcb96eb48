"""The forecasting logic of the service, free of HTTP: request checks, forecasts and answers.

A request becomes a :class:`~darts_timesclip.predictor.WindowTask` (its window, covariates, horizon, samples and
seed) after the checks below; the batcher forecasts many tasks in one forward pass of the direct predictor, and
:meth:`ForecastService.answer` turns a task's forecast into the response. The ``darts`` engine instead answers each
request with its own ``model.predict`` under a lock (the service before micro-batching; kept to measure it).
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_QUANTILES = (0.1, 0.5, 0.9)
ENGINES = ("torch", "onnx", "darts")

#: Frequencies a request may give as a string: pandas offset aliases, with an optional multiple (``15min``, ``2h``).
FREQ_PATTERN = (
    r"^[1-9][0-9]{0,5}?(ns|us|ms|s|min|h|D|B|W|W-(MON|TUE|WED|THU|FRI|SAT|SUN)|ME|MS|BME|BMS|SME|SMS|QE|QS|"
    r"QE-(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)|QS-(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)|"
    r"YE|YS|YE-(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)|YS-(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC))$"
    r"|^(ns|us|ms|s|min|h|D|B|W|W-(MON|TUE|WED|THU|FRI|SAT|SUN)|ME|MS|BME|BMS|SME|SMS|QE|QS|YE|YS)$"
)
_FREQ = re.compile(FREQ_PATTERN)

#: Refusals for rules a JSON schema cannot state (most relate several fields): their ``type`` and the rule in words.
#: The OpenAPI schema lists them (``x-rules-in-words`` of the request); every other refusal is for a rule it states.
RULES_IN_WORDS = {
    "time_index_length": "`time_index` has one entry per row of `values`.",
    "time_index_irregular": "`time_index` holds timestamps at one regular frequency (or integers at a constant "
    "positive step), given as `freq` or inferred from them.",
    "time_index_and_start": "give `time_index`, or `start` (with `freq`), not both.",
    "freq_invalid": "`freq` is an integer step with an integer `start` or index, a pandas frequency with timestamps; "
    "a timestamp `start` needs one.",
    "past_covariates_too_short": "`past_covariates` cover the last `input_chunk_length` rows of `series` and, for "
    "`n` > `output_chunk_length`, `n - output_chunk_length` rows after them.",
    "past_covariates_misaligned": "`past_covariates` have the time index of `series` (the same start and frequency).",
    "time_out_of_range": "timestamps, and the forecast's, lie within pandas' range (1677-09-22 .. 2262-04-11).",
    "forecast_not_finite": "the forecast of the window is finite (values of the order of `max_abs_value` may overflow "
    "inside the network).",
}


@dataclass(frozen=True)
class ServiceLimits:
    """What one request may ask for; the OpenAPI schema states each limit.

    Parameters
    ----------
    max_n
        Largest forecast horizon ``n``. Default: ``None``, ten times the model's ``output_chunk_length``.
    max_num_samples
        Largest ``num_samples`` of a probabilistic forecast.
    default_num_samples
        Samples drawn for a probabilistic model when the request gives none.
    max_body_bytes
        Largest request body; larger payloads get 413 (checked on ``Content-Length`` before reading, and on what
        was read for chunked bodies).
    max_rows
        Largest number of rows of a series in a request.
    max_abs_value
        Largest magnitude of a value: instance normalisation squares deviations in the network's float32, so values
        beyond about 1e18 overflow; the default leaves a wide margin.
    max_quantiles
        Most quantile levels one request may ask for.
    """

    max_n: int | None = None
    max_num_samples: int = 1000
    default_num_samples: int = 200
    max_body_bytes: int = 10 * 2**20
    max_rows: int = 100_000
    max_abs_value: float = 1e15
    max_quantiles: int = 99

    def __post_init__(self) -> None:
        if self.max_n is not None and self.max_n < 1:
            raise ValueError(f"`max_n` must be a positive integer, got `{self.max_n}`.")
        if not 1 <= self.default_num_samples <= self.max_num_samples:
            raise ValueError(
                f"`default_num_samples={self.default_num_samples}` must lie in [1, `max_num_samples`="
                f"{self.max_num_samples}]: a request that gives no `num_samples` must be one the service answers."
            )
        if not 0 < self.max_abs_value <= 1e18:
            raise ValueError(f"`max_abs_value` must lie in (0, 1e18], got `{self.max_abs_value}`.")


class RequestError(ValueError):
    """A bad request: where (``loc``) and what; answered with ``status`` (422 unless stated)."""

    def __init__(self, loc: Sequence[str | int], msg: str, status: int = 422, kind: str = "value_error") -> None:
        super().__init__(msg)
        self.loc, self.msg, self.status, self.kind = ["body", *loc], msg, status, kind

    def detail(self) -> list[dict[str, Any]]:
        return [{"loc": self.loc, "msg": self.msg, "type": self.kind}]


@dataclass
class PreparedRequest:
    """A checked request: the window task and what its answer needs."""

    task: Any  # WindowTask
    times: list[Any]
    num_samples: int
    quantiles: list[float] | None
    seed: int | None
    series: Any = None  # the request's TimeSeries (the `darts` engine only)
    covariates: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class ForecastService:
    """The model, its description and the forecasting logic of the service.

    Parameters
    ----------
    model
        A fitted ``TimesCLIPModel`` (or ``VQTransformerModel``).
    limits
        Request limits.
    engine
        ``"torch"`` or ``"onnx"``: the direct predictor's engine, forecasts batched across requests; ``"darts"``: one
        Darts ``predict`` per request under a lock (the service before batching, kept for comparison).
    device
        Device of the ``torch`` engine. Default: the network's.
    """

    def __init__(
        self, model: Any, limits: ServiceLimits | None = None, engine: str = "torch", device: str | None = None
    ) -> None:
        if getattr(model, "model", None) is None or model.trained_component_counts[0] is None:
            raise ValueError("The service needs a fitted model; `fit()` (or `load()` a saved one) first.")
        if engine not in ENGINES:
            raise ValueError(f"`engine` must be one of {list(ENGINES)}, got `{engine!r}`.")
        self.model, self.engine = model, engine
        limits = limits or ServiceLimits()
        if limits.max_n is None:
            limits = ServiceLimits(**{**limits.__dict__, "max_n": 10 * model.output_chunk_length})
        self.limits = limits
        self.lock = threading.Lock()  # the `darts` engine's: one `predict` at a time
        self._seeds = np.random.default_rng()  # seeds of requests that give none
        self.predictor = model.predictor(engine="onnx" if engine == "onnx" else "torch", device=device)
        n_targets, n_covariates = model.trained_component_counts
        self.n_targets, self.n_covariates = int(n_targets), int(n_covariates or 0)
        self.components = list(model.target_components or [f"c{i}" for i in range(self.n_targets)])
        covs = model.past_covariate_components
        self.covariate_components = (
            list(covs or [f"cov{i}" for i in range(self.n_covariates)]) if self.n_covariates else None
        )

    @property
    def probabilistic(self) -> bool:
        return self.predictor.probabilistic

    @property
    def input_chunk_length(self) -> int:
        return self.predictor.input_chunk_length

    @property
    def output_chunk_length(self) -> int:
        return self.predictor.output_chunk_length

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` returns."""
        model, likelihood = self.model, self.model.likelihood
        config = getattr(model, "config", None)
        described = None
        if likelihood is not None:
            described = {"name": type(likelihood).__name__}
            if getattr(likelihood, "quantiles", None) is not None:
                described["quantiles"] = [float(q) for q in likelihood.quantiles]
        limits = self.limits
        return {
            "model": type(model).__name__,
            "input_chunk_length": self.input_chunk_length,
            "output_chunk_length": self.output_chunk_length,
            "components": self.components,
            "past_covariates": self.covariate_components,
            "backbone": getattr(config, "backbone", None),
            "pretrained": bool(getattr(config, "pretrained", False)),
            "likelihood": described,
            "probabilistic": self.probabilistic,
            "engine": self.engine,
            "limits": {
                "max_n": limits.max_n,
                "max_num_samples": limits.max_num_samples,
                "max_body_bytes": limits.max_body_bytes,
                "max_rows": limits.max_rows,
                "max_abs_value": limits.max_abs_value,
                "max_quantiles": limits.max_quantiles,
            },
        }

    # -- requests ------------------------------------------------------------------------------------------------
    def prepare(self, request: Any) -> PreparedRequest:
        """Check a ``ForecastRequest`` and make its window task (raises :class:`RequestError`)."""
        from darts_timesclip.predictor import WindowTask

        limits, icl = self.limits, self.input_chunk_length
        n = request.n
        if n > limits.max_n:
            raise RequestError(["n"], f"is {n}, over this service's limit of {limits.max_n}")
        num_samples, quantiles, seed = request.num_samples, request.quantiles, request.seed
        if not self.probabilistic:
            if num_samples not in (None, 1):
                raise RequestError(["num_samples"], f"is {num_samples}; the model is deterministic (use 1 or omit)")
            if quantiles:
                raise RequestError(["quantiles"], "need a probabilistic model (trained with a likelihood)")
            num_samples, quantiles, seed = 1, None, None
        else:
            num_samples = num_samples or limits.default_num_samples
            if num_samples > limits.max_num_samples:
                raise RequestError(["num_samples"], f"is {num_samples}, over the limit of {limits.max_num_samples}")
            quantiles = list(DEFAULT_QUANTILES if quantiles is None else quantiles)
            if not quantiles:
                raise RequestError(["quantiles"], "is empty; omit it for the default levels")
            if len(quantiles) > limits.max_quantiles:
                raise RequestError(["quantiles"], f"asks for {len(quantiles)} levels, over the limit of "
                                   f"{limits.max_quantiles}")  # fmt: skip
            bad = [q for q in quantiles if not (0 < q < 1 and math.isfinite(q))]
            if bad:
                raise RequestError(["quantiles"], f"must lie in (0, 1), got {bad}")
            if seed is None:
                seed = int(self._seeds.integers(0, 2**32))
            elif not 0 <= seed < 2**32:
                raise RequestError(["seed"], f"is {seed}; a seed lies in [0, 2**32)")
        values, index = self._values(request.series, "series", self.components, icl)
        covariates = None
        if self.n_covariates:
            if request.past_covariates is None:
                raise RequestError(
                    ["past_covariates"], f"are required: the model was trained with {self.covariate_components}"
                )
            cov_values, cov_index = self._values(request.past_covariates, "past_covariates",
                                                 self.covariate_components, icl)  # fmt: skip
            covariates = self._covariate_window(cov_values, cov_index, index, n)
        elif request.past_covariates is not None:
            raise RequestError(["past_covariates"], "were given, but the model was trained without past covariates")
        step = _step(index)
        start = index[-1] + (1 + self.predictor.output_chunk_shift) * step
        try:
            times = _times(start, step, n)
        except (ValueError, OverflowError) as err:  # pandas' bounds
            raise RequestError(["n"], f"takes the forecast past pandas' time range: {err}",
                               kind="time_out_of_range") from err  # fmt: skip
        task = WindowTask(values[-icl:], covariates, n, num_samples, seed)
        prepared = PreparedRequest(task, times, num_samples, quantiles, seed)
        if self.engine == "darts":
            prepared.series = _series(values, index, self.components if request.series.components is None
                                      else request.series.components)  # fmt: skip
            if covariates is not None:
                prepared.covariates = _series(cov_values, cov_index, self.covariate_components)
        return prepared

    def _values(self, payload: Any, loc: str, expected: list[str], min_length: int) -> tuple[np.ndarray, Any]:
        """A series' values as a float array of the network's dtype and its time index, after every check."""
        rows = payload.values
        if len(rows) == 0:
            raise RequestError([loc, "values"], "is empty")
        if len(rows) > self.limits.max_rows:
            raise RequestError([loc, "values"], f"has {len(rows)} rows, more than the limit of {self.limits.max_rows}")
        if not isinstance(rows[0], list):
            rows = [[v] for v in rows]
        widths = {len(r) for r in rows}
        if len(widths) != 1:
            raise RequestError([loc, "values"], f"rows have different lengths {sorted(widths)}")
        values = np.asarray(rows, dtype=np.float64)
        bad = np.argwhere(~np.isfinite(values))
        if len(bad):
            r, c = (int(i) for i in bad[0])
            raise RequestError([loc, "values", r, c], f"holds {values[r, c]} (NaN or infinite) at row {r}, column {c}")
        if values.shape[1] != len(expected):
            raise RequestError(
                [loc, "values"],
                f"has {values.shape[1]} component(s); the model was trained on {len(expected)}: {expected}",
            )
        names = payload.components
        if names is not None:
            if len(names) != values.shape[1]:
                raise RequestError([loc, "components"], f"names {len(names)} component(s) for {values.shape[1]} "
                                   "columns")  # fmt: skip
            trained = self.model.target_components if loc == "series" else self.model.past_covariate_components
            if trained and list(names) != list(trained):
                raise RequestError([loc, "components"], f"are {list(names)}; the model was trained on {trained}")
        if len(values) < min_length:
            raise RequestError(
                [loc, "values"], f"has {len(values)} rows; at least {min_length} are needed for this forecast"
            )
        bound = self.limits.max_abs_value
        large = np.argwhere(np.abs(values) > bound)
        if len(large):
            r, c = (int(i) for i in large[0])
            raise RequestError(
                [loc, "values", r, c],
                f"{values[r, c]:g} at row {r} is out of the model's float32 range for instance normalisation "
                f"(|value| <= {bound:g})",
            )
        index = _time_index(payload, loc, len(values))
        return values.astype(self.predictor.numpy_dtype), index

    def _covariate_window(self, values: np.ndarray, index: Any, target_index: Any, n: int) -> np.ndarray:
        """The covariate rows aligned with the target's window, and the ``n - ocl`` rows after it."""
        icl = self.input_chunk_length
        rows = self.predictor.covariate_rows(n)
        if type(index) is not type(target_index) or _step(index) != _step(target_index):
            raise RequestError(
                ["past_covariates"], f"have the time step `{_step(index)}`; `series` has `{_step(target_index)}`",
                kind="past_covariates_misaligned",
            )  # fmt: skip
        first = target_index[-icl]
        position = index.get_indexer([first])[0]
        if position < 0:
            raise RequestError(
                ["past_covariates"], f"do not hold the time {first} at which the model's input window starts",
                kind="past_covariates_misaligned",
            )  # fmt: skip
        if position + rows > len(index):
            extra = rows - icl
            need = f"the input window and the {extra} step(s) after it (n = {n} > output_chunk_length = " \
                   f"{self.output_chunk_length})" if extra else "the input window"  # fmt: skip
            raise RequestError(
                ["past_covariates", "values"],
                f"end at {index[-1]}; the forecast needs {rows} rows from {first}: {need}",
                kind="past_covariates_too_short",
            )
        return values[position : position + rows]

    # -- answers -------------------------------------------------------------------------------------------------
    def answer(self, prepared: PreparedRequest, forecast: np.ndarray) -> dict[str, Any]:
        """The response body of a forecast ``[n, C, num_samples]``."""
        if not np.isfinite(forecast).all():  # e.g. values near `max_abs_value`: finite in, overflow inside
            raise RequestError(
                ["series", "values"], "gave a non-finite forecast; the values are too large for the network",
                kind="forecast_not_finite",
            )  # fmt: skip
        answer: dict[str, Any] = {"time_index": prepared.times, "components": self.components, "n": prepared.task.n}
        if prepared.num_samples == 1 and not self.probabilistic:
            answer["values"] = forecast[:, :, 0].tolist()
            return answer
        levels = [0.5, *prepared.quantiles]
        values = np.quantile(forecast, levels, axis=-1)
        answer["values"] = values[0].tolist()
        answer["quantiles"] = {f"{q:g}": v.tolist() for q, v in zip(prepared.quantiles, values[1:])}
        answer["num_samples"] = prepared.num_samples
        answer["seed"] = prepared.seed
        return answer

    def predictor_batch(self, prepared: list[PreparedRequest]) -> list[Any]:
        """Forecasts ``[n, C, num_samples]`` of a batch of prepared requests, from shared forward passes.

        Where the batch fails, each request is forecast alone, so that one request's failure (which the checks
        should have prevented) is that request's answer only.
        """
        try:
            return self.predictor.predict_windows([p.task for p in prepared])
        except Exception as err:  # noqa: BLE001 - answered per request below
            if len(prepared) == 1:
                return [_failure(err)]
        results: list[Any] = []
        for item in prepared:
            try:
                results.append(self.predictor.predict_windows([item.task])[0])
            except Exception as err:  # noqa: BLE001 - this request's answer only
                results.append(_failure(err))
        return results

    def forecast_with_darts(self, prepared: PreparedRequest) -> np.ndarray:
        """The ``darts`` engine: one ``model.predict`` under the lock, as the service did before batching."""
        try:
            with self.lock:
                forecast = self.model.predict(
                    prepared.task.n,
                    prepared.series,
                    past_covariates=prepared.covariates,
                    num_samples=prepared.num_samples,
                    random_state=prepared.seed,
                    verbose=False,
                    show_warnings=False,
                )
        except ValueError as err:  # Darts' own checks
            raise RequestError(["series"], str(err)) from err
        return forecast.all_values(copy=False)

    def forecast_now(self, prepared: PreparedRequest) -> dict[str, Any]:
        """Answer one prepared request at once with Darts' ``predict`` (the ``darts`` engine; the other engines'
        requests are batched)."""
        return self.answer(prepared, self.forecast_with_darts(prepared))


def _failure(err: Exception) -> Exception:
    """A failed forecast as its request's answer: a ``ValueError`` (the input) is a 422, anything else a 500."""
    return RequestError(["series"], str(err)) if isinstance(err, ValueError) else err


def _step(index: Any) -> Any:
    """The step of a time index: its pandas frequency, or its integer step."""
    return index.step if hasattr(index, "step") and not hasattr(index, "freq") else index.freq


def _times(start: Any, step: Any, n: int) -> list[Any]:
    import pandas as pd

    if isinstance(start, pd.Timestamp):
        return [t.isoformat() for t in pd.date_range(start, periods=n, freq=step)]
    return list(range(int(start), int(start) + int(step) * n, int(step)))


def _series(values: np.ndarray, index: Any, names: list[str]) -> Any:
    import pandas as pd
    from darts import TimeSeries

    return TimeSeries.from_times_and_values(index, values, columns=pd.Index(list(names), dtype=object))


def _time_index(payload: Any, loc: str, length: int) -> Any:
    """The series' time index: from ``time_index``, from ``start`` and ``freq``, or ``0 .. length - 1``."""
    import pandas as pd

    freq = payload.freq
    if isinstance(freq, int) and freq < 1:
        raise RequestError([loc, "freq"], f"an integer step must be positive, got {freq}")
    if isinstance(freq, str) and not _FREQ.match(freq):
        raise RequestError([loc, "freq"], f"`{freq}` is not a pandas frequency of the form the schema states "
                           "(e.g. `h`, `15min`, `D`, `W-SUN`, `MS`)")  # fmt: skip
    if payload.time_index is not None:
        if payload.start is not None:
            raise RequestError([loc, "start"], "give `time_index` or `start`, not both", kind="time_index_and_start")
        times = payload.time_index
        if len(times) != length:
            raise RequestError(
                [loc, "time_index"], f"has {len(times)} entries for {length} rows of values", kind="time_index_length"
            )
        if all(isinstance(t, int) for t in times):
            if isinstance(freq, str):
                raise RequestError([loc, "freq"], "is a pandas frequency, but `time_index` holds integers",
                                   kind="freq_invalid")  # fmt: skip
            steps = np.diff(times)
            if length > 1 and (len(set(steps.tolist())) != 1 or steps[0] <= 0):
                raise RequestError([loc, "time_index"], "integers must increase by a constant step",
                                   kind="time_index_irregular")  # fmt: skip
            step = int(steps[0]) if length > 1 else (freq or 1)
            return pd.RangeIndex(times[0], times[0] + step * length, step)
        if isinstance(freq, int):
            raise RequestError([loc, "freq"], "is an integer step, but `time_index` holds timestamps",
                               kind="freq_invalid")  # fmt: skip
        try:
            stamps = pd.DatetimeIndex(pd.to_datetime(times))
        except pd.errors.OutOfBoundsDatetime as err:
            raise RequestError([loc, "time_index"], str(err), kind="time_out_of_range") from err
        except (ValueError, TypeError, OverflowError) as err:
            raise RequestError([loc, "time_index"], f"is not a list of timestamps at one frequency: {err}",
                               kind="time_index_irregular") from err  # fmt: skip
        try:
            freq = freq or (pd.infer_freq(stamps) if length >= 3 else None)
        except (ValueError, TypeError) as err:
            raise RequestError([loc, "time_index"], f"has no regular frequency: {err}",
                               kind="time_index_irregular") from err  # fmt: skip
        if freq is None:
            raise RequestError([loc, "time_index"], "has no regular frequency; give `freq` or regular timestamps",
                               kind="time_index_irregular")  # fmt: skip
        try:
            expected = pd.date_range(stamps[0], periods=length, freq=freq)
        except (ValueError, TypeError, OverflowError) as err:
            raise RequestError([loc, "freq"], f"`{freq}` does not fit the timestamps: {err}",
                               kind="freq_invalid") from err  # fmt: skip
        if not expected.equals(stamps):
            raise RequestError([loc, "time_index"], f"is not regular at frequency `{freq}`",
                               kind="time_index_irregular")  # fmt: skip
        return expected
    if payload.start is None:
        if isinstance(freq, str):
            raise RequestError([loc, "freq"], "a pandas frequency needs a timestamp `start` or `time_index`",
                               kind="freq_invalid")  # fmt: skip
        return pd.RangeIndex(0, (freq or 1) * length, freq or 1)
    if isinstance(payload.start, int):
        if isinstance(freq, str):
            raise RequestError([loc, "freq"], "is a pandas frequency, but `start` is an integer", kind="freq_invalid")
        step = freq or 1
        return pd.RangeIndex(payload.start, payload.start + step * length, step)
    if freq is None or isinstance(freq, int):
        raise RequestError([loc, "freq"], "a pandas frequency is needed with a timestamp `start`", kind="freq_invalid")
    try:
        return pd.date_range(pd.Timestamp(payload.start), periods=length, freq=freq)
    except (pd.errors.OutOfBoundsDatetime, OverflowError) as err:
        raise RequestError([loc, "start"], str(err), kind="time_out_of_range") from err
    except (ValueError, TypeError) as err:
        raise RequestError([loc, "start"], f"with freq `{freq}`: {err}", kind="freq_invalid") from err
