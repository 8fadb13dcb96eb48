"""The forecasting service: a real uvicorn server on 127.0.0.1 and a free port, called over HTTP."""

from __future__ import annotations

# ruff: noqa: E402 -- the optional dependencies are imported after the check that names a missing one
import json
import logging
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
import pandas as pd
import pytest
from darts.utils.likelihood_models import GaussianLikelihood, QuantileRegression

from tests._extras import requires

requires("fastapi", "serve")
requires("uvicorn", "serve")
requires("prometheus_client", "serve")
jsonschema = requires("jsonschema", "dev")  # with schemathesis

from prometheus_client.parser import text_string_to_metric_families

from darts_timesclip import TimesCLIPModel
from darts_timesclip.serve import (
    RULES_IN_WORDS,
    BatchSettings,
    ServiceLimits,
    create_app,
    load_model,
    running,
    serving,
)
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
        (lambda b: _with(b, ["num_samples"], 2), 422, ["num_samples"], "is 2; the model is deterministic"),
        (lambda b: _with(b, ["past_covariates", "time_index"],
                         [t.isoformat() for t in pd.date_range("2024-01-01", periods=160, freq="2h")]),
         422, ["past_covariates"], "have the time step `<2 \\* Hours>`; `series` has `<Hour>`"),
        (lambda b: _with(_with(b, ["series", "time_index"], None), ["series", "start"], "2024-01-01T00:00:00"), 422,
         ["series", "freq"], "a pandas frequency is needed with a timestamp `start`"),
        (lambda b: _with(_with(b, ["series", "values"], b["series"]["values"][:1]), ["series", "time_index"],
                         b["series"]["time_index"][:1]), 422, ["series", "values"], "has 1 rows; at least 24"),
        (lambda b: _with(_with(_with(b, ["past_covariates", "values"], b["past_covariates"]["values"][:120]),
                               ["past_covariates", "time_index"], b["past_covariates"]["time_index"][:120]),
                         ["n"], 2 * OCL), 422, ["past_covariates", "values"], r"the forecast needs 30 rows from"),
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
    bodies = [payload(series[: 60 + 4 * k], covariates, n=OCL + k % 3) for k in range(12)]
    sequential = [call(f"{server}/forecast", b)[1]["values"] for b in bodies]
    with ThreadPoolExecutor(8) as pool:
        concurrent = list(pool.map(lambda b: call(f"{server}/forecast", b), bodies * 2))
    assert all(status == 200 for status, _ in concurrent)
    # one forward pass for several requests: equal up to the float rounding of another batch composition
    for (_, answer), expected in zip(concurrent, sequential * 2):
        np.testing.assert_allclose(answer["values"], expected, rtol=0, atol=1e-6)


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
    command = [str(script), "serve", str(path), "--port", str(port), "--max-batch", "8", "--batch-wait-ms", "5",
               "--threads", "1"]  # fmt: skip
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
            status, answer = call(f"http://127.0.0.1:{port}/forecast", payload(series[:end], covariates[:end]))
            assert status == 200
        expected = model.predict(OCL, series[:60], past_covariates=covariates[:60], verbose=False)
        np.testing.assert_allclose(answer["values"], expected.values(), atol=1e-5)
    finally:
        process.terminate()
        log = process.communicate(timeout=30)[0]
    requests = [line for line in log.splitlines() if '"POST /forecast' in line]
    assert len(requests) == 3, log
    assert not [w for w in ("GPU available", "litlogger", "LeafSpec", "pin_memory", "Predicting") if w in log], log
    missing = subprocess.run([str(script), "serve", str(tmp_path / "nope.pt")], capture_output=True, text=True)
    assert missing.returncode != 0 and "is not a file" in missing.stderr


def test_the_console_script_explains_itself_and_names_a_bad_argument():
    script = str(Path(sys.executable).with_name("darts-timesclip"))
    shown = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: darts-timesclip")
    assert "run the forecasting service for a saved TimesCLIPModel" in shown.stdout
    shown = subprocess.run([script, "serve", "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "MODEL_PATH" in shown.stdout and "--max-batch MAX_BATCH" in shown.stdout
    bad = subprocess.run([script, "serve", "model.pt", "--max-batch", "0"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "darts-timesclip serve: error: argument --max-batch: expected a positive integer, got `0`" in bad.stderr
    bad = subprocess.run([script, "serve"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "the following arguments are required: MODEL_PATH" in bad.stderr


def test_the_command_leaves_threads_and_logger_levels_as_it_found_them(tmp_path, capsys):
    """Called in-process, ``serve`` sets ``--threads`` and quiets Lightning for its own length only."""
    import logging

    import torch

    from darts_timesclip.serve.cli import main

    threads = torch.get_num_threads()
    lightning = logging.getLogger("pytorch_lightning")
    level = lightning.level
    try:
        torch.set_num_threads(2)
        lightning.setLevel(logging.INFO)
        assert main([str(tmp_path / "nope.pt"), "--threads", "1"]) == 2  # refused after both were set
        assert "is not a file" in capsys.readouterr().err
        assert torch.get_num_threads() == 2 and lightning.level == logging.INFO
    finally:
        torch.set_num_threads(threads)
        lightning.setLevel(level)


# ----------------------------------------------------------------------------------------------- batching
def test_micro_batches_take_at_most_max_batch_items_and_answer_each_its_own():
    import threading

    from darts_timesclip.serve.batching import MicroBatcher

    entered, release, sizes, reported = threading.Event(), threading.Event(), [], []

    def run_batch(items):
        sizes.append(len(items))
        entered.set()
        release.wait(30)
        return [ValueError("three") if item == 3 else 10 * item for item in items]

    batcher = MicroBatcher(run_batch, max_batch=3, wait_s=0.0, on_batch=lambda n, s: reported.append((n, s)))
    batcher.start()
    try:
        futures = [batcher.submit(0)]
        assert entered.wait(30)
        futures += [batcher.submit(i) for i in range(1, 8)]  # queued while the first batch runs
        release.set()
        with pytest.raises(ValueError, match="three"):
            futures[3].result(30)
        results = [f.result(30) for i, f in enumerate(futures) if i != 3]
    finally:
        release.set()
        batcher.stop(30)
    assert sizes == [1, 3, 3, 1]
    assert results == [0, 10, 20, 40, 50, 60, 70]
    assert [n for n, _ in reported] == sizes and all(0 <= seconds < 30 for _, seconds in reported)

    # a batch waits up to `wait_s` for more: a request 0.3 s after the first joins it
    sizes.clear()
    release.set()
    batcher = MicroBatcher(run_batch, max_batch=2, wait_s=0.9)
    batcher.start()
    try:
        first = batcher.submit(1)
        time.sleep(0.3)
        second = batcher.submit(2)
        assert (first.result(30), second.result(30)) == (10, 20)
    finally:
        batcher.stop(30)
    assert sizes == [2]

    def failing(items):
        raise RuntimeError("the forward pass failed")

    batcher = MicroBatcher(failing, max_batch=4, wait_s=0.5)  # both items in one batch: both hear of the failure
    batcher.start()
    try:
        futures = [batcher.submit(i) for i in range(2)]
        for future in futures:
            with pytest.raises(RuntimeError, match="the forward pass failed"):
                future.result(10)
    finally:
        batcher.stop(10)


def test_requests_without_a_seed_draw_one_from_the_whole_range_and_seed_0_is_one(gaussian_model):
    model, series = gaussian_model
    body = payload(series, n=OCL, num_samples=5)
    with running(create_app(model)) as url:
        drawn = [call(f"{url}/forecast", body)[1]["seed"] for _ in range(8)]
        status, zero = call(f"{url}/forecast", {**body, "seed": 0})
    assert len(set(drawn)) == 8 and max(drawn) >= 2**16  # eight draws from [0, 2**32) fail this with p < 2**-100
    assert status == 200 and zero["seed"] == 0
    expected = model.predict(OCL, series, num_samples=5, random_state=0, verbose=False)
    np.testing.assert_allclose(zero["values"], np.quantile(expected.all_values(), 0.5, axis=-1), rtol=0, atol=1e-5)


def test_an_integer_time_index_is_continued_by_the_forecast(gaussian_model):
    model, series = gaussian_model
    values = series.values().tolist()
    body = {"series": {"values": values, "time_index": list(range(10, 10 + 2 * len(values), 2))}, "n": OCL}
    with running(create_app(model)) as url:
        status, answer = call(f"{url}/forecast", body)
    last = 10 + 2 * (len(values) - 1)
    assert status == 200 and answer["time_index"] == list(range(last + 2, last + 2 + 2 * OCL, 2))


def test_every_kind_of_time_index_is_continued_and_irregular_integers_are_refused(gaussian_model):
    model, series = gaussian_model
    values = series.values().tolist()
    length = len(values)
    limits = ServiceLimits(max_n=OCL, max_num_samples=5, default_num_samples=5, max_quantiles=3, max_abs_value=100.0)
    bodies = {
        "nothing": {"series": {"values": values}, "n": OCL},
        "start, freq 1": {"series": {"values": values, "start": 5, "freq": 1}, "n": OCL},
        "timestamps": {"series": {"values": values, "start": "2024-01-01T00:00:00", "freq": "h"}, "n": 2},
        "irregular": {"series": {"values": values, "time_index": [0, 1, *range(3, length + 1)]}, "n": OCL},
        "zero step": {"series": {"values": values, "time_index": [5] * length}, "n": OCL},
        "quantile over 1": {"series": {"values": values}, "n": OCL, "quantiles": [0.5, 1.5]},
        "largest seed": {"series": {"values": values}, "n": OCL, "seed": 2**32 - 1},
        "seed too large": {"series": {"values": values}, "n": OCL, "seed": 2**32},
        "most samples": {"series": {"values": values}, "n": OCL, "num_samples": 5},
        "at every limit": {
            "series": {"values": [*values[:-1], [100.0, -100.0]]},
            "n": OCL,
            "quantiles": [0.1, 0.5, 0.9],
        },
        "too many samples": {"series": {"values": values}, "n": OCL, "num_samples": 6},
    }
    with running(create_app(model, limits=limits)) as url:
        answers = {name: call(f"{url}/forecast", body) for name, body in bodies.items()}
    assert answers["nothing"][1]["time_index"] == list(range(length, length + OCL))
    assert answers["start, freq 1"][1]["time_index"] == list(range(5 + length, 5 + length + OCL))
    first = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=length)
    assert answers["timestamps"][1]["time_index"] == [t.isoformat() for t in pd.date_range(first, periods=2, freq="h")]
    for name in ("irregular", "zero step"):
        status, answer = answers[name]
        assert status == 422 and "integers must increase by a constant step" in answer["detail"][0]["msg"], name
    status, answer = answers["quantile over 1"]
    assert status == 422 and "must lie in (0, 1), got [1.5]" in answer["detail"][0]["msg"]
    assert answers["largest seed"][0] == 200 and answers["largest seed"][1]["seed"] == 2**32 - 1
    status, answer = answers["seed too large"]
    assert status == 422 and "a seed lies in [0, 2**32)" in answer["detail"][0]["msg"], answer
    assert answers["most samples"][0] == 200 and answers["most samples"][1]["num_samples"] == 5
    status, answer = answers["at every limit"]  # n, quantiles and values at the limits are within them
    assert status == 200 and sorted(answer["quantiles"]) == ["0.1", "0.5", "0.9"], answer
    status, answer = answers["too many samples"]
    assert status == 422 and "is 6, over the limit of 5" in answer["detail"][0]["msg"]


def test_covariates_that_start_with_the_input_window_are_enough(server, saved_model):
    model, series, covariates = saved_model
    start = len(series) - ICL
    aligned = covariates[start : len(series)]  # exactly the input window's rows
    status, answer = call(f"{server}/forecast", payload(series, aligned))
    expected = model.predict(OCL, series, past_covariates=aligned, verbose=False, show_warnings=False)
    assert status == 200, answer
    np.testing.assert_allclose(answer["values"], expected.values(), rtol=0, atol=1e-6)


def test_a_failed_batch_is_answered_request_by_request():
    from types import SimpleNamespace

    from darts_timesclip.serve.service import ForecastService, RequestError

    class Predictor:  # fails on any batch of several windows, on the window "bad" and on "boom"
        calls = 0

        def predict_windows(self, tasks):
            Predictor.calls += 1
            if tasks[0] == "boom":
                raise RuntimeError("out of memory")
            if len(tasks) > 1 or tasks[0] == "bad":
                raise ValueError(f"cannot forecast {tasks}")
            return [f"forecast of {tasks[0]}"]

    service = ForecastService.__new__(ForecastService)  # the batch logic only: no model
    service.predictor = Predictor()
    prepared = [SimpleNamespace(task=task) for task in ("a", "bad", "boom", "c")]
    results = service.predictor_batch(prepared)
    assert len(results) == 4 and results[0] == "forecast of a" and results[3] == "forecast of c"
    assert isinstance(results[1], RequestError) and "cannot forecast ['bad']" in results[1].msg
    assert isinstance(results[2], RuntimeError) and str(results[2]) == "out of memory"  # a server error, its own
    assert Predictor.calls == 5  # the batch, then each request once

    # a batch of one is answered as the same request is in a larger batch, and is not tried twice
    for task, answer in (("bad", RequestError), ("boom", RuntimeError)):
        Predictor.calls = 0
        (result,) = service.predictor_batch([SimpleNamespace(task=task)])
        assert isinstance(result, answer) and Predictor.calls == 1, (task, result)
    assert isinstance(result, RuntimeError) and not isinstance(result, ValueError)


def test_time_index_of_one_or_two_integers_and_of_three_timestamps():
    from types import SimpleNamespace

    from darts_timesclip.serve.service import RequestError, _time_index

    def index(times, freq=None):
        return _time_index(SimpleNamespace(time_index=times, start=None, freq=freq), "series", len(times))

    one = index([5], freq=3)  # one row: the step is `freq`
    assert (one.start, one.stop, one.step) == (5, 8, 3)
    assert index([5]).step == 1  # or 1 without `freq`
    two = index([4, 7])
    assert (two.start, two.stop, two.step) == (4, 10, 3)
    with pytest.raises(RequestError, match="integers must increase by a constant step"):
        index([7, 4])
    assert index(["2024-01-01", "2024-01-02", "2024-01-03"]).freqstr == "D"  # three timestamps give a frequency


@pytest.fixture(scope="module")
def gaussian_model():
    """A probabilistic model without covariates (batch_size 8: 30 samples are drawn in Darts' groups)."""
    series = make_series(96, n_components=2)
    model = TimesCLIPModel(**model_kwargs(likelihood=GaussianLikelihood(), batch_size=8))
    model.fit(series)
    return model, series


def _quantiles(forecast, levels):
    return {f"{q:g}": np.quantile(forecast.all_values(), q, axis=-1) for q in levels}


def test_batched_probabilistic_requests_equal_one_at_a_time_and_predict(gaussian_model):
    model, series = gaussian_model
    settings = [(OCL, 5, 11), (2 * OCL + 1, 30, 12), (3, 1, 13), (OCL, 30, 14), (2 * OCL + 1, 5, 15)]
    bodies = [
        payload(series[: 40 + 7 * k], n=n, num_samples=num_samples, seed=seed, quantiles=[0.2, 0.8])
        for k, (n, num_samples, seed) in enumerate(settings)
    ]
    batching = BatchSettings(max_batch=64, wait_ms=100)  # long enough that concurrent requests share a batch
    app = create_app(model, batching=batching)
    with running(app) as url:
        alone = [call(f"{url}/forecast", body)[1] for body in bodies]
        with ThreadPoolExecutor(len(bodies) * 2) as pool:
            together = list(pool.map(lambda b: call(f"{url}/forecast", b), bodies * 2))
        unseeded = call(f"{url}/forecast", {k: v for k, v in bodies[0].items() if k != "seed"})[1]
        again = call(f"{url}/forecast", {**bodies[0], "seed": unseeded["seed"]})[1]
        metrics = app.state.metrics.registry
        batches = metrics.get_sample_value("darts_timesclip_batch_size_count")
        batched = metrics.get_sample_value("darts_timesclip_batch_size_sum")
    assert all(status == 200 for status, _ in together)
    assert batches < batched  # some forward passes answered several requests
    for (_, answer), expected in zip(together, alone * 2):
        assert answer["seed"] == expected["seed"] and answer["num_samples"] == expected["num_samples"]
        np.testing.assert_allclose(answer["values"], expected["values"], rtol=0, atol=1e-6)
        for level in ("0.2", "0.8"):
            np.testing.assert_allclose(answer["quantiles"][level], expected["quantiles"][level], rtol=0, atol=1e-6)
    for body, answer, (n, num_samples, seed) in zip(bodies, alone, settings):  # Darts' samples for the seed
        forecast = model.predict(n, series[: len(body["series"]["values"])], num_samples=num_samples,
                                 random_state=seed, verbose=False)  # fmt: skip
        expected = _quantiles(forecast, [0.5, 0.2, 0.8])
        np.testing.assert_allclose(answer["values"], expected["0.5"], rtol=0, atol=1e-5)
        np.testing.assert_allclose(answer["quantiles"]["0.8"], expected["0.8"], rtol=0, atol=1e-5)
    assert unseeded["values"] == again["values"]  # the answered seed reproduces the answer


def test_metrics_count_requests_errors_latency_and_batches(server, saved_model):
    _, series, covariates = saved_model
    assert call(f"{server}/forecast", payload(series, covariates, n=OCL))[0] == 200  # whatever ran before
    call(f"{server}/forecast", raw=b"{")
    call(f"{server}/health")
    with urllib.request.urlopen(f"{server}/metrics", timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert samples[("darts_timesclip_requests_total", (("path", "/forecast"), ("status", "200")))] >= 1
    assert samples[("darts_timesclip_requests_total", (("path", "/forecast"), ("status", "422")))] >= 1
    assert samples[("darts_timesclip_request_errors_total", (("path", "/forecast"), ("status", "422"),
                                                             ("type", "json_invalid")))] >= 1  # fmt: skip
    assert samples[("darts_timesclip_request_duration_seconds_count", (("path", "/forecast"),))] >= 2
    assert samples[("darts_timesclip_batch_size_count", ())] >= 1
    assert ("darts_timesclip_requests_in_flight", ()) in samples


def test_stopping_the_server_answers_the_requests_in_flight(saved_model):
    model, series, covariates = saved_model
    app = create_app(model, batching=BatchSettings(max_batch=64, wait_ms=500))
    bodies = [payload(series[: 50 + k], covariates) for k in range(6)]
    with serving(app) as handle, ThreadPoolExecutor(len(bodies)) as pool:
        futures = [pool.submit(call, f"{handle.url}/forecast", body) for body in bodies]
        deadline = time.monotonic() + 60
        while app.state.metrics.registry.get_sample_value("darts_timesclip_requests_in_flight") < len(bodies):
            assert time.monotonic() < deadline, "the requests did not arrive"
            time.sleep(0.01)
        handle.stop()  # while every request waits for its batch
        answers = [future.result() for future in futures]
    assert [status for status, _ in answers] == [200] * len(bodies)
    expected = model.predict(OCL, series[:50], past_covariates=covariates, verbose=False)
    np.testing.assert_allclose(answers[0][1]["values"], expected.values(), rtol=0, atol=1e-6)


def test_the_darts_engine_answers_with_predict(saved_model, caplog):
    model, series, covariates = saved_model
    covariates = covariates.map(lambda x: x**3)  # not the training covariates, which Darts would fall back on
    with running(create_app(model, engine="darts")) as url, caplog.at_level(logging.WARNING):
        status, answer = call(f"{url}/forecast", payload(series, covariates, n=2 * OCL))
        info = call(f"{url}/model")[1]
    assert status == 200 and info["engine"] == "darts"
    # a request beyond `output_chunk_length` is answered without Darts' warning to the service's log
    assert not [r for r in caplog.records if "n > output_chunk_length" in r.getMessage()]
    expected = model.predict(2 * OCL, series, past_covariates=covariates, verbose=False, show_warnings=False)
    np.testing.assert_allclose(answer["values"], expected.values(), rtol=0, atol=1e-6)
    # without component names, the series are the model's components
    unnamed = payload(series, covariates, n=2 * OCL)
    for key in ("series", "past_covariates"):
        del unnamed[key]["components"]
    with running(create_app(model, engine="darts")) as url:
        status, answer = call(f"{url}/forecast", unnamed)
    assert status == 200 and answer["components"] == list(series.components)
    np.testing.assert_allclose(answer["values"], expected.values(), rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------------------------- the schema
def _request_schema(server):
    schema = call(f"{server}/openapi.json")[1]
    components = schema["components"]["schemas"]
    return components, {"$ref": "#/components/schemas/ForecastRequest", "components": {"schemas": components}}


def test_limits_that_would_refuse_a_valid_request_are_refused():
    with pytest.raises(ValueError, match=r"`default_num_samples=200` must lie in \[1, `max_num_samples`=16\]"):
        ServiceLimits(max_num_samples=16)


def test_the_openapi_schema_states_the_rules(server):
    components, _ = _request_schema(server)
    request = components["ForecastRequest"]
    assert request["required"] == ["series", "n", "past_covariates"]
    assert request["properties"]["n"]["maximum"] == 24 and request["properties"]["n"]["minimum"] == 1
    assert request["properties"]["num_samples"]["anyOf"][0]["maximum"] == 1  # deterministic
    values = components["SeriesPayload"]["properties"]["values"]
    assert values["minItems"] == ICL and values["items"]["minItems"] == values["items"]["maxItems"] == 2
    assert values["items"]["items"]["maximum"] == 1e15
    assert components["SeriesPayload"]["properties"]["components"]["anyOf"][0]["const"] == ["c0", "c1"]
    assert components["PastCovariatesPayload"]["properties"]["values"]["anyOf"][0]["items"]["maxItems"] == 1
    assert {rule["type"] for rule in request["x-rules-in-words"]} == set(RULES_IN_WORDS)
    assert "ForecastResponse" in components


@pytest.mark.parametrize(
    "change",
    [
        lambda b: _with(b, ["series", "values", 3, 1], math.nan),
        lambda b: _with(b, ["series", "values", 0, 0], math.inf),
        lambda b: _with(b, ["series", "values"], [[*r, 1.0] for r in b["series"]["values"]]),
        lambda b: _with(b, ["series", "components"], ["a", "b"]),
        lambda b: _with(_with(b, ["series", "values"], b["series"]["values"][:10]), ["series", "time_index"],
                        b["series"]["time_index"][:10]),
        lambda b: _with(b, ["series", "values", 5, 0], 1e300),
        lambda b: _with(b, ["n"], 25),
        lambda b: _with(b, ["n"], 0),
        lambda b: {k: v for k, v in b.items() if k != "past_covariates"},
        lambda b: _with(b, ["horizon"], 3),
        lambda b: _with(b, ["num_samples"], 5),
        lambda b: _with(b, ["series", "values"], []),
        lambda b: _with(b, ["series", "freq"], "fortnightly"),
        lambda b: _with(b, ["series", "time_index"], b["series"]["time_index"][:-1]),  # a rule in words
    ],
)  # fmt: skip
def test_every_refusal_is_for_a_rule_the_schema_states(server, saved_model, change):
    """A request the service refuses either breaks its JSON schema or one of the rules it lists in words."""
    _, series, covariates = saved_model
    body = change(payload(series, covariates))
    status, answer = call(f"{server}/forecast", raw=json.dumps(body).encode())
    assert status == 422, answer
    components, schema = _request_schema(server)
    in_words = {rule["type"] for rule in components["ForecastRequest"]["x-rules-in-words"]}
    try:
        json.dumps(body, allow_nan=False)
    except ValueError:  # NaN and Infinity are no JSON numbers (RFC 8259): outside any JSON schema
        assert answer["detail"][0]["type"] not in in_words
        return
    if answer["detail"][0]["type"] in in_words:
        jsonschema.validate(body, schema)  # valid by the schema: refused for a rule stated in words
    else:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(body, schema)
    jsonschema.validate(payload(series, covariates), schema)  # the valid request is valid by the schema


def test_requests_generated_from_the_schema_are_answered(gaussian_model):
    """Requests valid by the OpenAPI schema (generated by schemathesis) get 200, or a refusal for a rule the schema
    lists in words; every answer conforms to the schema's responses."""
    schemathesis = requires("schemathesis", "dev")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    model, _ = gaussian_model
    limits = ServiceLimits(max_n=12, max_rows=48, max_num_samples=16, default_num_samples=8, max_quantiles=4)
    with running(create_app(model, limits=limits)) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        operation = schema["/forecast"]["POST"]
        raw = call(f"{url}/openapi.json")[1]
        in_words = {rule["type"] for rule in raw["components"]["schemas"]["ForecastRequest"]["x-rules-in-words"]}
        statuses = []

        @settings(max_examples=40, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call(base_url=url)
            statuses.append(response.status_code)
            if response.status_code != 200:
                assert response.status_code == 422, (case.body, response.text)
                assert response.json()["detail"][0]["type"] in in_words, (case.body, response.text)
            # every check of schemathesis (status codes, content types, the response schemas) but its own rule that a
            # schema-valid request is never refused: the service may refuse it for a rule listed in words, checked above
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        check()
    assert statuses.count(200) >= 10, statuses  # most generated requests are forecast
