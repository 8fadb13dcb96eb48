"""The forecasting service: a real uvicorn server on 127.0.0.1 and a free port, called over HTTP."""

from __future__ import annotations

import json
import math
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from darts.utils.likelihood_models import QuantileRegression

from darts_timesclip import TimesCLIPModel
from darts_timesclip.serve import ServiceLimits, create_app, load_model, running
from tests._helpers import make_series, model_kwargs

ICL, OCL = 24, 6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, body: object = None, *, raw: bytes | None = None, headers: dict | None = None):
    """(status, parsed JSON) of a GET (no body) or POST."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def payload(series, covariates=None, n=OCL, **extra):
    def encode(s):
        return {
            "values": s.values().tolist(),
            "components": list(s.components),
            "time_index": [t.isoformat() for t in s.time_index],
        }

    body = {"series": encode(series), "n": n, **extra}
    if covariates is not None:
        body["past_covariates"] = encode(covariates)
    return body


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A tiny model with past covariates, saved and loaded back the way the service loads it."""
    series = make_series(120, n_components=2)
    covariates = make_series(160, n_components=1, seed=1).with_columns_renamed("c0", "temp")
    model = TimesCLIPModel(**model_kwargs())
    model.fit(series, past_covariates=covariates)
    path = tmp_path_factory.mktemp("served") / "model.pt"
    model.save(str(path))
    return load_model(path), series, covariates


@pytest.fixture(scope="module")
def server(saved_model):
    model, _, _ = saved_model
    with running(create_app(model, limits=ServiceLimits(max_n=24, max_body_bytes=200_000))) as url:
        yield url


def test_health_model_and_openapi(server):
    assert call(f"{server}/health") == (200, {"status": "ok"})
    status, info = call(f"{server}/model")
    assert status == 200
    assert info["input_chunk_length"] == ICL and info["output_chunk_length"] == OCL
    assert info["components"] == ["c0", "c1"] and info["past_covariates"] == ["temp"]
    assert info["backbone"] == "tiny" and info["pretrained"] is False
    assert info["likelihood"] is None and info["probabilistic"] is False
    assert info["limits"]["max_n"] == 24
    status, schema = call(f"{server}/openapi.json")
    assert status == 200 and "/forecast" in schema["paths"]
    with urllib.request.urlopen(f"{server}/docs", timeout=30) as page:
        assert page.status == 200 and b"swagger" in page.read().lower()


def test_forecast_equals_predict(server, saved_model):
    model, series, covariates = saved_model
    for n in (OCL, 2 * OCL):  # one chunk, and an auto-regressive one that reads the covariates' future
        status, answer = call(f"{server}/forecast", payload(series, covariates, n=n))
        assert status == 200, answer
        expected = model.predict(n, series, past_covariates=covariates, verbose=False)
        assert answer["components"] == ["c0", "c1"]
        assert answer["time_index"] == [t.isoformat() for t in expected.time_index]
        np.testing.assert_allclose(np.array(answer["values"]), expected.values(), rtol=0, atol=1e-6)


def test_integer_index_from_start(server, saved_model):
    model, series, covariates = saved_model
    body = {
        "series": {"values": series.values().tolist(), "start": 100},
        "past_covariates": {"values": covariates.values()[:, 0].tolist(), "start": 100},
        "n": OCL,
    }
    status, answer = call(f"{server}/forecast", body)
    assert status == 200, answer
    assert answer["time_index"] == list(range(220, 220 + OCL))


def _with(body, path, value):
    body = json.loads(json.dumps(body))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("change", "status", "loc", "msg"),
    [
        (lambda b: _with(b, ["series", "values", 3, 1], math.nan), 422, ["series", "values", 3, 1], "NaN or infinite"),
        (lambda b: _with(b, ["series", "values", 0, 0], math.inf), 422, ["series", "values", 0, 0], "NaN or infinite"),
        (lambda b: _with(b, ["series", "values"], [[*r, 1.0] for r in b["series"]["values"]]), 422,
         ["series", "values"], r"has 3 component\(s\); the model was trained on 2"),
        (lambda b: _with(b, ["series", "components"], ["a", "b"]), 422, ["series", "components"],
         r"are \['a', 'b'\]; the model was trained on \['c0', 'c1'\]"),
        (lambda b: _with(_with(b, ["series", "values"], b["series"]["values"][:10]), ["series", "time_index"],
                         b["series"]["time_index"][:10]), 422, ["series", "values"], "has 10 rows; at least 24"),
        (lambda b: _with(b, ["series", "values", 5, 0], 1e300), 422, ["series", "values", 5, 0], "float32 range"),
        (lambda b: _with(b, ["n"], 25), 422, ["n"], "is 25, over this service's limit of 24"),
        (lambda b: _with(b, ["n"], 0), 422, ["n"], "greater than or equal to 1"),
        (lambda b: {k: v for k, v in b.items() if k != "past_covariates"}, 422, ["past_covariates"],
         r"are required: the model was trained with \['temp'\]"),
        (lambda b: _with(b, ["series", "time_index"], b["series"]["time_index"][:-1]), 422, ["series", "time_index"],
         "entries for 120 rows"),
        (lambda b: _with(b, ["horizon"], 3), 422, ["horizon"], "Extra inputs are not permitted"),
        (lambda b: _with(b, ["num_samples"], 5), 422, ["num_samples"], "the model is deterministic"),
    ],
)  # fmt: skip
def test_bad_requests_get_4xx_naming_the_field(server, saved_model, change, status, loc, msg):
    _, series, covariates = saved_model
    raw = json.dumps(change(payload(series, covariates))).encode()  # NaN / Infinity as JSON literals
    got, answer = call(f"{server}/forecast", raw=raw)
    assert got == status, answer
    detail = answer["detail"][0]
    assert detail["loc"][1:] == loc
    assert re.search(msg, detail["msg"]), detail["msg"]


def test_malformed_json_and_oversized_payloads(server):
    status, answer = call(f"{server}/forecast", raw=b'{"series": {"values": [[1, 2]], "n": ')
    assert status == 422 and answer["detail"][0]["type"] == "json_invalid"
    status, answer = call(f"{server}/forecast", raw=b"[" + b"1.0," * 60_000 + b"1.0]")
    assert status == 413 and "over the limit of 200000 bytes" in answer["detail"][0]["msg"]


def test_api_key(saved_model):
    model, series, covariates = saved_model
    with running(create_app(model, api_key="s3cret")) as url:
        assert call(f"{url}/health")[0] == 200
        status, answer = call(f"{url}/forecast", payload(series, covariates))
        assert status == 401 and "API key missing" in answer["detail"][0]["msg"]
        assert call(f"{url}/model", headers={"X-API-Key": "nope"})[0] == 401
        assert call(f"{url}/model", headers={"X-API-Key": "s3cret"})[0] == 200
        assert (
            call(f"{url}/forecast", payload(series, covariates), headers={"Authorization": "Bearer s3cret"})[0] == 200
        )


def test_concurrent_requests_do_not_corrupt_each_other(server, saved_model):
    _, series, covariates = saved_model
    bodies = [payload(series[: 60 + 4 * k], covariates, n=OCL) for k in range(12)]
    sequential = [call(f"{server}/forecast", b)[1]["values"] for b in bodies]
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(lambda b: call(f"{server}/forecast", b), bodies * 2))
    assert all(status == 200 for status, _ in concurrent)
    assert [answer["values"] for _, answer in concurrent] == sequential * 2


def test_probabilistic_model_returns_quantiles(tmp_path):
    series = make_series(96, n_components=2)
    model = TimesCLIPModel(**model_kwargs(likelihood=QuantileRegression([0.1, 0.5, 0.9])))
    model.fit(series)
    with running(create_app(model)) as url:
        info = call(f"{url}/model")[1]
        assert info["probabilistic"] and info["likelihood"]["quantiles"] == [0.1, 0.5, 0.9]
        status, answer = call(f"{url}/forecast", payload(series, num_samples=50, quantiles=[0.05, 0.95]))
    assert status == 200, answer
    low, high = np.array(answer["quantiles"]["0.05"]), np.array(answer["quantiles"]["0.95"])
    median = np.array(answer["values"])
    assert low.shape == median.shape == (OCL, 2) and answer["num_samples"] == 50
    assert (low <= median).all() and (median <= high).all() and (high - low).max() > 0


def test_the_console_script_serves_a_saved_model_and_logs_one_line_per_request(saved_model, tmp_path):
    model, series, covariates = saved_model
    path = tmp_path / "cli.pt"
    model.save(str(path))
    port = _free_port()
    script = Path(sys.executable).with_name("darts-timesclip")  # the console script the package installs
    command = [str(script), "serve", str(path), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                assert call(f"http://127.0.0.1:{port}/health") == (200, {"status": "ok"})
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "the service did not come up"
                time.sleep(0.5)
        assert call(f"http://127.0.0.1:{port}/model")[1]["components"] == ["c0", "c1"]
        for end in (40, 50, 60):
            status, _ = call(f"http://127.0.0.1:{port}/forecast", payload(series[:end], covariates[:end]))
            assert status == 200
    finally:
        process.terminate()
        log = process.communicate(timeout=30)[0]
    requests = [line for line in log.splitlines() if '"POST /forecast' in line]
    assert len(requests) == 3, log
    assert not [w for w in ("GPU available", "litlogger", "LeafSpec", "pin_memory", "Predicting") if w in log], log
    missing = subprocess.run([str(script), "serve", str(tmp_path / "nope.pt")], capture_output=True, text=True)
    assert missing.returncode != 0 and "is not a file" in missing.stderr
