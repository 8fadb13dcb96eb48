"""What a user sees: no dependency chatter on fit / predict / historical_forecasts / to_onnx, and an error that names
the extra to install where an optional dependency is missing."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from darts_timesclip.extras import MissingExtraError, require_extra
from tests._extras import requires

ROOT = Path(__file__).resolve().parents[1]

#: What Lightning, torch and the ONNX exporter print that a forecaster's user cannot act on.
NOISE = (
    "GPU available",
    "TPU available",
    "litlogger",
    "Loading `train_dataloader`",
    "`Trainer.fit` stopped",
    "LeafSpec",
    "pin_memory",
    "across ranks is zero",
    "Trainable params",  # the model summary table
    "[torch.onnx]",
    "torchvision",
    "Warning",
)

SCRIPT = """
import numpy as np, pandas as pd
from darts import TimeSeries
from darts_timesclip import TimesCLIPModel

t = np.arange(160, dtype=np.float32)
series = TimeSeries.from_times_and_values(pd.date_range("2024", periods=160, freq="h"), np.sin(t / 5)[:, None])
model = TimesCLIPModel(24, 6, backbone="tiny", patch_length=8, patch_stride=4, n_epochs=2, random_state=0)
print("<<default>>", flush=True)
model.fit(series)
model.predict(6)
model.historical_forecasts(series, start=120, forecast_horizon=6, retrain=False)
print("<<quiet>>", flush=True)
model.fit(series, verbose=False)
model.predict(6, verbose=False)
model.historical_forecasts(series, start=120, forecast_horizon=6, retrain=False, verbose=False)
model.to_onnx(MODEL_ONNX)
print("<<end>>", flush=True)
"""


def test_fit_predict_backtest_and_export_print_no_dependency_chatter(tmp_path):
    requires("onnxscript", "onnx")  # for the export part
    script = SCRIPT.replace("MODEL_ONNX", repr(str(tmp_path / "m.onnx")))
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONWARNINGS="default")
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert not [word for word in NOISE if word in output], output
    quiet = done.stdout.split("<<quiet>>")[1].split("<<end>>")[0]
    assert quiet.strip() == "" and done.stderr.strip() == ""  # verbose=False: nothing at all
    default = done.stdout.split("<<default>>")[1].split("<<quiet>>")[0]
    assert "Epoch" in default  # the progress bar is what a default fit shows


@pytest.mark.parametrize(
    ("blocked", "action", "extra"),
    [
        ("onnxscript", "to_onnx", "onnx"),
        ("fastapi", "create_app", "serve"),
        ("pytorch_forecasting", "adapter", "pytorch-forecasting"),
    ],
)
def test_a_missing_optional_dependency_names_its_extra(monkeypatch, blocked, action, extra):
    monkeypatch.setitem(sys.modules, blocked, None)  # as if it were not installed
    pattern = (
        rf"needs the `{extra}` extra, and `{blocked}` cannot be imported.*pip install \"darts-timesclip\[{extra}\]\""
    )
    with pytest.raises(MissingExtraError, match=pattern):
        if action == "to_onnx":
            from darts_timesclip.checked_model import CheckedInputsMixin

            CheckedInputsMixin.to_onnx(object(), "never-written.onnx")
        elif action == "create_app":
            from darts_timesclip.serve import create_app

            create_app(object())
        else:
            monkeypatch.delitem(sys.modules, "darts_timesclip.adapters.pytorch_forecasting", raising=False)
            importlib.import_module("darts_timesclip.adapters.pytorch_forecasting")


def test_the_serve_command_without_its_extra_says_what_to_install(monkeypatch, capsys, tmp_path):
    from darts_timesclip.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve", str(tmp_path / "model.pt")]) == 2
    err = capsys.readouterr().err
    assert "`darts-timesclip serve` needs the `serve` extra" in err and 'pip install "darts-timesclip[serve]"' in err


def test_require_extra_rejects_an_unknown_extra():
    with pytest.raises(ValueError, match=r"Unknown extra `servr`"):
        require_extra("servr", "something")
