"""The FastAPI application: endpoints, the API key, the body limit, metrics, one log line per request."""

import contextlib
import logging
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from darts_timesclip.serve.batching import BatcherStopped, MicroBatcher
from darts_timesclip.serve.service import ForecastService, PreparedRequest, RequestError, ServiceLimits

#: The access log: one line per request (uvicorn's own access log is off).
access_logger = logging.getLogger("darts_timesclip.serve.access")


@dataclass(frozen=True)
class BatchSettings:
    """How requests are gathered into one forward pass.

    Parameters
    ----------
    max_batch
        Most requests per forward pass.
    wait_ms
        Longest wait for further requests after the first of a batch, in milliseconds.
    """

    max_batch: int = 64
    wait_ms: float = 2.0


class ServiceMetrics:
    """The service's Prometheus metrics, in a registry of its own (``GET /metrics``)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        prefix = "darts_timesclip"
        self.requests = Counter(f"{prefix}_requests", "HTTP requests answered, by path and status code",
                                ["path", "status"], registry=self.registry)  # fmt: skip
        self.errors = Counter(f"{prefix}_request_errors", "Refused or failed requests, by path, status and error type",
                              ["path", "status", "type"], registry=self.registry)  # fmt: skip
        self.latency = Histogram(
            f"{prefix}_request_duration_seconds", "Time from a request's arrival to its answer, by path", ["path"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )  # fmt: skip
        self.in_flight = Gauge(f"{prefix}_requests_in_flight", "Forecast requests being answered",
                               registry=self.registry)  # fmt: skip
        self.batch_size = Histogram(f"{prefix}_batch_size", "Forecast requests answered by one forward pass",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=self.registry)  # fmt: skip
        self.batch_seconds = Histogram(f"{prefix}_batch_duration_seconds", "Time of one batch's forecasts",
                                       registry=self.registry)  # fmt: skip

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)


class _Unauthorized(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def create_app(
    model: Any,
    *,
    api_key: str | None = None,
    limits: ServiceLimits | None = None,
    engine: str = "torch",
    batching: BatchSettings | None = None,
    device: str | None = None,
):
    """The FastAPI application serving ``model``.

    Parameters
    ----------
    model
        A fitted ``TimesCLIPModel`` (or ``VQTransformerModel``).
    api_key
        Key every request but ``/health`` and the OpenAPI pages must carry (``X-API-Key`` or ``Authorization:
        Bearer``); ``None``: open.
    limits
        Request limits (:class:`~darts_timesclip.serve.ServiceLimits`).
    engine
        ``"torch"`` or ``"onnx"``: forecasts of concurrent requests batched through the direct predictor; ``"darts"``:
        one Darts ``predict`` per request under a lock (the service before batching; kept to measure it).
    batching
        :class:`BatchSettings` of the ``torch`` and ``onnx`` engines.
    device
        Device of the ``torch`` engine (e.g. ``"cuda"``). Default: the network's.
    """
    from darts_timesclip.extras import require_extra

    require_extra("serve", "The forecasting service")
    from fastapi import Depends, FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from darts_timesclip.serve.schemas import error_model, request_models

    service = ForecastService(model, limits, engine=engine, device=device)
    batching = batching or BatchSettings()
    metrics = ServiceMetrics()
    batcher = None
    if engine != "darts":
        batcher = MicroBatcher(
            lambda items: service.predictor_batch(items),
            max_batch=batching.max_batch,
            wait_s=batching.wait_ms / 1000,
            on_batch=metrics.observe_batch,
        )
    ForecastRequest, ForecastResponse = request_models(service)
    ErrorResponse = error_model()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):  # noqa: ANN202 - Starlette's signature
        if batcher is not None:
            batcher.start()
        try:
            yield
        finally:  # uvicorn has answered every request in flight by now; answer what is still queued
            if batcher is not None:
                await run_in_threadpool(batcher.stop)

    app = FastAPI(
        title="darts-timesclip forecasting service",
        description=(
            f"Forecasts from a saved {type(model).__name__}. The request schema states the service's rules; those no "
            "JSON schema can state are listed in words under `x-rules-in-words` of `ForecastRequest`, each with the "
            "`type` of its refusal. Errors: `detail` lists `loc`, `msg` and `type`."
        ),
        version=_version(),
        lifespan=lifespan,
    )
    app.state.service, app.state.metrics, app.state.batcher = service, metrics, batcher

    def error(status: int, detail: list[dict[str, Any]], headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": detail}, headers=headers)

    @app.middleware("http")
    async def observe(request: Request, call_next):  # noqa: ANN202 - Starlette's middleware signature
        start = time.perf_counter()
        response = await _limited(request, call_next)
        seconds = time.perf_counter() - start
        path = request.url.path
        if path in ("/forecast", "/model", "/health", "/metrics"):
            metrics.requests.labels(path, str(response.status_code)).inc()
            metrics.latency.labels(path).observe(seconds)
        client = request.client
        where = f"{client.host}:{client.port}" if client else "-"
        version = request.scope.get("http_version", "1.1")
        access_logger.info(
            '%s - "%s %s HTTP/%s" %d %.1f ms', where, request.method, path, version, response.status_code, 1e3 * seconds
        )
        return response

    async def _limited(request: Request, call_next):  # noqa: ANN202
        limit = service.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return _refused(request, 413, f"payload of {declared} bytes is over the limit of {limit} bytes")
        if request.method == "POST" and declared is None:
            body = await request.body()  # chunked: Starlette keeps it for the endpoint
            if len(body) > limit:
                return _refused(request, 413, f"payload of {len(body)} bytes is over the limit of {limit} bytes")
        return await call_next(request)

    def _refused(request: Request, status: int, msg: str) -> JSONResponse:
        metrics.errors.labels(request.url.path, str(status), "payload_too_large").inc()
        return error(status, [{"loc": ["body"], "msg": msg, "type": "payload_too_large"}])

    @app.exception_handler(RequestError)
    async def request_error(request: Request, err: RequestError) -> JSONResponse:
        metrics.errors.labels(request.url.path, str(err.status), err.kind).inc()
        return error(err.status, err.detail())

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in err.errors()]  # fmt: skip
        metrics.errors.labels(request.url.path, "422", detail[0]["type"] if detail else "invalid").inc()
        return error(422, detail)

    @app.exception_handler(BatcherStopped)
    async def stopping(request: Request, err: BatcherStopped) -> JSONResponse:
        metrics.errors.labels(request.url.path, "503", "shutting_down").inc()
        return error(503, [{"loc": [], "msg": str(err), "type": "shutting_down"}])

    def check_key(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given is None or not secrets.compare_digest(given.encode(), api_key.encode()):
            raise _Unauthorized("missing" if given is None else "wrong")

    @app.exception_handler(_Unauthorized)
    async def unauthorized(request: Request, err: _Unauthorized) -> JSONResponse:
        metrics.errors.labels(request.url.path, "401", "unauthorized").inc()
        msg = f"API key {err.reason}: send it as `X-API-Key: KEY` or `Authorization: Bearer KEY`"
        return error(
            401, [{"loc": ["header", "x-api-key"], "msg": msg, "type": "unauthorized"}], {"WWW-Authenticate": "Bearer"}
        )

    refusals = {
        401: {"model": ErrorResponse, "description": "API key missing or wrong"},
        413: {"model": ErrorResponse, "description": "payload over the body limit"},
        422: {"model": ErrorResponse, "description": "a rule of the schema (or one of `x-rules-in-words`) broken"},
        503: {"model": ErrorResponse, "description": "the service is shutting down"},
    }

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/model", dependencies=[Depends(check_key)], responses={401: refusals[401]})
    def describe() -> dict[str, Any]:
        return service.describe()

    @app.get("/metrics", dependencies=[Depends(check_key)], responses={401: refusals[401]})
    def prometheus_metrics() -> Response:
        """The service's metrics in the Prometheus text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/forecast", dependencies=[Depends(check_key)], responses={200: {"model": ForecastResponse}, **refusals})
    async def forecast(request: ForecastRequest) -> JSONResponse:  # type: ignore[valid-type]
        metrics.in_flight.inc()
        try:
            prepared: PreparedRequest = await run_in_threadpool(service.prepare, request)
            if batcher is None:
                answer = await run_in_threadpool(service.forecast_now, prepared)
            else:
                import asyncio

                forecast = await asyncio.wrap_future(batcher.submit(prepared))
                answer = service.answer(prepared, forecast)
            return JSONResponse(answer)
        finally:
            metrics.in_flight.dec()

    return app


def _version() -> str:
    from darts_timesclip import __version__

    return __version__


@dataclass
class RunningServer:
    """A server started by :func:`running`: its base URL and the uvicorn server (``stop()`` ends it gracefully)."""

    url: str
    server: Any
    thread: threading.Thread

    def stop(self, timeout: float = 60.0) -> None:
        """Stop listening, answer the requests in flight, run the shutdown (which drains the batcher), and return."""
        self.server.should_exit = True
        self.thread.join(timeout=timeout)


@contextlib.contextmanager
def running(app: Any, host: str = "127.0.0.1", port: int | None = None, timeout: float = 60.0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread (tests, notebooks, load tests); yield its base URL.

    ``port=None`` picks a free port. The server stops gracefully when the ``with`` block ends.
    """
    with serving(app, host, port, timeout) as handle:
        yield handle.url


@contextlib.contextmanager
def serving(
    app: Any, host: str = "127.0.0.1", port: int | None = None, timeout: float = 60.0
) -> Iterator[RunningServer]:
    """As :func:`running`, yielding a :class:`RunningServer` (to stop it while requests are in flight)."""
    import uvicorn

    if port is None:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on {host}:{port} within {timeout} s")
        time.sleep(0.02)
    handle = RunningServer(f"http://{host}:{port}", server, thread)
    try:
        yield handle
    finally:
        handle.stop(timeout)
