"""The Ray executor (``run --executor ray``): same result files as the local executor, failures, options."""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._extras import requires

ray = requires("ray", "benchmark")

from benchmarks import cli, study  # noqa: E402 -- after the skip: without Ray the module is skipped
from benchmarks.executors import REPO_ROOT, JobFailedError, RayOptions, import_ray, ray_session, run_sweep_ray  # noqa: E402
from benchmarks.protocol import PreparedData  # noqa: E402
from benchmarks.runner import Job, RunSettings, SweepSpec, is_finished, prepare_data, result_path  # noqa: E402

SMOKE = ["--tier", "smoke", "--models", "nlinear", "dlinear", "--no-progress-bar", "--no-report"]


@pytest.fixture(autouse=True)
def _quiet_ray(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No usage-stats prompt; whatever a test leaves running is shut down."""
    monkeypatch.setenv("RAY_DISABLE_USAGE_STATS", "1")
    yield
    ray.shutdown()


@pytest.fixture
def ray_instance() -> Iterator[None]:
    """A local Ray instance with 2 CPUs, started as the executor starts one (the sweep then reuses it)."""
    with ray_session(RayOptions(num_cpus=2)):
        yield


def test_ray_executor_writes_the_local_executors_files_and_resumes(ili_dir, tmp_path, capfd, monkeypatch):
    # the command starts (and shuts down) a local instance of its own; 2 CPUs whatever the machine
    monkeypatch.setattr(study, "RayOptions", functools.partial(RayOptions, num_cpus=2))
    base = ["run", *SMOKE, "--data-dir", str(ili_dir)]
    local, distributed = tmp_path / "local", tmp_path / "ray"
    assert cli.main([*base, "--output", str(local)]) == 0
    capfd.readouterr()
    assert cli.main([*base, "--output", str(distributed), "--executor", "ray", "--cpus-per-job", "1"]) == 0
    assert not ray.is_initialized()

    err = capfd.readouterr().err
    assert "Ray: 2 job(s), 1 CPU(s) and 0 GPU(s) each, up to 2 at a time" in err
    for model in ("nlinear", "dlinear"):  # one progress line per finished job, with the counts and metrics
        line = rf"\[\d done / \d running / 0 failed / 0 pending\] national_illness H=24 L=96 {model} seed=2021 "
        assert re.search(line + r"done in \d+s on \S+: mse=\d+\.\d{4} mae=\d+\.\d{4}$", err, re.M), err
    assert re.search(r"^\d\d:\d\d:\d\d \[2 done / 0 running / 0 failed / 0 pending\] ", err, re.M)

    names = sorted(p.name for p in (local / "runs").glob("*.json"))
    assert len(names) == 2 and sorted(p.name for p in (distributed / "runs").glob("*.json")) == names
    for name in names:
        ours, theirs = (json.loads((root / "runs" / name).read_text()) for root in (local, distributed))
        assert theirs["status"] == "done" and theirs["run_id"] == ours["run_id"]
        assert theirs["metrics"]["n_test_windows"] == ours["metrics"]["n_test_windows"]
        for metric in ("mse", "mae"):
            assert theirs["metrics"][metric] == pytest.approx(ours["metrics"][metric], abs=1e-6)
        assert "--executor ray" in theirs["command"]

    # a rerun finds every job finished: nothing runs, no file is touched
    runs = sorted((distributed / "runs").glob("*.json"))
    before = {p: p.stat().st_mtime_ns for p in runs}
    assert cli.main([*base, "--output", str(distributed), "--executor", "ray"]) == 0
    assert {p: p.stat().st_mtime_ns for p in sorted((distributed / "runs").glob("*.json"))} == before
    assert "Skipping 2 finished job(s) of 2." in capfd.readouterr().err


def _fake_result(job: Job, data: PreparedData) -> dict[str, Any]:
    return {
        "status": "done",
        "run_id": job.run_id,
        "metrics": {"mse": 0.5, "mae": 0.25},
        "rows": int(data.scaled.shape[0]),
        "pythonpath": os.environ.get("PYTHONPATH", ""),
    }


def fail_dlinear(job: Job, data: PreparedData, settings: RunSettings) -> dict[str, Any]:
    """Job runner (module level: the workers import it) whose DLinear jobs raise."""
    if job.model.name == "dlinear":
        raise RuntimeError(f"boom in {job.model.name}")
    return _fake_result(job, data)


def fail_dlinear_while_one_runs(job: Job, data: PreparedData, settings: RunSettings) -> dict[str, Any]:
    """As :func:`fail_dlinear`, and NLinear's second seed runs far longer than the test waits."""
    if job.model.name == "nlinear" and job.seed == 2:
        time.sleep(300)
    return fail_dlinear(job, data, settings)


def crash_once(job: Job, data: PreparedData, settings: RunSettings) -> dict[str, Any]:
    """Job runner whose worker process dies on the first attempt of each job (as if killed by the system)."""
    marker = settings.output_dir / f"{job.run_id}.crashed"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        os._exit(1)
    return _fake_result(job, data)


def _jobs() -> list[Job]:
    spec = SweepSpec(("national_illness",), (24,), 24, ("nlinear", "dlinear"), (1, 2))
    return spec.expand()  # nlinear s1, nlinear s2, dlinear s1, dlinear s2


def test_failing_jobs_are_reported_the_others_written_dead_workers_retried(ili_dir, tmp_path, caplog, ray_instance):
    jobs = _jobs()
    nlinear, dlinear = jobs[:2], jobs[2:]
    settings = RunSettings(output_dir=tmp_path / "going", data_dir=ili_dir)
    with caplog.at_level(logging.INFO, logger="benchmarks"):
        summary = run_sweep_ray(jobs, settings, job_runner=fail_dlinear, keep_going=True)
    assert set(summary.failed) == {j.run_id for j in dlinear}
    assert set(summary.completed) == {j.run_id for j in nlinear} and summary.skipped == ()
    assert all(is_finished(result_path(settings.output_dir, j)) for j in nlinear)
    assert not any(result_path(settings.output_dir, j).exists() for j in dlinear)
    record = json.loads(result_path(settings.output_dir, nlinear[0]).read_text())
    assert record["rows"] == prepare_data(nlinear[0], ili_dir).scaled.shape[0]  # the worker prepared L = 24
    assert record["pythonpath"].split(os.pathsep)[0] == str(REPO_ROOT)
    err = caplog.text
    assert err.count("failed: RuntimeError: boom in dlinear") == 2 and "\x1b[" not in err
    assert "national_illness H=24 L=24 dlinear seed=1 (" in err and ", in fail_dlinear" in err  # worker traceback
    assert re.search(r"\[\d done / \d running / [12] failed / \d pending\] national_illness H=24 L=24 dlinear", err)

    # without keep_going: the first failure cancels the running job and raises; the finished one stays written
    settings = RunSettings(output_dir=tmp_path / "stop", data_dir=ili_dir)
    start = time.perf_counter()
    with pytest.raises(JobFailedError, match=r"national_illness H=24 L=24 dlinear seed=1 \(.+\) failed: RuntimeError"):
        run_sweep_ray(jobs, settings, job_runner=fail_dlinear_while_one_runs)
    assert time.perf_counter() - start < 120  # did not wait for the sleeping job
    written = sorted(p.name for p in (settings.output_dir / "runs").glob("*.json"))
    assert written == [f"{nlinear[0].run_id}.json"]

    # a worker that dies (killed by the system, out of memory) is retried; with no retries left the job fails
    job = nlinear[0]
    settings = RunSettings(output_dir=tmp_path / "retried", data_dir=ili_dir)
    summary = run_sweep_ray([job], settings, job_runner=crash_once)
    assert summary.completed == (job.run_id,) and is_finished(result_path(settings.output_dir, job))

    settings = RunSettings(output_dir=tmp_path / "not-retried", data_dir=ili_dir)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="benchmarks"):
        summary = run_sweep_ray([job], settings, RayOptions(max_retries=0), job_runner=crash_once, keep_going=True)
    assert summary.failed == (job.run_id,) and not result_path(settings.output_dir, job).exists()
    assert "failed: WorkerCrashedError" in caplog.text


def test_ray_options_are_validated(capsys, tmp_path):
    for text in ("0", "-1", "abc", "nan", "inf"):
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected a positive number, got `{text}`"):
            study._cpus_per_job(text)
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number >= 0, got `-0.5`"):
        study._gpus_per_job("-0.5")
    with pytest.raises(argparse.ArgumentTypeError, match="a fraction below 1 or a whole number, got `1.5`"):
        study._gpus_per_job("1.5")
    assert study._gpus_per_job("0") == 0 and study._gpus_per_job("0.25") == 0.25 and study._cpus_per_job("2") == 2

    with pytest.raises(SystemExit):
        cli.main(["run", "--tier", "smoke", "--executor", "ray", "--cpus-per-job", "0", "--output", str(tmp_path)])
    assert "argument --cpus-per-job: expected a positive number, got `0`" in capsys.readouterr().err

    parser = cli.build_parser()

    def options(*argv: str) -> study.StudyOptions:
        return study.StudyOptions.from_args(parser.parse_args(["run", "--tier", "smoke", *argv]), argv)

    with pytest.raises(ValueError, match=r"`--ray-address auto`, `--gpus-per-job 1`: only with `--executor ray`"):
        options("--ray-address", "auto", "--gpus-per-job", "1")
    assert options("--executor", "ray", "--gpus-per-job", "0.5").ray == RayOptions(gpus_per_job=0.5)
    assert options().ray is None
    with pytest.raises(SystemExit):  # every study takes the executor flags, and checks them the same way
        cli.main(["budget", "--ray-address", "auto", "--report-only"])
    assert "`--ray-address auto`: only with `--executor ray`" in capsys.readouterr().err


def test_missing_ray_names_the_option_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ImportError, match=r"`--executor ray` needs Ray, which the `benchmark` extra installs"):
        import_ray()


def test_no_ray_import_for_the_local_executor():
    code = "import sys, benchmarks.cli, benchmarks.executors; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(REPO_ROOT), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
