"""A forecasting service for a saved :class:`~darts_timesclip.TimesCLIPModel` (FastAPI + uvicorn).

``darts-timesclip serve MODEL_PATH [--host 127.0.0.1] [--port 8000] [--api-key KEY]``, or
``python -m darts_timesclip.serve MODEL_PATH ...``; ``MODEL_PATH`` is what ``model.save(MODEL_PATH)`` wrote.

Endpoints
---------
``GET /health``
    ``{"status": "ok"}``; never needs the key (for load balancers).
``GET /model``
    Input and output lengths, component names, backbone, pretrained or random weights, likelihood, limits.
``POST /forecast``
    ``{"series": {"values": [[...], ...], "components": [...], "time_index": [...] | "start" + "freq"},
    "past_covariates": {...}?, "n": int, "num_samples": int?, "quantiles": [float]?}`` -> the forecast with its time
    index; for a probabilistic model (a likelihood), ``values`` is the median of ``num_samples`` samples and
    ``quantiles`` maps each level to its values.
``GET /docs``, ``GET /openapi.json``
    The OpenAPI page and schema (open, like ``/health``).

Bad requests get a 4xx JSON error whose ``detail`` lists ``{"loc": [...], "msg": ..., "type": ...}`` as FastAPI's own
validation errors do: 422 for values (NaN / inf, wrong component count or names, a too-short series, ``n`` over the
limit, malformed JSON), 413 for an oversized payload, 401 for a missing or wrong key when one is set (``--api-key``
or ``$DARTS_TIMESCLIP_API_KEY``; sent as ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``).

Concurrency: requests are parsed and validated concurrently (FastAPI's thread pool); the forecast itself runs under
one lock, because a Darts model's ``predict`` builds a Lightning trainer on the shared model and TimesCLIP's
embedding cache is shared state. Forecasts of concurrent requests are therefore exactly those of sequential ones.
"""

import argparse
import contextlib
import logging
import math
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

API_KEY_ENV = "DARTS_TIMESCLIP_API_KEY"
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceLimits:
    """What one request may ask for.

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
    """

    max_n: int | None = None
    max_num_samples: int = 1000
    default_num_samples: int = 200
    max_body_bytes: int = 10 * 2**20
    max_rows: int = 100_000


class RequestError(ValueError):
    """A bad request: where (``loc``) and what; answered with ``status`` (422 unless stated)."""

    def __init__(self, loc: Sequence[str | int], msg: str, status: int = 422, kind: str = "value_error") -> None:
        super().__init__(msg)
        self.loc, self.msg, self.status, self.kind = ["body", *loc], msg, status, kind

    def detail(self) -> list[dict[str, Any]]:
        return [{"loc": self.loc, "msg": self.msg, "type": self.kind}]


def _schemas():
    """The request models (built lazily: pydantic is only needed with the ``serve`` extra)."""
    from pydantic import BaseModel, ConfigDict, Field

    class SeriesPayload(BaseModel):
        """A series: ``values`` as rows (time) x columns (components); a univariate series may be a flat list."""

        model_config = ConfigDict(extra="forbid")
        values: list[list[float]] | list[float] = Field(description="rows x components (or one flat column)")
        components: list[str] | None = Field(default=None, description="column names; default: the model's")
        time_index: list[str] | list[int] | None = Field(default=None, description="timestamps or integers per row")
        start: str | int | None = Field(default=None, description="first time stamp (with `freq`) or integer")
        freq: str | int | None = Field(default=None, description="pandas frequency, or an integer step")

    class ForecastRequest(BaseModel):
        """What to forecast."""

        model_config = ConfigDict(extra="forbid")
        series: SeriesPayload
        past_covariates: SeriesPayload | None = None
        n: int = Field(ge=1, description="forecast horizon in time steps")
        num_samples: int | None = Field(default=None, ge=1, description="samples of a probabilistic model")
        quantiles: list[float] | None = Field(default=None, description="levels in (0, 1) of a probabilistic model")

    return SeriesPayload, ForecastRequest


class ForecastService:
    """The model, its description and the forecasting logic, free of HTTP (the app below is a thin layer).

    Parameters
    ----------
    model
        A fitted ``TimesCLIPModel``.
    limits
        Request limits.
    """

    def __init__(self, model: Any, limits: ServiceLimits | None = None) -> None:
        if not getattr(model, "is_fitted", False):
            raise ValueError("The service needs a fitted model; `fit()` (or `load()` a saved one) first.")
        self.model = model
        limits = limits or ServiceLimits()
        if limits.max_n is None:
            limits = ServiceLimits(**{**limits.__dict__, "max_n": 10 * model.output_chunk_length})
        self.limits = limits
        self.lock = threading.Lock()
        self.dtype = next(model.model.parameters()).dtype
        n_targets, n_covariates = model.trained_component_counts
        self.n_targets, self.n_covariates = n_targets, n_covariates
        self.components = getattr(model, "target_components", None) or [f"c{i}" for i in range(n_targets)]
        covs = getattr(model, "past_covariate_components", None)
        self.covariate_components = covs or ([f"cov{i}" for i in range(n_covariates)] if n_covariates else None)

    @property
    def probabilistic(self) -> bool:
        return bool(self.model.supports_probabilistic_prediction)

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` returns."""
        config, likelihood = self.model.config, self.model.likelihood
        described = None
        if likelihood is not None:
            described = {"name": type(likelihood).__name__}
            if getattr(likelihood, "quantiles", None) is not None:
                described["quantiles"] = [float(q) for q in likelihood.quantiles]
        return {
            "model": type(self.model).__name__,
            "input_chunk_length": self.model.input_chunk_length,
            "output_chunk_length": self.model.output_chunk_length,
            "components": self.components,
            "past_covariates": self.covariate_components,
            "backbone": config.backbone,
            "pretrained": bool(config.pretrained),
            "likelihood": described,
            "probabilistic": self.probabilistic,
            "limits": {
                "max_n": self.limits.max_n,
                "max_num_samples": self.limits.max_num_samples,
                "max_body_bytes": self.limits.max_body_bytes,
                "max_rows": self.limits.max_rows,
            },
        }

    # -- requests ------------------------------------------------------------------------------------------------

    def to_series(self, payload: Any, loc: str, expected: list[str], min_length: int):
        """A request's series as a ``TimeSeries``, or a :class:`RequestError` naming the field and the problem."""
        import pandas as pd
        from darts import TimeSeries

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
        names = payload.components or expected
        if len(names) != values.shape[1]:
            raise RequestError([loc, "components"], f"names {len(names)} component(s) for {values.shape[1]} columns")
        trained_names = self.model.target_components if loc == "series" else self.model.past_covariate_components
        if payload.components is not None and trained_names and list(names) != list(trained_names):
            raise RequestError([loc, "components"], f"are {list(names)}; the model was trained on {trained_names}")
        if len(values) < min_length:
            raise RequestError(
                [loc, "values"], f"has {len(values)} rows; at least {min_length} are needed for this forecast"
            )
        index = self._time_index(payload, loc, len(values))
        with np.errstate(over="ignore"):  # overflow is what the next check reports
            cast = values.astype(self.dtype_numpy)
        bad = np.argwhere(~np.isfinite(cast))
        if len(bad):
            r, c = (int(i) for i in bad[0])
            raise RequestError(
                [loc, "values", r, c], f"{values[r, c]:g} at row {r} is out of the model's {cast.dtype} range"
            )
        return TimeSeries.from_times_and_values(index, cast, columns=pd.Index(names, dtype=object))

    @property
    def dtype_numpy(self) -> type:
        import torch

        return np.float64 if self.dtype == torch.float64 else np.float32

    @staticmethod
    def _time_index(payload: Any, loc: str, length: int):
        import pandas as pd

        if payload.time_index is not None:
            if payload.start is not None:
                raise RequestError([loc, "start"], "give `time_index` or `start`, not both")
            if len(payload.time_index) != length:
                raise RequestError(
                    [loc, "time_index"], f"has {len(payload.time_index)} entries for {length} rows of values"
                )
            if all(isinstance(t, int) for t in payload.time_index):
                steps = np.diff(payload.time_index)
                if length > 1 and (len(set(steps.tolist())) != 1 or steps[0] <= 0):
                    raise RequestError([loc, "time_index"], "integers must increase by a constant step")
                step = int(steps[0]) if length > 1 else 1
                return pd.RangeIndex(payload.time_index[0], payload.time_index[0] + step * length, step)
            try:
                times = pd.DatetimeIndex(pd.to_datetime(payload.time_index))
            except (ValueError, TypeError) as err:
                raise RequestError([loc, "time_index"], f"is not a list of timestamps: {err}") from err
            freq = payload.freq or (pd.infer_freq(times) if length >= 3 else None)
            if freq is None:
                raise RequestError([loc, "time_index"], "has no regular frequency; give `freq` or regular timestamps")
            try:
                expected = pd.date_range(times[0], periods=length, freq=freq)
            except (ValueError, TypeError) as err:
                raise RequestError([loc, "freq"], f"`{freq}` is not a pandas frequency: {err}") from err
            if not expected.equals(times):
                raise RequestError([loc, "time_index"], f"is not regular at frequency `{freq}`")
            return expected
        if payload.start is None:
            return pd.RangeIndex(0, length)
        if isinstance(payload.start, int):
            step = payload.freq if isinstance(payload.freq, int) else 1
            if step <= 0:
                raise RequestError([loc, "freq"], f"an integer step must be positive, got {step}")
            return pd.RangeIndex(payload.start, payload.start + step * length, step)
        if payload.freq is None:
            raise RequestError([loc, "freq"], "is needed with a timestamp `start`")
        try:
            return pd.date_range(payload.start, periods=length, freq=payload.freq)
        except (ValueError, TypeError) as err:
            raise RequestError([loc, "start"], f"with freq `{payload.freq}`: {err}") from err

    def forecast(self, request: Any) -> dict[str, Any]:
        """Answer a ``ForecastRequest`` (raises :class:`RequestError` for bad requests)."""
        limits, model = self.limits, self.model
        if request.n > limits.max_n:
            raise RequestError(["n"], f"is {request.n}, over this service's limit of {limits.max_n}")
        num_samples = request.num_samples
        quantiles = request.quantiles
        if not self.probabilistic:
            if num_samples not in (None, 1):
                raise RequestError(["num_samples"], f"is {num_samples}; the model is deterministic (use 1 or omit)")
            if quantiles:
                raise RequestError(["quantiles"], "need a probabilistic model (trained with a likelihood)")
            num_samples = 1
        else:
            num_samples = num_samples or limits.default_num_samples
            if num_samples > limits.max_num_samples:
                raise RequestError(["num_samples"], f"is {num_samples}, over the limit of {limits.max_num_samples}")
            quantiles = list(quantiles or DEFAULT_QUANTILES)
            bad = [q for q in quantiles if not (isinstance(q, float | int) and 0 < q < 1 and math.isfinite(q))]
            if bad:
                raise RequestError(["quantiles"], f"must lie in (0, 1), got {bad}")
        series = self.to_series(request.series, "series", self.components, model.input_chunk_length)
        covariates = None
        if self.n_covariates:
            if request.past_covariates is None:
                raise RequestError(
                    ["past_covariates"], f"are required: the model was trained with {self.covariate_components}"
                )
            covariates = self.to_series(
                request.past_covariates, "past_covariates", self.covariate_components, model.input_chunk_length
            )
        elif request.past_covariates is not None:
            raise RequestError(["past_covariates"], "were given, but the model was trained without past covariates")
        try:
            with self.lock:
                forecast = model.predict(
                    request.n, series, past_covariates=covariates, num_samples=num_samples, verbose=False
                )
        except ValueError as err:  # Darts' own checks (covariates too short, index mismatch, ...)
            loc = ["past_covariates"] if "covariates" in str(err) else ["series"]
            raise RequestError(loc, str(err)) from err
        if not np.isfinite(forecast.all_values(copy=False)).all():  # e.g. 1e300: finite in, overflow inside
            peak = float(np.abs(series.values(copy=False)).max())
            raise RequestError(["series", "values"], f"gave a non-finite forecast; values up to {peak:g} are too large")
        index = forecast.time_index
        times = [t.isoformat() for t in index] if hasattr(index, "tz") else [int(t) for t in index]
        answer: dict[str, Any] = {"time_index": times, "components": list(forecast.components), "n": request.n}
        if num_samples == 1:
            answer["values"] = forecast.values().tolist()
        else:
            samples = forecast.all_values(copy=False)  # [n, components, samples]
            answer["values"] = np.quantile(samples, 0.5, axis=-1).tolist()
            answer["quantiles"] = {f"{q:g}": np.quantile(samples, q, axis=-1).tolist() for q in quantiles}
            answer["num_samples"] = num_samples
        return answer


def create_app(model: Any, *, api_key: str | None = None, limits: ServiceLimits | None = None):
    """The FastAPI application serving ``model``.

    Parameters
    ----------
    model
        A fitted ``TimesCLIPModel``.
    api_key
        Key every ``/model`` and ``/forecast`` request must carry (``X-API-Key`` or ``Authorization: Bearer``);
        ``None``: open.
    limits
        Request limits (:class:`ServiceLimits`).
    """
    from darts_timesclip.extras import require_extra

    require_extra("serve", "The forecasting service")
    from fastapi import Depends, FastAPI, Request
    from fastapi.responses import JSONResponse

    service = ForecastService(model, limits)
    _, ForecastRequest = _schemas()
    app = FastAPI(
        title="darts-timesclip forecasting service",
        description="Forecasts from a saved TimesCLIPModel. Errors: `detail` lists `loc`, `msg` and `type`.",
        version=_version(),
    )
    app.state.service = service

    def error(status: int, detail: list[dict[str, Any]], headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):  # noqa: ANN202 - Starlette's middleware signature
        limit = service.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            msg = f"payload of {declared} bytes is over the limit of {limit} bytes"
            return error(413, [{"loc": ["body"], "msg": msg, "type": "payload_too_large"}])
        if request.method == "POST" and declared is None:
            body = await request.body()  # chunked: Starlette keeps it for the endpoint
            if len(body) > limit:
                msg = f"payload of {len(body)} bytes is over the limit of {limit} bytes"
                return error(413, [{"loc": ["body"], "msg": msg, "type": "payload_too_large"}])
        return await call_next(request)

    @app.exception_handler(RequestError)
    async def request_error(_: Request, err: RequestError) -> JSONResponse:
        return error(err.status, err.detail())

    def check_key(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given is None or not secrets.compare_digest(given.encode(), api_key.encode()):
            reason = "missing" if given is None else "wrong"
            raise _Unauthorized(reason)

    @app.exception_handler(_Unauthorized)
    async def unauthorized(_: Request, err: _Unauthorized) -> JSONResponse:
        msg = f"API key {err.reason}: send it as `X-API-Key: KEY` or `Authorization: Bearer KEY`"
        return error(
            401, [{"loc": ["header", "x-api-key"], "msg": msg, "type": "unauthorized"}], {"WWW-Authenticate": "Bearer"}
        )

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/model", dependencies=[Depends(check_key)])
    def describe() -> dict[str, Any]:
        return service.describe()

    @app.post("/forecast", dependencies=[Depends(check_key)])
    def forecast(request: ForecastRequest) -> dict[str, Any]:  # type: ignore[valid-type]
        return service.forecast(request)

    return app


class _Unauthorized(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextlib.contextmanager
def running(app: Any, host: str = "127.0.0.1", port: int | None = None, timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread (tests, notebooks, load tests); yield its base URL.

    ``port=None`` picks a free port. The server stops when the ``with`` block ends.
    """
    import uvicorn

    if port is None:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on {host}:{port} within {timeout} s")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout)


def quiet_prediction_logs() -> None:
    """Silence what every Darts ``predict`` prints (Lightning's device banner, data-loader warnings): one line per
    request in a service's log is noise."""
    import warnings

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*num_workers.*")


def _version() -> str:
    from darts_timesclip import __version__

    return __version__


def load_model(path: str | Path) -> Any:
    """``TimesCLIPModel.load(path)`` on the CPU, with a clear error for a missing file."""
    from darts_timesclip import TimesCLIPModel

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`MODEL_PATH` `{path}` is not a file; pass what `model.save(path)` wrote.")
    return TimesCLIPModel.load(str(path), map_location="cpu")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of ``serve`` (shared by ``darts-timesclip serve`` and ``python -m darts_timesclip.serve``)."""
    parser = parser or argparse.ArgumentParser(
        prog="python -m darts_timesclip.serve", description=__doc__.split("\n")[0]
    )
    parser.add_argument("model_path", metavar="MODEL_PATH", help="a file written by `TimesCLIPModel.save`")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="default: 8000")
    parser.add_argument("--api-key", default=None, help=f"required key (default: ${API_KEY_ENV}; none: open)")
    parser.add_argument("--max-n", type=int, default=None, help="largest horizon (default: 10 x output length)")
    parser.add_argument("--max-body-mb", type=float, default=10.0, help="largest request body in MiB (default: 10)")
    parser.add_argument("--log-level", default="info", help="uvicorn's log level")
    return parser


def serve(args: argparse.Namespace) -> int:
    """Load the model and run uvicorn until interrupted."""
    from darts_timesclip.extras import MissingExtraError, require_extra

    try:
        require_extra("serve", "`darts-timesclip serve`")
    except MissingExtraError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import uvicorn

    limits = ServiceLimits(max_n=args.max_n, max_body_bytes=int(args.max_body_mb * 2**20))
    quiet_prediction_logs()
    try:
        model = load_model(args.model_path)
        app = create_app(model, api_key=args.api_key or os.environ.get(API_KEY_ENV), limits=limits)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m darts_timesclip.serve``."""
    return serve(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
