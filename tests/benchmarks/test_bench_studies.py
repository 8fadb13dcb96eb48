"""The ablation study and the budget curve (``python -m benchmarks ablate`` / ``budget``) on synthetic stand-ins."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.models import TIMESCLIP_CONFIGURATIONS, TrainingCaps, model_config
from benchmarks.report import command_markdown
from benchmarks.runner import load_results
from benchmarks.stats import mean_std, seed_verdict
from benchmarks.studies.ablate import AblateStudy
from benchmarks.studies.budget import BudgetStudy
from benchmarks.study import StudyOptions
from tests.benchmarks.bench_helpers import write_synthetic_csv


def _options(**changes) -> StudyOptions:
    return StudyOptions(output=Path("out"), results=Path("results"), **changes)


def test_every_configuration_changes_only_its_own_switches():
    jobs = AblateStudy(datasets=("ETTh1", "exchange_rate")).jobs(_options(seeds=(1, 2)))
    assert len(jobs) == 2 * len(TIMESCLIP_CONFIGURATIONS) * 2
    by_configuration = {(j.dataset, j.coordinates["configuration"]): j.model for j in jobs if j.seed == 1}
    full = by_configuration[("ETTh1", "full")].architecture
    for configuration, changes in TIMESCLIP_CONFIGURATIONS.items():
        model = by_configuration[("ETTh1", configuration)]
        assert model.name == f"timesclip-{configuration}"
        changed = {k: v for k, v in model.architecture.items() if full.get(k, object()) != v}
        expected = dict(changes, **({"period": 24} if configuration == "periodic" else {}))  # ETTh1 is hourly
        assert changed == expected, configuration
        # the suite's model of the same name is the same configuration (one table for both)
        assert model_config(model.name, "ETTh1", 96).architecture == model.architecture
    assert by_configuration[("exchange_rate", "periodic")].architecture["period"] == 7  # daily: a week
    assert len({j.run_id for j in jobs}) == len(jobs)  # no two configurations share a result file
    assert {(j.study, j.tier) for j in jobs} == {("ablate", "custom")}
    assert jobs[0].caps == TrainingCaps(max_epochs=2, max_samples_per_ts=4096)  # the standard tier's budget
    # a cap given on the command line replaces the study's cap of the same name, and only that one
    capped = AblateStudy(datasets=("ETTh1",)).jobs(_options(caps=TrainingCaps(max_epochs=1)))
    assert {j.caps for j in capped} == {TrainingCaps(max_epochs=1, max_samples_per_ts=4096)}


def test_unknown_configuration_is_named():
    with pytest.raises(ValueError, match=r"Unknown configuration\(s\) \['no-numbers'\]"):
        AblateStudy(configurations=("full", "no-numbers")).jobs(_options())


def test_seed_verdict_needs_two_seeds_and_a_difference_beyond_the_spread():
    assert seed_verdict([0.40], [0.50]) == "one seed"
    assert seed_verdict([0.505, 0.51], [0.50, 0.52]) == "within spread"
    assert seed_verdict([0.40, 0.41], [0.50, 0.51]) == "better"
    assert seed_verdict([0.60, 0.61], [0.50, 0.51]) == "worse"
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(2**0.5))


def test_markdown_gives_the_difference_to_full_and_its_verdict():
    def row(variant, mse, seed, dataset="ETTh1"):
        return {"dataset": dataset, "variant": variant, "seed": seed, "mse": mse, "backbone": "compact"}

    rows = [row("full", 0.50, 1), row("full", 0.51, 2), row("gasf", 0.60, 1), row("gasf", 0.62, 2)]
    rows += [row("no-alignment", 0.505, 1), row("no-alignment", 0.50, 2), row("periodic", 0.4, 1)]
    text = AblateStudy().markdown(rows, ["python -m benchmarks ablate"])
    assert "| gasf | 0.6100 ± 0.0141 (2) | +0.1050 | worse |" in text
    assert "| no-alignment | 0.5025 ± 0.0035 (2) | -0.0025 | within spread |" in text
    assert "| periodic | 0.4000 ± 0.0000 (1) | -0.1050 | one seed |" in text
    assert "| gasf | 0 | 1 | 0 | 0 |" in text  # the summary counts datasets by verdict
    assert "Command: `python -m benchmarks ablate`" in text
    assert "| gasf | +20.8% **worse** |" in text  # the matrix: 0.61 / 0.505 - 1, beyond the spread
    assert "| no-alignment | -0.5% |" in text and "| periodic | -20.8% (one seed) |" in text


def test_a_report_lists_each_command_that_made_its_run_files():
    assert command_markdown([]) == [] and command_markdown([""]) == []
    assert command_markdown(["python -m benchmarks ablate"]) == ["Command: `python -m benchmarks ablate`", ""]
    lines = command_markdown(["python -m benchmarks ablate --seeds 1", "python -m b x"])
    assert lines[0].startswith("Commands: the 2 below made these run files")
    assert lines[2:] == ["- `python -m benchmarks ablate --seeds 1`", "- `python -m b x`", ""]


def test_ablate_command_runs_resumes_and_reports(tmp_path):
    data = tmp_path / "data"
    write_synthetic_csv(data / "exchange_rate.csv", 7588, 3, freq="D")
    out, results = tmp_path / "out", tmp_path / "results"
    argv = ["ablate", "--datasets", "exchange_rate", "--variants", "full", "vision-only", "periodic"]
    argv += ["--seeds", "1", "2", "--scale", "tiny", "--max-epochs", "1", "--max-samples-per-ts", "32"]
    argv += ["--data-dir", str(data), "--output", str(out), "--results", str(results)]
    assert main(argv) == 0
    records = load_results(out)
    assert (
        sorted(r["coordinates"]["configuration"] for r in records)
        == ["full", "full", "periodic", "periodic"] + ["vision-only"] * 2
    )
    assert {(r["study"], r["tier"]) for r in records} == {("ablate", "custom")}
    assert {r["budget"]["epochs_run"] for r in records} == {1}  # --max-epochs 1 replaced the study's 2
    with (results / "ablations.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {"dataset", "horizon", "variant", "seed", "mse", "mae"} <= set(rows[0])
    # each row reports the test scores of its own run file
    by_job = {(r["coordinates"]["configuration"], r["seed"]): r["metrics"] for r in records}
    assert sorted((r["variant"], int(r["seed"])) for r in rows) == sorted(by_job)
    for row in rows:
        metrics = by_job[(row["variant"], int(row["seed"]))]
        assert float(row["mse"]) == pytest.approx(metrics["mse"], rel=1e-12) and metrics["mse"] > 0
        assert float(row["mae"]) == pytest.approx(metrics["mae"], rel=1e-12)
    assert len({float(r["mse"]) for r in rows}) == len(rows)  # six different runs, six different scores
    assert "## exchange_rate" in (results / "ablations.md").read_text()
    assert (results / "ablations.png").stat().st_size > 0

    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert main(argv) == 0  # everything finished: nothing runs again
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == mtimes


def test_budget_points_cap_epochs_and_windows_and_shorten_patience():
    study = BudgetStudy(
        datasets=("ETTh1",), models=("timesclip", "nlinear"), budgets=("2x4096", "2xall", "10xall-es", "full")
    )
    jobs = study.jobs(_options(seeds=(1,)))
    by_key = {(j.model.name, j.coordinates["budget"]): j for j in jobs}
    assert by_key[("timesclip", "2x4096")].caps == TrainingCaps(max_epochs=2, max_samples_per_ts=4096)
    assert by_key[("timesclip", "2xall")].caps == TrainingCaps(max_epochs=2)
    early = by_key[("timesclip", "10xall-es")]
    assert early.caps == TrainingCaps(max_epochs=10) and early.model.patience == 3  # TimesCLIP's own is 30
    assert by_key[("timesclip", "full")].model.patience == 30
    assert by_key[("timesclip", "full")].caps == TrainingCaps()
    with pytest.raises(ValueError, match=r"Unknown budget\(s\) \['huge'\]"):
        BudgetStudy(budgets=("huge",)).jobs(_options())


def test_budget_command_writes_the_curve(tmp_path):
    data = tmp_path / "data"
    write_synthetic_csv(data / "exchange_rate.csv", 7588, 2, freq="D")
    out, results = tmp_path / "out", tmp_path / "results"
    argv = ["budget", "--datasets", "exchange_rate", "--models", "timesclip", "nlinear", "--budgets", "2x4096"]
    argv += [
        "--seeds",
        "1",
        "--scale",
        "tiny",
        "--data-dir",
        str(data),
        "--output",
        str(out),
        "--results",
        str(results),
    ]
    assert main(argv) == 0
    with (results / "budget.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["model"] for r in rows) == ["nlinear", "timesclip"]
    by_model = {r["model"]: r["metrics"] for r in load_results(out)}
    for row in rows:
        assert float(row["mse"]) == pytest.approx(by_model[row["model"]]["mse"], rel=1e-12)
        assert float(row["mae"]) == pytest.approx(by_model[row["model"]]["mae"], rel=1e-12)
    assert all(r["budget"] == "2x4096" and int(r["epochs"]) <= 2 and int(r["train_windows"]) <= 4096 for r in rows)
    assert "| timesclip | " in (results / "budget.md").read_text()
    assert (results / "budget.png").stat().st_size > 0

    # the report names the command that ran the jobs, not a later --report-only
    assert main(["budget", "--report-only", "--output", str(out), "--results", str(results)]) == 0
    text = (results / "budget.md").read_text()
    assert "Command: `python -m benchmarks budget --datasets exchange_rate --models timesclip nlinear" in text
    assert "--report-only" not in text
