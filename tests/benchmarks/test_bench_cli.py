"""End to end: the ``smoke`` tier through the CLI on a synthetic dataset, and the report."""

from __future__ import annotations

import csv
import importlib.util
import json
import re

import pytest

from benchmarks.anchors import ANCHORS, find_anchor
from benchmarks.cli import main
from benchmarks.report import CSV_COLUMNS, write_report
from tests.benchmarks.bench_helpers import run_record


def _smoke_models() -> list[str]:
    models = ["nlinear", "dlinear"]
    if importlib.util.find_spec("neuralforecast") is not None:
        models += ["patchtst", "itransformer"]
    try:
        import darts_timesclip  # noqa: F401
    except ImportError:  # the model package is built separately; run its smoke job once it imports
        pass
    else:
        models += ["timesclip", "vqtransformer"]
    return models


def test_smoke_tier_end_to_end_and_rerun_skips(ili_dir, tmp_path, capfd):
    out = tmp_path / "results"
    models = _smoke_models()
    argv = ["run", "--tier", "smoke", "--data-dir", str(ili_dir), "--output", str(out), "--no-progress-bar"]
    argv += ["--models", *models]
    assert main(argv) == 0

    # the console: one progress line per model (1 epoch each), none of Lightning's chatter
    err = capfd.readouterr().err
    for model in models:
        line = rf"^\d\d:\d\d:\d\d {model} national_illness H=24  epoch 1/1  train_loss \S+  val_loss \S+  \S+ s$"
        assert len(re.findall(line, err, re.MULTILINE)) == 1, err
    assert err.count(" epoch ") == len(models)
    for chatter in ("GPU available", "TPU available", "litlogger", "LeafSpec", "Loading `train_dataloader`"):
        assert chatter not in err

    runs = sorted((out / "runs").glob("*.json"))
    assert len(runs) == len(models)
    record = json.loads(runs[0].read_text())
    assert record["status"] == "done"
    assert record["metrics"]["n_test_windows"] == (966 - 773 + 96) - 96 - 24 + 1  # len(test) - L - H + 1
    assert "standardised" in record["metrics"]["scale"]
    for key in ("train_seconds", "inference_seconds"):
        assert record["timing"][key] > 0
    assert record["parameters"]["total"] >= record["parameters"]["trainable"] > 0
    assert record["budget"]["epochs_run"] == 1 and record["budget"]["train_windows_per_epoch"] == 64
    assert record["machine"]["label"] and record["memory"]["peak_mb"] > 0
    assert record["command"].startswith("python -m benchmarks run --tier smoke")
    assert record["budget"]["resumed_from_epoch"] is None
    # every job checkpointed its epoch, and each checkpoint went once its result file was written
    assert (out / "checkpoints").is_dir() and not list((out / "checkpoints").iterdir())

    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {"dataset", "horizon", "lookback", "model", "mse", "mae"} <= set(rows[0])
    assert {r["model"] for r in rows} == set(models)
    assert {r["dataset"] for r in rows} == {"national_illness"}
    table = (out / "results.md").read_text()
    assert "standardised scale" in table and "StandardScaler fitted on the train split only" in table
    assert (out / "plots" / "mse_national_illness_l96.png").stat().st_size > 0
    assert (out / "plots" / "forecast_national_illness_h24_l96.png").stat().st_size > 0

    # a rerun finds every job finished and trains nothing
    before = {p: p.stat().st_mtime_ns for p in runs}
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in sorted((out / "runs").glob("*.json"))} == before


def test_dry_run_lists_jobs(capsys, tmp_path):
    assert main(["run", "--tier", "quick", "--output", str(tmp_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 12 and all(line.startswith("todo") for line in lines)  # 2 datasets x 6 models
    assert not any("resumes" in line for line in lines)

    # a job interrupted in training left its epoch checkpoint: the listing says it is there, and that this
    # one cannot be resumed (a real checkpoint's line, "resumes after epoch k", is tested with the resume)
    run_id = lines[3].split()[1]
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / f"{run_id}.ckpt").write_bytes(b"not a checkpoint")
    assert main(["run", "--tier", "quick", "--output", str(tmp_path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[1] for line in lines if "cannot be read" in line] == [run_id]
    assert f"checkpoints/{run_id}.ckpt` cannot be read" in lines[3] and "delete it to train" in lines[3]
    assert main(["run", "--tier", "quick", "--output", str(tmp_path), "--dry-run", "--no-epoch-checkpoints"]) == 0
    assert "resumes" not in capsys.readouterr().out


def test_cli_errors_are_clear(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["run", "--output", str(tmp_path)])
    assert "Give `--tier` or `--datasets`" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--datasets", "nope", "--output", str(tmp_path)])
    assert "Unknown dataset `nope`" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--tier", "smoke", "--models", "lstm"])
    assert "unknown model `lstm`" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "--datasets", "traffic", "--models", "dlinear", "--data-dir", str(tmp_path)])
    assert "not found" in capsys.readouterr().err


def test_list_shows_registry(capsys, ili_dir):
    assert main(["list", "--data-dir", str(ili_dir)]) == 0
    out = capsys.readouterr().out
    assert "national_illness" in out and str(ili_dir) in out and "traffic" in out


def _record(model: str, mse: float, mae: float, seed: int = 1) -> dict:
    return run_record(model, mse, mae, seed=seed)


def test_report_puts_published_numbers_beside_ours(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    records = [_record("dlinear", 0.40, 0.41, seed=1), _record("dlinear", 0.42, 0.43, seed=2)]
    records.append(_record("timesclip", 0.5, 0.5))
    for record in records:
        (runs / f"{record['run_id']}.json").write_text(json.dumps(record))
    files = write_report(tmp_path, plots=False)
    with files.csv.open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 3
    table = files.markdown.read_text()
    # dlinear: mean of two seeds 0.41 vs published 0.386 -> +6.2%
    line = next(row for row in table.splitlines() if "| dlinear |" in row)
    assert "| 2 | 0.410 | 0.420 | 0.386 | 0.400 | +6.2% | +5.0% |" in line
    timesclip = next(row for row in table.splitlines() if "| timesclip |" in row)
    assert "| - | - | - | - |" in timesclip  # no published TimesCLIP number for ETTh1
    assert "`compact` (random initialisation, not pretrained)" in table
    assert "CPU only: 2 cores (test)" in table


def test_anchors_match_anchors_md():
    assert find_anchor("ETTh1", 96, 96, "dlinear").mse == 0.386
    assert find_anchor("exchange_rate", 96, 96, "timesclip").mae == 0.204
    assert find_anchor("ETTh1", 96, 96, "timesclip") is None
    assert find_anchor("ETTh1", 96, 336, "nlinear").mse == 0.374
    assert len({(a.dataset, a.horizon, a.lookback, a.model) for a in ANCHORS}) == len(ANCHORS)


def test_report_ranks_models_over_the_cells_where_all_of_them_ran(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    mses = {  # per horizon: H=96 and H=192 have every model; H=336 lacks patchtst and is left out
        96: {"timesclip": 0.30, "nlinear": 0.32, "dlinear": 0.34, "patchtst": 0.33, "itransformer": 0.31},
        192: {"timesclip": 0.42, "nlinear": 0.40, "dlinear": 0.44, "patchtst": 0.40, "itransformer": 0.45},
        336: {"timesclip": 0.90, "nlinear": 0.10, "dlinear": 0.10, "itransformer": 0.10},
    }
    for horizon, by_model in mses.items():
        for model, mse in by_model.items():
            record = _record(model, mse, mse)
            record["horizon"], record["run_id"] = horizon, f"etth1_h{horizon}_l96_{model}_s1_x"
            (runs / f"{record['run_id']}.json").write_text(json.dumps(record))
    table = write_report(tmp_path, plots=False).markdown.read_text()
    five, four = table.split("## Average MSE rank")[1].split("Over the ")[1:]
    assert five.startswith("2 cell(s)") and four.startswith(
        "3 cell(s) (dataset, H, L) where all of timesclip, nlinear,"
    )
    assert "patchtst" not in four.split("ran")[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in five.splitlines()}
    # H=96: timesclip 1, itransformer 2, nlinear 3, patchtst 4, dlinear 5; H=192: nlinear and patchtst tie for 1-2
    assert rows["timesclip"] == "| timesclip | 2.00 | 1 of 2 |"  # ranks 1 and 3
    assert rows["nlinear"] == "| nlinear | 2.25 | 0 of 2 |"  # 3 and 1.5 (tied first is not a win)
    assert rows["patchtst"] == "| patchtst | 2.75 | 0 of 2 |"
    assert rows["itransformer"] == "| itransformer | 3.50 | 0 of 2 |"
    assert rows["dlinear"] == "| dlinear | 4.50 | 0 of 2 |"
    # without patchtst, over all three cells: H=336 puts timesclip last (4) and ties the others for 1-3 (2 each)
    rows = {line.split(" | ")[0].strip("| "): line for line in four.splitlines()}
    assert rows["nlinear"] == "| nlinear | 2.00 | 1 of 3 |"  # ranks 3, 1, 2
    assert rows["timesclip"] == "| timesclip | 2.33 | 1 of 3 |"  # 1, 2, 4
    assert rows["itransformer"] == "| itransformer | 2.67 | 0 of 3 |"  # 2, 4, 2
    assert rows["dlinear"] == "| dlinear | 3.00 | 0 of 3 |"  # 4, 3, 2
