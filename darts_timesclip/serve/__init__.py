"""A forecasting service for a saved :class:`~darts_timesclip.TimesCLIPModel` (FastAPI + uvicorn).

``darts-timesclip serve MODEL_PATH [--engine torch|onnx|darts] [--max-batch 64] [--batch-wait-ms 2] [--threads N]
[--device cuda] [--host 127.0.0.1] [--port 8000] [--api-key KEY]``, or ``python -m darts_timesclip.serve ...``;
``MODEL_PATH`` is what ``model.save(MODEL_PATH)`` wrote.

Endpoints
---------
``GET /health``
    ``{"status": "ok"}``; never needs the key (for load balancers).
``GET /model``
    Input and output lengths, component names, backbone, pretrained or random weights, likelihood, engine, limits.
``POST /forecast``
    ``{"series": {"values": [[...], ...], "components": [...], "time_index": [...] | "start" + "freq"},
    "past_covariates": {...}?, "n": int, "num_samples": int?, "quantiles": [float]?, "seed": int?}`` -> the forecast
    with its time index; for a probabilistic model (a likelihood), ``values`` is the median of ``num_samples``
    samples, ``quantiles`` maps each level to its values, and ``seed`` is the samples' seed (the same request with
    it gets the same answer).
``GET /metrics``
    Prometheus metrics: requests and errors by path and status, latency histograms, requests in flight, requests per
    forward pass and the time of each batch.
``GET /docs``, ``GET /openapi.json``
    The OpenAPI page and schema (open, like ``/health``). The schema is built for the loaded model and states the
    service's rules (row counts, component names, value ranges, ``n <= max_n``, sample and quantile limits); those no
    JSON schema can state are listed in words under ``x-rules-in-words``, each with the ``type`` of its refusal.

Bad requests get a 4xx JSON error whose ``detail`` lists ``{"loc": [...], "msg": ..., "type": ...}`` as FastAPI's own
validation errors do: 422 for values (NaN / inf, wrong component count or names, a too-short series, ``n`` over the
limit, malformed JSON), 413 for an oversized payload, 401 for a missing or wrong key when one is set (``--api-key``
or ``$DARTS_TIMESCLIP_API_KEY``; sent as ``X-API-Key: KEY`` or ``Authorization: Bearer KEY``).

Concurrency: requests are parsed and checked concurrently; their windows are gathered for at most
``--batch-wait-ms`` (or ``--max-batch`` requests) and forecast by one forward pass of the direct predictor
(:class:`~darts_timesclip.predictor.DirectPredictor`, the ``torch`` or ``onnx`` engine) on a worker thread. Answers
are those of one request at a time (up to float rounding of a different batch), including the samples of a seeded
probabilistic request. Stopping (SIGINT / SIGTERM) answers every request in flight before the process ends.
"""

from darts_timesclip.serve.app import BatchSettings, RunningServer, ServiceMetrics, create_app, running, serving
from darts_timesclip.serve.cli import API_KEY_ENV, build_parser, load_model, main, quiet_prediction_logs, serve
from darts_timesclip.serve.service import (
    DEFAULT_QUANTILES,
    RULES_IN_WORDS,
    ForecastService,
    RequestError,
    ServiceLimits,
)

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_QUANTILES",
    "RULES_IN_WORDS",
    "BatchSettings",
    "ForecastService",
    "RequestError",
    "RunningServer",
    "ServiceLimits",
    "ServiceMetrics",
    "build_parser",
    "create_app",
    "load_model",
    "main",
    "quiet_prediction_logs",
    "running",
    "serve",
    "serving",
]
