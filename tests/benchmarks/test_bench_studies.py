"""The ablation study and the budget curve (``python -m benchmarks ablate`` / ``budget``) on synthetic stand-ins."""

from __future__ import annotations

import csv

import pytest

from benchmarks.ablate import ABLATIONS, ablation_jobs, ablation_markdown
from benchmarks.budget import budget_jobs
from benchmarks.cli import main
from benchmarks.models import TrainingCaps
from benchmarks.runner import COMMAND_SEPARATOR, command_markdown, load_results
from benchmarks.stats import mean_std, seed_verdict
from tests.benchmarks.bench_helpers import write_synthetic_csv


def test_every_configuration_changes_only_its_own_switches():
    jobs = ablation_jobs(["ETTh1", "exchange_rate"], seeds=[1, 2])
    assert len(jobs) == 2 * len(ABLATIONS) * 2
    by_variant = {(j.dataset, j.tier.split(":")[1]): j.model for j in jobs if j.seed == 1}
    full = by_variant[("ETTh1", "full")].architecture
    for variant, changes in ABLATIONS.items():
        model = by_variant[("ETTh1", variant)]
        assert model.name == f"timesclip-{variant}"
        changed = {k: v for k, v in model.architecture.items() if full.get(k, object()) != v}
        expected = dict(changes, **({"period": 24} if variant == "periodic" else {}))  # ETTh1 is hourly
        assert changed == expected, variant
    assert by_variant[("exchange_rate", "periodic")].architecture["period"] == 7  # daily: a week
    assert len({j.run_id for j in jobs}) == len(jobs)  # no two configurations share a result file
    assert jobs[0].caps.max_epochs == 2 and jobs[0].caps.max_samples_per_ts == 4096  # the standard tier's budget


def test_unknown_configuration_is_named():
    with pytest.raises(ValueError, match=r"Unknown ablation\(s\) \['no-numbers'\]"):
        ablation_jobs(["ETTh1"], variants=["full", "no-numbers"])


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
    text = ablation_markdown(rows, command="python -m benchmarks ablate")
    assert "| gasf | 0.6100 ± 0.0141 (2) | +0.1050 | worse |" in text
    assert "| no-alignment | 0.5025 ± 0.0035 (2) | -0.0025 | within spread |" in text
    assert "| periodic | 0.4000 ± 0.0000 (1) | -0.1050 | one seed |" in text
    assert "| gasf | 0 | 1 | 0 | 0 |" in text  # the summary counts datasets by verdict
    assert "Command: `python -m benchmarks ablate`" in text
    assert "| gasf | +20.8% **worse** |" in text  # the matrix: 0.61 / 0.505 - 1, beyond the spread
    assert "| no-alignment | -0.5% |" in text and "| periodic | -20.8% (one seed) |" in text


def test_a_report_lists_each_command_that_made_its_run_files():
    assert command_markdown("") == []
    assert command_markdown("python -m benchmarks ablate") == ["Command: `python -m benchmarks ablate`", ""]
    lines = command_markdown(COMMAND_SEPARATOR.join(["python -m benchmarks ablate --seeds 1", "python -m b x"]))
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
    assert sorted({r["tier"] for r in records}) == ["ablate:full", "ablate:periodic", "ablate:vision-only"]
    assert len(records) == 6
    with (results / "ablations.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {"dataset", "horizon", "variant", "seed", "mse", "mae"} <= set(rows[0])
    assert all(float(r["mse"]) > 0 for r in rows)
    assert "## exchange_rate" in (results / "ablations.md").read_text()
    assert (results / "ablations.png").stat().st_size > 0

    mtimes = {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert main(argv) == 0  # everything finished: nothing runs again
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == mtimes


def test_budget_points_cap_epochs_and_windows_and_shorten_patience():
    jobs = budget_jobs(["ETTh1"], ["timesclip", "nlinear"], ["2x4096", "2xall", "10xall-es", "full"], [1])
    by_key = {(j.model.name, j.tier): j for j in jobs}
    assert by_key[("timesclip", "budget:2x4096")].caps == TrainingCaps(max_epochs=2, max_samples_per_ts=4096)
    assert by_key[("timesclip", "budget:2xall")].caps == TrainingCaps(max_epochs=2)
    early = by_key[("timesclip", "budget:10xall-es")]
    assert early.caps == TrainingCaps(max_epochs=10) and early.model.patience == 3  # TimesCLIP's own is 30
    assert by_key[("timesclip", "budget:full")].model.patience == 30
    assert by_key[("timesclip", "budget:full")].caps == TrainingCaps()
    with pytest.raises(ValueError, match=r"Unknown budget\(s\) \['huge'\]"):
        budget_jobs(["ETTh1"], budgets=["huge"])


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
    assert all(r["budget"] == "2x4096" and int(r["epochs"]) <= 2 and int(r["train_windows"]) <= 4096 for r in rows)
    assert "| timesclip | " in (results / "budget.md").read_text()
    assert (results / "budget.png").stat().st_size > 0

    # the report names the command that ran the jobs, not a later --report-only
    assert main(["budget", "--report-only", "--output", str(out), "--results", str(results)]) == 0
    text = (results / "budget.md").read_text()
    assert "Command: `python -m benchmarks budget --datasets exchange_rate --models timesclip nlinear" in text
    assert "--report-only" not in text
