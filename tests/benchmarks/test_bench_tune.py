"""``python -m benchmarks tune``: search spaces, tuned configurations, and a tiny search on a local Ray instance that
is interrupted, resumes, and ends with the configuration an uninterrupted search finds."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._extras import requires

ray = requires("ray", "benchmark")  # Ray Tune
requires("optuna", "benchmark")

from benchmarks.cli import build_parser, main  # noqa: E402 -- after the skips
from benchmarks.models import model_config  # noqa: E402
from benchmarks.studies import tune  # noqa: E402
from benchmarks.study import StudyOptions  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_every_searched_parameter_changes_the_configuration_it_names():
    base = model_config("timesclip", "ETTh1", 96)
    params = {
        "learning_rate": 3e-4,
        "text_tower_lr": 2e-5,
        "weight_decay": 0.05,
        "dropout": 0.3,
        "lr_schedule": "type1",
        "batch_size": 32,
        "patches": "24/12",
        "alignment_weight": 0.5,
        "text_tower_width": 64,
        "text_tower_layers": 2,
    }
    assert set(params) == {p.name for p in tune.search_space("timesclip")}
    config = tune.apply_params(base, params)
    assert (config.learning_rate, config.weight_decay, config.lr_schedule, config.batch_size) == (
        3e-4,
        0.05,
        "type1",
        32,
    )
    arch = config.architecture
    assert (arch["patch_length"], arch["patch_stride"], arch["dropout"], arch["alignment_weight"]) == (24, 12, 0.3, 0.5)
    assert (arch["text_tower_lr"], arch["text_tower_width"], arch["text_tower_layers"]) == (2e-5, 64, 2)
    assert base.architecture["patch_length"] == 16 and base.weight_decay is None  # the base is left as it was
    patchtst = tune.apply_params(model_config("patchtst", "ETTh1", 96), {"dropout": 0.1})
    assert patchtst.architecture["dropout"] == patchtst.architecture["fc_dropout"] == 0.1


def test_unknown_models_and_parameters_are_refused():
    with pytest.raises(ValueError, match=r"Model `vqtransformer` has no search space; searchable: timesclip"):
        tune.search_space("vqtransformer")
    with pytest.raises(ValueError, match=r"Unknown parameter\(s\) \['lr'\] for `nlinear`"):
        tune.apply_params(model_config("nlinear", "ETTh1", 96), {"lr": 0.1})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--num-samples", "0"], r"`--num-samples` must be a positive integer, got `0`"),
        (["--reduction-factor", "1"], r"`--reduction-factor` must be at least 2, got `1`"),
        (["--grace-epochs", "5", "--max-epochs", "3"], r"`--grace-epochs 5` is more than `--max-epochs 3`"),
        (["--model", "arima"], r"Model `arima` has no search space"),
        (["--patience", "0"], r"`--patience` must be a positive integer, got `0`"),
    ],
)
def test_bad_arguments_name_the_option_and_value(options, message):
    argv = ["tune", "--model", "timesclip", "--datasets", "ETTh1", *options]
    args = build_parser().parse_args(argv)
    with pytest.raises(ValueError, match=message):
        tune.TuneStudy.from_args(args).searches(StudyOptions.from_args(args, argv))


def test_searches_take_the_shared_options(tmp_path, capsys):
    argv = ["tune", "--model", "nlinear", "--datasets", "etth1", "exchange_rate", "--max-epochs", "4"]
    argv += ["--max-samples-per-ts", "256", "--scale", "tiny", "--output", str(tmp_path)]
    args = build_parser().parse_args(argv)
    searches = tune.TuneStudy.from_args(args).searches(StudyOptions.from_args(args, argv))
    assert [s.name for s in searches] == ["nlinear_ETTh1_h96_l96", "nlinear_exchange_rate_h96_l96"]
    assert {(s.max_epochs, s.max_samples_per_ts, s.scale, s.backbone) for s in searches} == {(4, 256, "tiny", "tiny")}
    assert main([*argv, "--dry-run"]) == 0  # the searches, not run
    assert capsys.readouterr().out.splitlines() == [
        "todo  nlinear_ETTh1_h96_l96  20 trials, <= 4 epochs",
        "todo  nlinear_exchange_rate_h96_l96  20 trials, <= 4 epochs",
    ]


def test_a_trial_stops_as_the_tuned_model_will_train():
    params = {"learning_rate": 2e-4, "batch_size": 64}
    spec = tune.SearchSpec("timesclip", "ETTh1", max_epochs=20)
    config = tune.trial_config(spec, params)
    assert config.patience == tune.TUNED_PATIENCE == 3 and config.batch_size == 64
    assert config.learning_rate == 2e-4
    assert tune.apply_params(model_config("timesclip", "ETTh1", 96), params).patience == 30  # the paper's
    own = tune.trial_config(tune.SearchSpec("timesclip", "ETTh1", patience=None), params)
    assert own.patience == 30
    argv = ["tune", "--model", "timesclip", "--datasets", "ETTh1", "--patience", "5"]
    args = build_parser().parse_args(argv)
    (search,) = tune.TuneStudy.from_args(args).searches(StudyOptions.from_args(args, argv))
    assert search.patience == 5


@pytest.mark.parametrize("patience", [1, None])
def test_a_trial_ends_after_patience_epochs_without_a_lower_validation_loss(monkeypatch, patience):
    import numpy as np
    import ray.tune
    import torch
    from darts import TimeSeries

    reports = []
    monkeypatch.setattr(ray.tune, "report", reports.append)  # what the trial hands Ray Tune after each epoch
    rng = np.random.default_rng(0)
    train = TimeSeries.from_values(np.cumsum(rng.normal(size=(400, 2)), axis=0).astype(np.float32))
    val = TimeSeries.from_values(rng.normal(size=(80, 2)).astype(np.float32))  # unrelated to train: no steady gain
    spec = tune.SearchSpec("nlinear", "ETTh1", horizon=8, lookback=24, max_epochs=8, patience=patience, scale="tiny")
    params = {"learning_rate": 0.05, "batch_size": 32}
    resources = tune.TrialResources(cpus_per_trial=torch.get_num_threads(), accelerator="cpu")  # keeps the threads
    tune._trial(params, spec=spec, resources=resources, train=train, val=val)
    losses = [r["val_loss"] for r in reports]
    assert [r["epoch"] for r in reports] == list(range(1, len(losses) + 1))
    best = int(np.argmin(losses)) + 1
    if patience is None:  # NLinear's own patience (3) is the model's
        assert len(losses) == best + 3 < 8, losses
    else:  # ended one epoch after its best, and before its last epoch
        assert len(losses) == best + 1 < 8, losses


def _record(directory: Path, model: str, dataset: str, horizon: int, params: dict) -> None:
    path = directory / f"{model}_{dataset}_h{horizon}_l96" / "best.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"params": params, "horizon": horizon, "trials": 7}))


def test_a_tuned_model_takes_its_searched_configuration(tmp_path):
    _record(tmp_path, "nlinear", "ETTh1", 96, {"learning_rate": 0.02, "batch_size": 64})
    base = model_config("nlinear", "ETTh1", 192)
    config = tune.tuned_config(base, "ETTh1", 192, tune_dir=tmp_path)  # H = 96's search serves H = 192
    assert (config.name, config.learning_rate, config.batch_size) == ("nlinear-tuned", 0.02, 64)
    assert config.patience == tune.TUNED_PATIENCE and "searched on the validation split (tune, H=96, 7 trials)" in (
        config.source
    )
    assert config.config_hash() != base.config_hash()
    _record(tmp_path, "nlinear", "ETTh1", 192, {"learning_rate": 0.001})
    assert tune.tuned_config(base, "ETTh1", 192, tune_dir=tmp_path).learning_rate == 0.001  # its own search first
    with pytest.raises(FileNotFoundError, match=r"`nlinear-tuned` on ETTh2: no search found .*benchmarks tune"):
        tune.tuned_config(model_config("nlinear", "ETTh2", 96), "ETTh2", 96, tune_dir=tmp_path)


def _command(data_dir: Path, output: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "benchmarks",
        "tune",
        "--model",
        "timesclip",
        "--datasets",
        "national_illness",
        "--horizon",
        "24",
        "--scale",
        "tiny",
        "--num-samples",
        "2",
        "--max-epochs",
        "2",
        "--max-samples-per-ts",
        "32",
        "--max-concurrent",
        "1",
        "--data-dir",
        str(data_dir),
        "--output",
        str(output),
    ]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), RAY_DISABLE_USAGE_STATS="1")


def _finished_trials(output: Path) -> int:
    search = output / "timesclip_national_illness_h24_l96" / "ray" / "search"
    done = 0
    for result in search.glob("*/result.json"):
        lines = result.read_text().splitlines()
        done += bool(lines) and json.loads(lines[-1]).get("done", False)
    return done


def _best(output: Path) -> tuple[dict, float, list[dict]]:
    directory = output / "timesclip_national_illness_h24_l96"
    record = json.loads((directory / "best.json").read_text())
    with open(directory / "trials.csv", newline="") as handle:
        trials = list(csv.DictReader(handle))
    return record["params"], record["val_loss"], trials


def test_an_interrupted_search_resumes_and_finds_what_an_uninterrupted_one_finds(ili_dir, tmp_path):
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    done = subprocess.run(_command(ili_dir, reference), env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "timesclip_national_illness_h24_l96: best val_loss" in done.stdout

    # the same search, interrupted (Ctrl-C) once its first trial has finished, then run again
    process = subprocess.Popen(_command(ili_dir, resumed), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _finished_trials(resumed) < 1:
        assert process.poll() is None and time.monotonic() < deadline, "the first trial did not finish"
        time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=300)
    assert _finished_trials(resumed) < 2, "the interruption came too late to test anything"
    # ended where it stands: the finished trial is recorded (and is the best), no trial runs
    concluded = subprocess.run(
        [*_command(ili_dir, resumed), "--conclude", "--no-report"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert concluded.returncode == 0, concluded.stderr[-3000:]
    assert _finished_trials(resumed) == 1
    params, loss, trials = _best(resumed)
    assert len(trials) == 1 and float(trials[0]["best_val_loss"]) == pytest.approx(loss)
    again = subprocess.run(_command(ili_dir, resumed), env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]

    # the study's report, beside the searches: each search's best configuration
    report = (resumed / "tuning.md").read_text()
    assert "| timesclip | national_illness | 24 | 96 |" in report

    params, loss, trials = _best(resumed)
    expected_params, expected_loss, expected_trials = _best(reference)
    assert params == expected_params and loss == pytest.approx(expected_loss, rel=1e-5)
    # the same configurations were tried (ASHA may stop a restarted trial at another rung: epochs can differ)
    names = [p.name for p in tune.search_space("timesclip")]
    assert sorted(tuple(t[n] for n in names) for t in trials) == sorted(
        tuple(t[n] for n in names) for t in expected_trials
    )
    assert len(trials) == 2 and {t["status"] for t in trials} <= {"completed", "stopped"}
    search = json.loads((resumed / "timesclip_national_illness_h24_l96" / "best.json").read_text())["search"]
    assert search["patience"] == tune.TUNED_PATIENCE and search["max_epochs"] == 2


def test_concluding_a_search_that_never_ran_is_refused(tmp_path):
    spec = tune.SearchSpec("timesclip", "ETTh1", max_epochs=3)
    with pytest.raises(FileNotFoundError, match=r"`--conclude`: there is no search `timesclip_ETTh1_h96_l96` to end"):
        tune.run_search(spec, tmp_path, None, tune.TrialResources(), "tune", conclude=True)


def test_the_records_of_an_interrupted_search_skip_the_trials_it_had_not_started():
    import pandas as pd

    class Result:  # the fields of ray.tune.Result that the records read
        def __init__(self, config, losses, path):
            self.config, self.path, self.error = config, path, None
            self.metrics = {"trial_id": Path(path).name} if losses else None
            self.metrics_dataframe = (
                pd.DataFrame({"val_loss": losses, "time_total_s": [10.0 * (i + 1) for i in range(len(losses))]})
                if losses
                else None
            )

    spec = tune.SearchSpec("timesclip", "ETTh1", max_epochs=3)
    config = {p.name: p.choices[0] if p.domain == "choice" else p.low for p in tune.search_space("timesclip")}
    grid = [
        Result(config, [0.8, 0.7], "a"),
        Result(None, [], "pending"),
        Result(config, [], "interrupted in its first epoch"),
        Result(config, [0.9], "b"),
    ]
    trials, curves = tune._trial_rows(grid, spec)
    assert [(t["trial"], t["epochs"], t["best_val_loss"], t["status"]) for t in trials] == [
        ("a", 2, 0.7, "stopped"),
        ("b", 1, 0.9, "stopped"),
    ]
    assert trials[0]["learning_rate"] == config["learning_rate"]
    assert [(c["trial"], c["epoch"], c["seconds"]) for c in curves] == [("a", 1, 10.0), ("a", 2, 20.0), ("b", 1, 10.0)]


def test_the_report_says_when_a_search_was_ended_before_all_its_trials():
    def record(trials: int) -> dict:
        return {
            "model": "timesclip", "dataset": "ETTh1", "horizon": 96, "lookback": 96, "val_loss": 0.7,
            "best_epoch": 6, "trials": trials, "trial_epochs": 21, "params": {}, "search": {"num_samples": 16},
        }  # fmt: skip

    rows = tune.TuneStudy(model="timesclip").table([record(5), record(16)])
    assert [row["trials"] for row in rows] == ["5 of 16", "16"]
