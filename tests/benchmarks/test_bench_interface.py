"""The one entry point and the Study interface: shared flags declared once, studies of other shapes (a report-only
study, a study scoring extra metrics), models of one's own, and commands that leave the process as they found it."""

from __future__ import annotations

import csv
import functools
import logging
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks import cli
from benchmarks.cli import build_parser, command_classes, main
from benchmarks.models import TrainingCaps, model_config
from benchmarks.protocol import score_test_windows
from benchmarks.report import write_study_files
from benchmarks.runner import Job, load_results, run_job
from benchmarks.study import FLAGS, SWEEP_FLAGS, Study, StudyOptions
from tests.benchmarks.bench_helpers import write_synthetic_csv

BENCHMARKS = Path(cli.__file__).resolve().parent


def test_every_shared_flag_is_declared_once():
    lines = [
        (p.relative_to(BENCHMARKS).as_posix(), line)
        for p in BENCHMARKS.rglob("*.py")
        for line in p.read_text().splitlines()
    ]
    for flag in FLAGS.values():
        for option in flag.options:
            declared = [
                where
                for where, line in lines
                if f'"{option}"' in line and re.search(r"add_argument\(|Flag\.of\(", line)
            ]
            assert declared == ["study.py"], option
    # and every sweep takes them: --dry-run, --keep-going, --report-only, the executor, the seeds, the threads
    parser = build_parser()
    sweeps = [c for c in command_classes() if issubclass(c, Study) and set(SWEEP_FLAGS) <= set(c.flags)]
    assert {c.name for c in sweeps} == {
        "run",
        "ablate",
        "budget",
        "transfer",
        "regression",
        "probabilistic",
    }  # tune: trials
    for study in sweeps:
        args = parser.parse_args([study.name, "--dry-run", "--keep-going", "--seeds", "1", "--threads", "2", "-v"])
        assert (args.dry_run, args.keep_going, args.seeds, args.threads, args.verbose) == (True, True, [1], 2, True)
        assert args.executor == "local" and args.data_dir is None, study.name


def test_every_command_is_one_registered_line_and_names_itself():
    names = [command.name for command in command_classes()]
    assert len(cli.COMMANDS) == len(names) == len(set(names))
    assert {"run", "report", "list", "ablate", "budget", "transfer", "regression", "quickstart", "speed"} <= set(names)
    assert {"export", "explain", "load-test", "variates", "vq-figures", "cost"} <= set(names)
    assert all(command.summary() and not command.summary().startswith(" ") for command in command_classes())


@dataclass(frozen=True)
class TableOnlyStudy(Study):
    """A study without training jobs (as a latency study would be): it measures, then writes a table."""

    name = "table-only"
    output_name = "table-only"
    report_stem = "latency"

    repeats: int = 3

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--repeats", type=int, default=cls.repeats)

    def jobs(self, options: StudyOptions) -> list[Job]:
        return []

    def table(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"what": "predict", "repeat": k, "ms": 1.5 * (k + 1)} for k in range(self.repeats)]

    def markdown(self, rows, commands=(), options=None) -> str:
        return "# Latency\n\n" + "\n".join(f"- {r['what']} {r['ms']:.1f} ms" for r in rows) + "\n"

    def run(self, options: StudyOptions) -> int:
        rows = self.table([])
        write_study_files(options.results, self.report_stem, rows, self.markdown(rows), None)
        return 0


def max_error(model, data, horizon, dataloader_kwargs=None):
    """A scorer with a metric beyond MSE and MAE (as a probabilistic study adds CRPS and coverage)."""
    score = score_test_windows(model, data, horizon, dataloader_kwargs=dataloader_kwargs)
    score.extra["max_abs_forecast"] = max(abs(v) for v in score.example["forecast"])
    return score


@dataclass(frozen=True)
class ExtraMetricStudy(Study):
    """A study whose jobs are the suite's, scored with a further metric and reported by it."""

    name = "extra-metric"
    output_name = "extra-metric"
    report_stem = "extra"
    coordinates = ("variant",)
    job_runner = functools.partial(run_job, scorer=max_error)  # Ray's workers can import it too

    def jobs(self, options: StudyOptions) -> list[Job]:
        config = model_config("nlinear", "national_illness", 24, scale="tiny")
        caps = TrainingCaps(max_epochs=1, max_samples_per_ts=32)
        coordinates = {"variant": "plain"}
        return [
            Job("national_illness", 24, 24, config, s, caps, study=self.name, coordinates=coordinates)
            for s in options.seeds
        ]

    def table(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "variant": r["coordinates"]["variant"],
                "seed": r["seed"],
                "max_abs_forecast": r["metrics"]["max_abs_forecast"],
            }
            for r in records
        ]

    def markdown(self, rows, commands=(), options=None) -> str:
        return f"{len(rows)} rows; " + "; ".join(commands) + "\n"


def test_a_study_is_one_class_its_jobs_or_none_on_the_one_runner(ili_dir, tmp_path):
    commands = (*command_classes(), TableOnlyStudy, ExtraMetricStudy)
    assert main(["table-only", "--repeats", "2", "--results", str(tmp_path)], commands=commands) == 0
    assert (tmp_path / "latency.md").read_text() == "# Latency\n\n- predict 1.5 ms\n- predict 3.0 ms\n"
    with (tmp_path / "latency.csv").open() as handle:
        assert [row["ms"] for row in csv.DictReader(handle)] == ["1.5", "3.0"]

    out = tmp_path / "out"
    argv = [
        "extra-metric",
        "--seeds",
        "1",
        "2",
        "--data-dir",
        str(ili_dir),
        "--output",
        str(out),
        "--results",
        str(tmp_path),
    ]
    assert main(argv, commands=commands) == 0
    records = load_results(out)
    found = sorted((r["study"], r["coordinates"]["variant"], r["seed"]) for r in records)
    assert found == [("extra-metric", "plain", 1), ("extra-metric", "plain", 2)]
    for record in records:  # the extra metric sits beside MSE and MAE, as the scorer computed it
        forecast = record["example_window"]["forecast"]
        assert record["metrics"]["max_abs_forecast"] == pytest.approx(max(abs(v) for v in forecast))
        assert record["metrics"]["mse"] > 0
    text = (tmp_path / "extra.md").read_text()
    assert text.startswith("2 rows; python -m benchmarks extra-metric --seeds 1 2")
    # the dry run lists both as finished, through the same listing as every study's
    assert main([*argv, "--dry-run"], commands=commands) == 0


def test_a_model_of_ones_own_runs_through_the_protocol(tmp_path, capsys):
    data = tmp_path / "data"
    write_synthetic_csv(data / "ETTh1.csv", 17420, 7)
    out = tmp_path / "own"
    argv = ["run", "--datasets", "ETTh1", "--horizons", "96", "--data-dir", str(data), "--output", str(out)]
    argv += [
        "--model",
        "dlinear=benchmarks.examples.factories:dlinear",
        "--model",
        "tests.benchmarks.bench_helpers:tiny_nlinear",
        "--model",
        "tests.benchmarks.bench_helpers:linear_regression",
    ]
    argv += ["--max-epochs", "1", "--max-samples-per-ts", "64", "--no-progress-bar", "--no-plots"]
    assert main(argv) == 0
    records = {r["model"]: r for r in load_results(out)}
    assert sorted(records) == ["dlinear", "linear_regression", "tiny_nlinear"]  # only these: the tier's stay out
    linear = records.pop("linear_regression")  # no Lightning: no epochs, no parameters to count, the same windows
    assert linear["metrics"]["n_test_windows"] == 2785 and linear["budget"]["train_windows_per_epoch"] == 64
    assert linear["budget"]["epochs_run"] is None and linear["parameters"]["total"] is None
    assert "| linear_regression (own) | custom | 1 |" in (out / "results.md").read_text()
    for record in records.values():
        assert record["model_config"]["family"] == "external"
        assert record["metrics"]["n_test_windows"] == 2785  # ETTh1's test windows at L = H = 96, as for every model
        assert record["budget"]["epochs_run"] == 1 and record["budget"]["train_windows_per_epoch"] == 64
        assert record["budget"]["configured_epochs"] in (3, 10) and record["budget"]["epoch_limit"] == 1
        assert record["parameters"]["total"] > 0 and record["backbone"] == "n/a"
    assert records["dlinear"]["model_config"]["architecture"]["factory"] == "benchmarks.examples.factories:dlinear"
    table = (out / "results.md").read_text()
    # a factory named after a published model gets its numbers beside it, apart from the suite's own rows
    assert re.search(
        r"\| ETTh1 \| 96 \| 96 \| dlinear \(own\) \| custom \| 1 \| \S+ \| \S+ \| 0\.386 \| 0\.400 \|", table
    )
    assert "| tiny_nlinear (own) | custom | 1 |" in table and "| - | - | - | - |" in table
    assert main(argv) == 0  # finished: a rerun skips both
    assert "Skipping 3 finished job(s) of 3." in capsys.readouterr().err


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (
            "tests.benchmarks.bench_helpers:no_such_factory",
            r"`tests\.benchmarks\.bench_helpers` has no `no_such_factory`",
        ),
        ("no_such_module:f", r"module `no_such_module` cannot be imported"),
        (
            "tests.benchmarks.bench_helpers",
            r"`tests\.benchmarks\.bench_helpers` is no model of the suite; a model of your own is named "
            r"`\[NAME=\]package\.module:factory`",
        ),
        (
            "tests.benchmarks.bench_helpers:factory_of_another_lookback",
            r"built `input_chunk_length=12`; the job's lookback is 24",
        ),
        ("tests.benchmarks.bench_helpers:factory_without_trainer_arguments", r"did not pass `pl_trainer_kwargs` on"),
        (
            "tests.benchmarks.bench_helpers:factory_of_a_local_model",
            r"returned a NaiveSeasonal; the protocol needs a Darts global",
        ),
    ],
)
def test_a_factory_that_breaks_the_protocol_is_named(ili_dir, tmp_path, capsys, factory, message):
    argv = ["run", "--datasets", "national_illness", "--horizons", "24", "--lookback", "24", "--model", factory]
    argv += ["--data-dir", str(ili_dir), "--output", str(tmp_path), "--max-epochs", "1", "--no-report"]
    with pytest.raises(SystemExit):
        main(argv)
    assert re.search(message, capsys.readouterr().err)


def _process_state() -> dict[str, Any]:
    names = ("", "benchmarks", "darts", "pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric")
    loggers = {
        n: (logging.getLogger(n).level, list(logging.getLogger(n).handlers), logging.getLogger(n).propagate)
        for n in names
    }
    return {
        "threads": torch.get_num_threads(),
        "cwd": os.getcwd(),
        "loggers": loggers,
        "warnings": list(warnings.filters),
    }


def test_commands_leave_the_process_as_they_found_it(ili_dir, tmp_path, capsys):
    before = _process_state()
    threads = max(1, before["threads"] - 1) if before["threads"] > 1 else 2
    argv = ["run", "--tier", "smoke", "--models", "nlinear", "--data-dir", str(ili_dir), "--output", str(tmp_path)]
    argv += ["--threads", str(threads), "--no-plots", "-v"]
    assert main(argv) == 0
    assert _process_state() == before
    record = next(iter(load_results(tmp_path)))
    assert record["machine"]["torch_threads"] == threads  # the job itself ran with them
    for other in (["list"], ["run", "--tier", "quick", "--dry-run"], ["report", "--output", str(tmp_path)]):
        assert main(other) == 0
        assert _process_state() == before, other
    with pytest.raises(SystemExit):  # an error on the way out restores too
        main(["run", "--datasets", "traffic", "--models", "dlinear", "--data-dir", str(tmp_path / "none")])
    assert _process_state() == before
