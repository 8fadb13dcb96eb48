"""The transfer study (``python -m benchmarks transfer``) on synthetic stand-ins of the datasets' shapes."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.runner import load_results
from benchmarks.studies.transfer import (
    DEFAULT_OBJECTIVE,
    PretrainSettings,
    TransferStudy,
    backbone_dir,
    budget_caps,
    index_backbones,
    pretraining_series,
    row_labels,
    transfer_markdown,
)
from benchmarks.study import StudyOptions
from tests.benchmarks.bench_helpers import write_synthetic_csv


@pytest.fixture
def two_datasets(tmp_path):
    data = tmp_path / "data"
    write_synthetic_csv(data / "national_illness.csv", 966, 7, freq="W")
    write_synthetic_csv(data / "exchange_rate.csv", 7588, 8, seed=1, freq="D")
    return data


def test_pretraining_corpus_leaves_the_target_out_and_reads_train_rows_only(two_datasets):
    series = pretraining_series("national_illness", two_datasets, ["national_illness", "exchange_rate"])
    assert len(series) == 1
    assert series[0].components[0].startswith("exchange_rate:")
    assert len(series[0]) == int(0.7 * 7588)  # the train split of the 70/10/20 borders


def test_few_shot_budget_is_a_tenth_of_the_train_windows():
    assert budget_caps("few-shot", "ETTh1").max_samples_per_ts == 844  # 8449 train windows at L = H = 96
    assert budget_caps("quick", "ETTh1").max_samples_per_ts == 4096
    with pytest.raises(ValueError, match=r"Unknown budget `huge`"):
        budget_caps("huge", "ETTh1")


def test_transfer_command_runs_resumes_and_reports(two_datasets, tmp_path, capsys):
    out, results = tmp_path / "out", tmp_path / "results"
    argv = ["transfer", "--datasets", "national_illness", "--seeds", "1", "2", "--budgets", "few-shot"]
    argv += ["--scale", "tiny", "--backbone", "tiny", "--pretrain-steps", "3", "--pretrain-batch-size", "4"]
    argv += [
        "--corpus",
        "national_illness",
        "exchange_rate",
        "--synthetic",
        "4",
        "--data-dir",
        str(two_datasets),
        "--output",
        str(out),
        "--results",
        str(results),
    ]
    assert main(argv) == 0
    records = load_results(out)
    assert sorted(
        {(r["coordinates"]["init"], r["coordinates"]["budget"], r["coordinates"]["objective"]) for r in records}
    ) == [
        ("nlinear", "few-shot", ""),
        ("pretrained-others", "few-shot", DEFAULT_OBJECTIVE),
        ("pretrained-synthetic", "few-shot", DEFAULT_OBJECTIVE),
        ("random", "few-shot", ""),
    ]
    assert len(records) == 8 and {r["study"] for r in records} == {"transfer"}  # 4 rows x 2 seeds
    pretrained = [r for r in records if r["coordinates"]["init"] == "pretrained-others"]
    backbone_dir = pretrained[0]["backbone"]
    corpus = json.loads((tmp_path / backbone_dir / "pretraining.json").read_text())["corpus"]
    assert corpus["n_series"] == 8 + 4  # exchange_rate's 8 variates (train rows), 4 synthetic; not the target
    assert any("4 synthetic" in source for source in corpus["sources"])
    with (results / "pretraining.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {"dataset", "horizon", "init", "budget", "seed", "mse", "mae"} <= set(rows[0])
    markdown = (results / "pretraining.md").read_text()
    assert "## Budget: few-shot" in markdown
    index = json.loads((out / "backbones.json").read_text())  # committed in place of the weights
    assert sorted(index) == sorted(p.name for p in (out / "backbones").iterdir())
    assert {b["steps"] for b in index.values()} == {3} and {b["batch_size"] for b in index.values()} == {4}
    assert f"| `{Path(backbone_dir).name}` | {DEFAULT_OBJECTIVE} |" in markdown

    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert main(argv) == 0  # everything finished: nothing runs again
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == mtimes


def test_backbone_index_outlives_the_weights(tmp_path):
    record = {
        "run": {"objective": "masked", "batch_size": 8},
        "corpus": {"sources": ["2 TimeSeries"], "n_series": 2, "n_points": 500},
        "steps": 5,
        "train_seconds": 2.0,
        "windows_per_second": 20.0,
        "device": "cpu",
        "final_losses": {"contrastive": 1.5},
    }
    (tmp_path / "backbones" / "b1").mkdir(parents=True)
    (tmp_path / "backbones" / "b1" / "pretraining.json").write_text(json.dumps(record))
    (tmp_path / "backbones" / "b2").mkdir()  # still pretraining: no record yet
    assert sorted(index_backbones(tmp_path)) == ["b1"]
    shutil.rmtree(tmp_path / "backbones")  # a fresh clone: the index, not the weights
    index = index_backbones(tmp_path)
    assert index["b1"]["objective"] == "masked" and index["b1"]["final_contrastive_loss"] == 1.5
    row = {"dataset": "ETTh1", "budget": "quick", "init": "pretrained-others", "objective": "masked", "seed": 1}
    table = transfer_markdown([{**row, "mse": 0.4, "backbone": "/elsewhere/b1"}], backbones=index)
    assert "| `b1` | masked | 2 TimeSeries | 2 | 500 | 5 x 8 | 2 | 20 | cpu | 1.500 |" in table
    # a record that names its processor (since the field exists) shows it, so seconds can be compared fairly
    record["device_name"] = "AMD EPYC, 2 threads"
    (tmp_path / "backbones" / "b1").mkdir(parents=True)
    (tmp_path / "backbones" / "b1" / "pretraining.json").write_text(json.dumps(record))
    assert index_backbones(tmp_path)["b1"]["device"] == "cpu (AMD EPYC, 2 threads)"


def test_verdict_needs_two_seeds_and_a_difference_beyond_their_spread():
    def row(init, mse, seed):
        return {"dataset": "ETTh1", "budget": "few-shot", "init": init, "mse": mse, "seed": seed}

    one_seed = transfer_markdown([row("random", 0.5, 1), row("pretrained-others", 0.4, 1)])
    assert "1 with a single seed, not judged" in one_seed
    spread = [row("random", 0.50, 1), row("random", 0.52, 2), row("pretrained-others", 0.505, 1)]
    spread.append(row("pretrained-others", 0.51, 2))
    assert "within the seed spread on 1" in transfer_markdown(spread)
    clear = [row("random", 0.50, 1), row("random", 0.51, 2), row("pretrained-others", 0.40, 1)]
    clear.append(row("pretrained-others", 0.41, 2))
    assert "better on 1, worse on 0" in transfer_markdown(clear)


def test_backbone_directories_are_named_by_their_settings():
    assert PretrainSettings(steps=10).tag() != PretrainSettings(steps=11).tag()


def test_objectives_are_kept_apart_in_jobs_and_report(tmp_path):
    import inspect

    from darts_timesclip.pretraining import pretrain_backbone

    assert inspect.signature(pretrain_backbone).parameters["objective"].default == DEFAULT_OBJECTIVE
    options = StudyOptions(output=tmp_path, results=tmp_path, seeds=(1,), scale="tiny")
    coordinates = {
        objective: sorted(
            {
                tuple(job.coordinates.values())
                for job in TransferStudy(
                    datasets=("ETTh1",), budgets=("quick",), inits=("random", "pretrained-others"), objective=objective
                ).jobs(options)
            }
        )
        for objective in (DEFAULT_OBJECTIVE, "masked")
    }
    assert coordinates[DEFAULT_OBJECTIVE] == [
        ("nlinear", "quick", ""),
        ("pretrained-others", "quick", DEFAULT_OBJECTIVE),
        ("random", "quick", ""),
    ]
    assert coordinates["masked"] == [
        ("nlinear", "quick", ""),
        ("pretrained-others", "quick", "masked"),
        ("random", "quick", ""),
    ]
    # each objective fine-tunes its own backbone (its directory named by the pretraining settings)
    settings = TransferStudy(objective="masked").pretrain_settings(options)
    masked = TransferStudy(datasets=("ETTh1",), inits=("pretrained-others",), objective="masked", nlinear=False)
    assert {job.model.backbone for job in masked.jobs(options)} == {
        str(backbone_dir(tmp_path, "pretrained-others", "ETTh1", settings))
    }

    def row(init, mse, seed, objective=""):
        return {"dataset": "ETTh1", "budget": "quick", "init": init, "objective": objective, "mse": mse, "seed": seed}

    rows = [row("random", 0.50, 1), row("random", 0.51, 2)]
    rows += [row("pretrained-others", 0.40, s, DEFAULT_OBJECTIVE) for s in (1, 2)]
    rows += [row("pretrained-others", 0.60 + s / 100, s, "masked") for s in (1, 2)]
    table = transfer_markdown(rows)
    assert "| dataset | random | pretrained-others | pretrained-others (masked) | nlinear |" not in table  # no nlinear
    assert "| dataset | random | pretrained-others | pretrained-others (masked) |" in table
    assert "`pretrained-others` against `random`: better on 1, worse on 0" in table
    assert "`pretrained-others (masked)` against `random`: better on 0, worse on 1" in table
    assert "`pretrained-others (masked)` against `pretrained-others`: better on 0, worse on 1" in table


def test_average_rank_leaves_out_objective_variants_run_on_fewer_datasets():
    def row(dataset, init, mse, seed, objective="", budget="quick"):
        return {"dataset": dataset, "budget": budget, "init": init, "objective": objective, "mse": mse, "seed": seed}

    rows = []
    for dataset, (random_mse, pretrained_mse) in {"ETTh1": (0.5, 0.4), "ETTh2": (0.3, 0.35)}.items():
        for budget in ("quick", "few-shot"):
            rows += [row(dataset, "random", random_mse + s / 1000, s, budget=budget) for s in (1, 2)]
            rows += [
                row(dataset, "pretrained-others", pretrained_mse + s / 1000, s, DEFAULT_OBJECTIVE, budget)
                for s in (1, 2)
            ]
    rows += [row("ETTh1", "pretrained-others", 0.45, s, "masked") for s in (1, 2)]  # the ablation: one dataset, quick
    table = transfer_markdown(rows)
    quick, few_shot = table.split("## Budget: few-shot")
    assert (
        "Average MSE rank over the 2 dataset(s) with every row (objective variants left out): "
        "`random` 1.50, `pretrained-others` 1.50." in quick
    )
    # the few-shot budget ran no variant, so its rank line does not claim to leave one out
    assert "Average MSE rank over the 2 dataset(s) with every row: `random` 1.50, `pretrained-others` 1.50." in few_shot
    assert "`pretrained-others (masked)` against `pretrained-others`: better on 0, worse on 1" in table


def test_transfer_refuses_an_unknown_objective(capsys):
    with pytest.raises(SystemExit):
        main(["transfer", "--objective", "mask", "--report-only"])
    assert "invalid choice: 'mask'" in capsys.readouterr().err


def test_report_rows_follow_init_order_with_the_default_objective_first():
    configs = [
        ("nlinear", ""),
        ("pretrained-others", "masked"),
        ("pretrained-synthetic", DEFAULT_OBJECTIVE),
        ("pretrained-others", DEFAULT_OBJECTIVE),
        ("random", ""),
        ("pretrained-others", "contrastive-only"),
        ("pretrained-others", "masked"),
    ]
    rows = [{"init": init, "objective": objective} for init, objective in configs]
    assert row_labels(rows) == [
        "random",
        "pretrained-others",
        "pretrained-others (contrastive-only)",
        "pretrained-others (masked)",
        "pretrained-synthetic",
        "nlinear",
    ]
