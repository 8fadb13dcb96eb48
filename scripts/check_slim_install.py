"""CI: the wheel, installed alone with the ``serve`` extra in a fresh environment, works there.

Run with the development environment's interpreter, from anywhere::

    .venv/bin/python scripts/check_slim_install.py [--work-dir build/slim-install]

1. builds the wheel (``pip wheel --no-deps --no-build-isolation``) from a copy of the files a build reads;
2. in the development environment, where pyarrow is installed (so pandas 3 stores strings with it), fits a tiny
   ``TimesCLIPModel``, saves it, and writes a request and the forecast the model gives for it;
3. creates a fresh virtual environment and installs the wheel, non-editable, with only the ``serve`` extra (and the
   pinned CPU build of torch, under ``constraints.txt``: a loose torch requirement pulls GBs of CUDA wheels);
4. runs this script again inside it (``--inside``), which checks that the package is the installed one and pyarrow
   is absent, imports every public name, expects the pytorch-forecasting adapter to fail with an error naming its
   extra, runs ``darts-timesclip --help``, and serves the saved model with ``darts-timesclip serve``: the answer to
   the request must be the development environment's forecast.

Prints the time of each step; exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What a wheel build reads (the package folders are discovered by setup.py).
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", "darts_timesclip", "adapters")
#: Modules whose public names (``__all__``) must import with the wheel and the ``serve`` extra alone.
PUBLIC_MODULES = (
    "darts_timesclip",
    "darts_timesclip.network",
    "darts_timesclip.backbones",
    "darts_timesclip.pretraining",
    "darts_timesclip.regression",
    "darts_timesclip.vq",
)
MODEL_FILE, REQUEST_FILE = "model.pt", "request.json"
#: Seconds the service may take to start (its first start imports, and compiles, torch, Darts and FastAPI).
SERVICE_START_TIMEOUT = 600


# ---------------------------------------------------------------------------------------------- shared with tests
def build_wheel(out_dir: Path, python: str = sys.executable) -> Path:
    """Build the package's wheel into ``out_dir`` from a temporary copy of :data:`BUILD_INPUTS`; return its path.

    A copy, because setuptools builds in the source tree and ships what an older build left in ``build/lib``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="darts-timesclip-src-") as tmp:
        source = Path(tmp)
        for name in BUILD_INPUTS:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
            elif (ROOT / name).exists():
                shutil.copy2(ROOT / name, source / name)
        before = set(out_dir.glob("*.whl"))
        command = [python, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q"]
        subprocess.run([*command, "-w", str(out_dir)], check=True, capture_output=True, text=True, timeout=600)
    built = sorted(set(out_dir.glob("*.whl")) - before) or sorted(out_dir.glob("darts_timesclip-*.whl"))
    if len(built) != 1:
        raise RuntimeError(f"Expected one wheel in `{out_dir}`, found {[p.name for p in built]}.")
    return built[0]


# ---------------------------------------------------------------------------------------------- development side
@contextmanager
def step(name: str) -> Iterator[None]:
    start = time.perf_counter()
    print(f"[slim install] {name} ...", flush=True)
    yield
    print(f"[slim install] {name}: {time.perf_counter() - start:.1f} s", flush=True)


def save_model_and_request(work_dir: Path) -> None:
    """Fit and save a tiny model here (pyarrow installed); write a request and this environment's forecast for it."""
    import numpy as np
    import pandas as pd
    from darts import TimeSeries

    from darts_timesclip import TimesCLIPModel

    if importlib.util.find_spec("pyarrow") is None:
        raise SystemExit(
            "error: the development environment has no pyarrow (the `benchmark` extra brings it); without it the "
            "saved model cannot carry pandas' pyarrow-backed strings, which is what the slim environment must load."
        )
    assert pd.Index(["a"]).dtype.storage == "pyarrow", "pandas does not store strings with pyarrow here"
    t = np.arange(120)
    values = np.stack([np.sin(2 * np.pi * t / 12), np.cos(2 * np.pi * t / 8) + 0.01 * t], axis=1).astype("float32")
    index = pd.date_range("2024-01-01", periods=len(t), freq="h")
    series = TimeSeries.from_times_and_values(index, values, columns=["load", "temperature"])
    trainer = {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False, "logger": False}
    model = TimesCLIPModel(
        input_chunk_length=24,
        output_chunk_length=6,
        backbone="tiny",
        patch_length=8,
        patch_stride=4,
        n_epochs=1,
        batch_size=16,
        random_state=0,
        pl_trainer_kwargs=trainer,
    )
    model.fit(series, verbose=False)
    model.save(str(work_dir / MODEL_FILE))
    window = series[-48:]
    forecast = model.predict(6, window, verbose=False)
    request = {
        "series": {
            "values": window.values().tolist(),
            "components": list(window.components),
            "start": window.start_time().isoformat(),
            "freq": "h",
        },
        "n": 6,
    }
    expected = {"values": forecast.values().tolist(), "time_index": [t.isoformat() for t in forecast.time_index]}
    (work_dir / REQUEST_FILE).write_text(json.dumps({"request": request, "expected": expected}))


def create_slim_env(venv: Path, wheel: Path) -> Path:
    """A fresh virtual environment with the wheel (non-editable), its ``serve`` extra and the pinned torch."""
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # --no-compile: byte-compiling torch and transformers at install time doubles the step; imports compile lazily
    install = [str(python), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check"]
    install += ["-c", str(ROOT / "constraints.txt"), "torch==2.13.0", f"{wheel}[serve]"]
    done = subprocess.run(install, capture_output=True, text=True)
    if done.returncode != 0:  # pip's output only on failure (it warns about every local index it cannot read)
        raise SystemExit(f"error: `{' '.join(install)}` failed:\n{done.stdout}{done.stderr}")
    return python


def run_outside(work_dir: Path) -> None:
    total = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    with step("build the wheel"):
        wheel = build_wheel(work_dir / "dist")
        print(f"[slim install] {wheel.name}")
    with step("save a model in the development environment (pyarrow installed)"):
        save_model_and_request(work_dir)
    with step("create a fresh environment: the wheel with the `serve` extra"):
        python = create_slim_env(work_dir / "venv", wheel)
    with step("check the installed package in it"):
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONNOUSERSITE": "1"}
        env.pop("PYTHONPATH", None)
        # run from the work folder: the source tree must not be importable there
        command = [str(python), str(Path(__file__).resolve()), "--inside", "--work-dir", str(work_dir)]
        if subprocess.run(command, cwd=work_dir, env=env).returncode != 0:
            raise SystemExit("[slim install] failed: the installed package does not work in the slim environment")
    print(f"[slim install] passed in {time.perf_counter() - total:.1f} s", flush=True)


# ---------------------------------------------------------------------------------------------- inside the slim env
def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"error: {message}")


def check_installed_package() -> None:
    import darts_timesclip

    installed = Path(darts_timesclip.__file__).resolve()
    check(Path(sys.prefix).resolve() in installed.parents, f"darts_timesclip comes from `{installed}`, not the venv")
    check(importlib.util.find_spec("pyarrow") is None, "pyarrow is installed in the slim environment")
    check(importlib.util.find_spec("pytorch_forecasting") is None, "the slim environment has pytorch-forecasting")
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            getattr(module, name)
        print(f"[slim install]   {module_name}: {len(module.__all__)} public names import")
    for module_name in ("darts_timesclip.explainability", "darts_timesclip.serve", "darts_timesclip.cli"):
        importlib.import_module(module_name)


def check_adapter_names_its_extra() -> None:
    from darts_timesclip.extras import MissingExtraError

    try:
        importlib.import_module("darts_timesclip.adapters.pytorch_forecasting")
    except MissingExtraError as err:
        check("`pytorch-forecasting` extra" in str(err), f"the adapter's error does not name its extra: {err}")
        print("[slim install]   the adapter without its extra: the error names `pytorch-forecasting`")
    else:
        raise SystemExit("error: the pytorch-forecasting adapter imported without its extra")


def check_console_script() -> Path:
    script = Path(sys.executable).with_name("darts-timesclip")
    for args in (["--help"], ["serve", "--help"]):
        done = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120)
        check(done.returncode == 0 and "usage: darts-timesclip" in done.stdout, f"`darts-timesclip {args}`: {done}")
    print("[slim install]   darts-timesclip --help")
    return script


def _call(url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def check_service(script: Path, work_dir: Path) -> None:
    """Load the development environment's model (no pyarrow here) and answer its request through the service."""
    from darts_timesclip import TimesCLIPModel

    TimesCLIPModel.load(str(work_dir / MODEL_FILE), map_location="cpu")  # the direct error, should loading fail
    saved = json.loads((work_dir / REQUEST_FILE).read_text())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [str(script), "serve", str(work_dir / MODEL_FILE), "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        start = time.monotonic()
        deadline = start + SERVICE_START_TIMEOUT
        while True:
            try:
                health = _call(f"{url}/health")
                break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None:
                    raise SystemExit(f"error: the service exited: {process.communicate()[0]}") from None
                check(time.monotonic() < deadline, f"the service did not come up in {SERVICE_START_TIMEOUT} s")
                time.sleep(0.5)
        check(health == (200, {"status": "ok"}), f"GET /health answered {health}")
        print(f"[slim install]   darts-timesclip serve: up after {time.monotonic() - start:.1f} s")
        status, answer = _call(f"{url}/forecast", saved["request"])
        check(status == 200, f"POST /forecast answered {status}: {answer}")
    finally:
        process.terminate()
        log = process.communicate(timeout=30)[0]
    expected = saved["expected"]
    check(answer["time_index"] == expected["time_index"], f"time index {answer['time_index']} != {expected}")
    worst = max(
        abs(a - b) / (1e-5 + abs(b))
        for row, ref in zip(answer["values"], expected["values"], strict=True)
        for a, b in zip(row, ref, strict=True)
    )
    check(worst < 1e-4, f"the service's forecast differs from the development environment's (relative {worst:.2e})")
    print(f"[slim install]   served the saved model: the forecast matches (largest relative difference {worst:.1e})")
    if log.strip():
        print(log.rstrip())


def run_inside(work_dir: Path) -> None:
    check_installed_package()
    check_adapter_names_its_extra()
    check_service(check_console_script(), work_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=Path, default=ROOT / "build" / "slim-install", help="default: %(default)s")
    parser.add_argument("--inside", action="store_true", help="run the checks in the slim environment (internal)")
    args = parser.parse_args(argv)
    work_dir = args.work_dir.resolve()
    if args.inside:
        run_inside(work_dir)
    else:
        run_outside(work_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
