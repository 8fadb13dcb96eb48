"""Run ids, configurations, atomic result files and resuming an interrupted sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.models import (
    MODEL_NAMES,
    TUNED_MODELS,
    EpochLRFactor,
    TrainingCaps,
    backbone_identity,
    build_model,
    model_config,
)
from benchmarks.registry import REGISTRY
from benchmarks.runner import (
    Job,
    RunSettings,
    SweepSpec,
    is_finished,
    load_results,
    result_path,
    run_sweep,
    write_json_atomic,
)
from benchmarks.tiers import TIERS, get_tier
from tests._extras import requires

ROOT = Path(__file__).resolve().parents[2]


def _job(**changes) -> Job:
    job = Job(
        dataset="ETTh1",
        horizon=96,
        lookback=96,
        model=model_config("dlinear", "ETTh1", 96),
        seed=2021,
        caps=TrainingCaps(max_epochs=3),
        tier="quick",
    )
    return replace(job, **changes)


def test_run_id_is_deterministic_and_readable():
    job = _job()
    assert job.run_id == _job().run_id
    assert job.run_id.startswith("etth1_h96_l96_dlinear_s2021_")
    # the tier name is informative only: the same job from another tier is the same job
    assert _job(tier="custom").run_id == job.run_id


def test_run_id_is_the_same_in_a_fresh_process():
    code = (
        "from benchmarks.runner import Job; from benchmarks.models import model_config, TrainingCaps;"
        "print(Job('ETTh1', 96, 96, model_config('dlinear', 'ETTh1', 96), 2021, TrainingCaps(max_epochs=3)).run_id)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == _job().run_id


@pytest.mark.parametrize(
    "changes",
    [
        {"dataset": "ETTh2", "model": model_config("dlinear", "ETTh2", 96)},
        {"horizon": 192},
        {"lookback": 336},
        {"seed": 1},
        {"caps": TrainingCaps(max_epochs=4)},
        {"caps": TrainingCaps(max_epochs=3, max_samples_per_ts=100)},
        {"model": model_config("nlinear", "ETTh1", 96)},
        {"model": replace(model_config("dlinear", "ETTh1", 96), learning_rate=0.001)},
    ],
)
def test_run_id_changes_with_everything_that_defines_the_job(changes):
    assert _job(**changes).run_id != _job().run_id


def test_a_backbone_directory_enters_the_run_id_by_its_weights_not_its_path(tmp_path):
    import shutil

    def backbone(path: Path, weights: bytes) -> Path:
        path.mkdir(parents=True)
        (path / "config.json").write_text('{"model_type": "clip"}')
        (path / "model.safetensors").write_bytes(weights)
        (path / "pretraining.json").write_text('{"train_seconds": 1.0}')
        return path

    def job(path: Path) -> Job:
        config = replace(model_config("timesclip", "ETTh1", 96), backbone=str(path), pretrained=True)
        return _job(model=config)

    first = backbone(tmp_path / "study" / "others-than-ETTh1", b"weights")
    moved = tmp_path / "clone" / "others-than-ETTh1"
    shutil.copytree(first, moved)
    assert job(moved).run_id == job(first).run_id  # a cloned results directory resumes its jobs
    (moved / "pretraining.json").write_text('{"train_seconds": 2.0}')  # bookkeeping is not the backbone
    (moved / "checkpoint.pt").write_bytes(b"resume state")
    assert job(moved).run_id == job(first).run_id
    other = backbone(tmp_path / "other" / "others-than-ETTh1", b"other weights")
    assert job(other).run_id != job(first).run_id
    # presets, hub ids and paths that are no backbone directory enter as named
    assert backbone_identity("compact") == "compact"
    assert backbone_identity(str(tmp_path / "missing")) == str(tmp_path / "missing")


def test_a_preset_name_stays_a_preset_beside_a_directory_of_that_name(tmp_path, monkeypatch):
    # the model's loader reads `backbone="compact"` as the preset whatever lies in the working directory,
    # so the job id must not turn it into a directory digest
    (tmp_path / "compact").mkdir()
    (tmp_path / "compact" / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert backbone_identity("compact") == "compact"
    assert backbone_identity("./compact").startswith("dir:")


# a tuned model's configuration is its search's (none in a fresh checkout): test_bench_tune tests those
@pytest.mark.parametrize("name", [name for name in MODEL_NAMES if name not in TUNED_MODELS])
@pytest.mark.parametrize("dataset", list(REGISTRY))
def test_every_model_has_a_configuration_for_every_dataset(name, dataset):
    config = model_config(name, dataset, REGISTRY[dataset].horizons[0])
    assert config.name == name
    json.dumps(config.to_dict())  # result files need plain JSON
    assert config.backbone == ("n/a" if not name.startswith("timesclip") else "compact")


def test_configurations_follow_the_authors_scripts():
    patchtst = model_config("patchtst", "ETTh1", 96)
    assert patchtst.architecture["hidden_size"] == 16 and patchtst.architecture["n_heads"] == 4
    assert patchtst.architecture["revin_subtract_last"] is False
    assert (patchtst.batch_size, patchtst.learning_rate, patchtst.n_epochs) == (128, 1e-4, 100)
    assert model_config("patchtst", "ETTm1", 96).lr_schedule == "tst"
    assert model_config("itransformer", "ETTh1", 96).architecture["hidden_size"] == 256
    assert model_config("itransformer", "ETTh1", 336).architecture["hidden_size"] == 512
    assert model_config("itransformer", "exchange_rate", 96).architecture["hidden_size"] == 128
    dlinear = model_config("dlinear", "ETTh1", 96)
    assert dlinear.architecture["shared_weights"] is True  # one layer for all channels (individual=False)
    assert dlinear.architecture["const_init"] is True  # TSLib's DLinear.py
    assert (dlinear.learning_rate, dlinear.batch_size) == (1e-4, 32)  # TSLib run.py defaults
    nlinear = model_config("nlinear", "ETTh1", 96)
    assert (nlinear.learning_rate, nlinear.batch_size) == (0.005, 32)  # LTSF-Linear's ETTh1 script
    ablation = model_config("timesclip-language-only", "ETTh1", 96, backbone="tiny")
    assert ablation.architecture["use_vision"] is False and ablation.backbone == "tiny"


def test_tiny_scale_shrinks_models():
    assert model_config("patchtst", "ETTh1", 96, scale="tiny").architecture["hidden_size"] == 8
    assert model_config("timesclip", "ETTh1", 96, scale="tiny").backbone == "tiny"


def test_unknown_names_raise():
    with pytest.raises(ValueError, match="Unknown model `lstm`"):
        model_config("lstm", "ETTh1", 96)
    with pytest.raises(ValueError, match="`scale`"):
        model_config("dlinear", "ETTh1", 96, scale="huge")
    with pytest.raises(ValueError, match="Unknown tier `huge`"):
        get_tier("huge")
    with pytest.raises(ValueError, match="`max_epochs` must be a positive integer"):
        TrainingCaps(max_epochs=0)


def test_tslib_learning_rate_schedules():
    # TSLib sets the rate after epoch e (1-based) for epoch e+1: type1 lr * 0.5 ** (e - 1)
    assert [EpochLRFactor("type1")(k) for k in range(4)] == [1.0, 1.0, 0.5, 0.25]
    assert [EpochLRFactor("type3")(k) for k in range(6)] == [1.0, 1.0, 1.0, 1.0, 0.9, pytest.approx(0.81)]
    assert EpochLRFactor("constant")(50) == 1.0


def test_baselines_build(quiet_trainer):
    requires("neuralforecast", "benchmark")
    for name in ("nlinear", "dlinear", "patchtst", "itransformer"):
        model = build_model(
            model_config(name, "ETTh1", 96),
            lookback=96,
            horizon=96,
            seed=0,
            caps=TrainingCaps(max_epochs=2, max_steps=5),
            n_train_windows=100,
            callbacks=[],
        )
        assert model.n_epochs == 2
        assert model.trainer_params["max_steps"] == 5


def test_tiers_cover_the_issue():
    assert set(TIERS) == {"smoke", "quick", "standard", "full"}
    quick = TIERS["quick"]
    assert quick.datasets == ("ETTh1", "exchange_rate") and quick.horizons == (96,)
    assert set(quick.models) == {"timesclip", "nlinear", "dlinear", "patchtst", "itransformer", "vqtransformer"}
    assert TIERS["full"].horizons is None and len(TIERS["full"].datasets) == len(REGISTRY)
    # ablations share TimesCLIP's budget
    assert quick.caps_for("timesclip-language-only") == quick.caps_for("timesclip")


def test_sweep_expansion():
    sweep = SweepSpec(
        datasets=("ETTh1", "national_illness"),
        horizons=None,
        lookback=96,
        models=("dlinear", "patchtst"),
        seeds=(1, 2),
        tier=TIERS["quick"],
    )
    jobs = sweep.expand()
    assert len(jobs) == (4 + 4) * 2 * 2  # registry horizons, models, seeds
    assert {j.horizon for j in jobs if j.dataset == "national_illness"} == {24, 36, 48, 60}
    assert {j.caps for j in jobs if j.model.name == "patchtst"} == {TrainingCaps(max_epochs=20)}
    assert len({j.run_id for j in jobs}) == len(jobs)
    # caps given for the sweep replace the tier's caps of the same name and keep the others
    override = replace(sweep, caps=TrainingCaps(max_steps=7)).expand()
    assert {(j.model.name, j.caps) for j in override} == {
        ("dlinear", TrainingCaps(max_steps=7)),
        ("patchtst", TrainingCaps(max_epochs=20, max_steps=7)),
    }
    override = replace(sweep, caps=TrainingCaps(max_epochs=3)).expand()
    assert {j.caps for j in override} == {TrainingCaps(max_epochs=3)}


def test_atomic_write_leaves_no_partial_file(tmp_path):
    path = tmp_path / "runs" / "a.json"
    write_json_atomic(path, {"status": "done", "x": 1})
    assert json.loads(path.read_text()) == {"status": "done", "x": 1}
    with pytest.raises(TypeError):
        write_json_atomic(tmp_path / "runs" / "b.json", {"status": "done", "bad": object()})
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["a.json"]
    (tmp_path / "runs" / "c.json").write_text('{"status": "do')  # a torn file is not finished
    assert is_finished(path) and not is_finished(tmp_path / "runs" / "c.json")


class _Interrupt(BaseException):
    """Stands in for Ctrl-C / a killed process."""


def test_resume_after_an_interrupted_sweep(ili_dir, tmp_path):
    jobs = SweepSpec(
        datasets=("national_illness",),
        horizons=(24,),
        lookback=24,
        models=("nlinear", "dlinear", "patchtst"),
        seeds=(1,),
    ).expand()
    settings = RunSettings(output_dir=tmp_path / "out", data_dir=ili_dir)
    calls: list[str] = []

    def interrupted_runner(job, data, _settings):
        calls.append(job.run_id)
        if len(calls) == 2:
            raise _Interrupt
        return {"status": "done", "run_id": job.run_id, "n_rows": int(data.scaled.shape[0])}

    with pytest.raises(_Interrupt):
        run_sweep(jobs, settings, job_runner=interrupted_runner)
    assert is_finished(result_path(settings.output_dir, jobs[0]))
    assert not result_path(settings.output_dir, jobs[1]).exists()
    assert [p.name for p in (settings.output_dir / "runs").iterdir()] == [f"{jobs[0].run_id}.json"]

    calls.clear()
    summary = run_sweep(jobs, settings, job_runner=lambda job, data, s: {"status": "done", "run_id": job.run_id})
    assert summary.skipped == (jobs[0].run_id,)
    assert summary.completed == (jobs[1].run_id, jobs[2].run_id)
    assert [r["run_id"] for r in load_results(settings.output_dir)] == sorted(j.run_id for j in jobs)

    rerun = run_sweep(jobs, settings, job_runner=interrupted_runner)
    assert rerun.completed == () and len(rerun.skipped) == 3 and calls == []


def test_keep_going_records_failures(ili_dir, tmp_path):
    jobs = SweepSpec(
        datasets=("national_illness",), horizons=(24,), lookback=24, models=("nlinear", "dlinear"), seeds=(1,)
    ).expand()

    def failing_first(job, data, settings):
        if job.model.name == "nlinear":
            raise RuntimeError("boom")
        return {"status": "done", "run_id": job.run_id}

    settings = RunSettings(output_dir=tmp_path / "out", data_dir=ili_dir)
    summary = run_sweep(jobs, settings, job_runner=failing_first, keep_going=True)
    assert summary.failed == (jobs[0].run_id,) and summary.completed == (jobs[1].run_id,)
    with pytest.raises(RuntimeError, match="boom"):
        run_sweep(jobs, settings, job_runner=failing_first)


def _tiny_training_job(name: str, dataset: str, epochs: int, **changes) -> Job:
    """A real job on the synthetic ILI file with ``dataset``'s hyperparameters (and so its schedule)."""
    model = replace(model_config(name, dataset, 24, scale="tiny"), **changes)
    return Job("national_illness", 24, 24, model, 0, TrainingCaps(max_epochs=epochs, max_samples_per_ts=128))


# DLinear at this rate and patience stops after its third epoch on the synthetic ILI file (best: the second)
_EARLY_STOPPING = {"patience": 1, "learning_rate": 0.01}


@pytest.mark.parametrize(
    ("name", "dataset", "epochs", "changes", "stop_after"),
    [
        ("nlinear", "national_illness", 4, {}, 2),  # per-epoch schedule (TSLib `type1`), shuffled batches
        ("nlinear", "national_illness", 4, {}, 4),  # killed after training, while forecasting the test windows
        ("patchtst", "ETTm1", 4, {}, 2),  # neuralforecast through Darts; per-step one-cycle schedule (`tst`)
        ("timesclip", "ETTh1", 3, {}, 1),  # per-step cosine, two parameter groups, embedding cache
        ("dlinear", "national_illness", 8, _EARLY_STOPPING, 2),  # early stopping's state crosses the interruption
        ("dlinear", "national_illness", 8, _EARLY_STOPPING, 3),  # killed right after early stopping decided
    ],
)
def test_an_interrupted_job_resumes_at_its_last_epoch_and_ends_as_if_uninterrupted(
    ili_dir, tmp_path, monkeypatch, name, dataset, epochs, changes, stop_after
):
    from benchmarks.callbacks import EpochCheckpoint, read_epoch_checkpoint
    from benchmarks.runner import checkpoint_path
    from benchmarks.study import dry_run_line

    job = _tiny_training_job(name, dataset, epochs, **changes)
    whole = RunSettings(output_dir=tmp_path / "whole", data_dir=ili_dir, accelerator="cpu")
    assert run_sweep([job], whole).completed == (job.run_id,)
    expected = json.loads(result_path(whole.output_dir, job).read_text())

    save = EpochCheckpoint.on_train_epoch_end

    def killed_after_saving(self, trainer, pl_module):
        save(self, trainer, pl_module)
        if trainer.current_epoch + 1 == stop_after:
            raise _Interrupt

    settings = RunSettings(output_dir=tmp_path / "interrupted", data_dir=ili_dir, accelerator="cpu")
    monkeypatch.setattr(EpochCheckpoint, "on_train_epoch_end", killed_after_saving)
    with pytest.raises(_Interrupt):
        run_sweep([job], settings)
    monkeypatch.setattr(EpochCheckpoint, "on_train_epoch_end", save)
    checkpoint = checkpoint_path(settings.output_dir, job)
    assert checkpoint.is_file() and not result_path(settings.output_dir, job).exists()
    assert [p.name for p in checkpoint.parent.iterdir()] == [checkpoint.name]  # no partial file left
    progress = read_epoch_checkpoint(checkpoint)
    assert progress["epochs_done"] == stop_after and progress["train_seconds"] > 0
    assert f"(resumes after epoch {stop_after}, " in dry_run_line(job, settings.output_dir)

    assert run_sweep([job], settings).completed == (job.run_id,)
    resumed = json.loads(result_path(settings.output_dir, job).read_text())
    assert not checkpoint.exists()  # deleted once the result file holds the job
    assert resumed["budget"]["resumed_from_epoch"] == stop_after
    assert expected["budget"]["resumed_from_epoch"] is None
    for key in ("epochs_run", "optimizer_steps", "best_epoch", "best_val_loss"):
        assert resumed["budget"][key] == expected["budget"][key], key
    # the history continues across the interruption; its seconds count the processes before the resumed one
    assert [e["epoch"] for e in resumed["history"]] == [e["epoch"] for e in expected["history"]]
    assert [e["val_loss"] for e in resumed["history"]] == pytest.approx([e["val_loss"] for e in expected["history"]])
    seconds = [e["seconds"] for e in resumed["history"]]
    assert all(a < b for a, b in zip(seconds, seconds[1:])) and seconds[-1] <= resumed["timing"]["train_seconds"]
    assert resumed["metrics"]["mse"] == pytest.approx(expected["metrics"]["mse"], rel=1e-6, abs=1e-9)
    assert resumed["metrics"]["mae"] == pytest.approx(expected["metrics"]["mae"], rel=1e-6, abs=1e-9)
    if changes:  # the row tests early stopping only if the job stopped early, and not before the interruption
        assert stop_after <= expected["budget"]["epochs_run"] < epochs


def test_a_checkpoint_that_cannot_be_read_stops_the_job_with_a_clear_error(ili_dir, tmp_path):
    from benchmarks.runner import checkpoint_path

    job = _tiny_training_job("nlinear", "national_illness", 2)
    settings = RunSettings(output_dir=tmp_path / "out", data_dir=ili_dir, accelerator="cpu")
    checkpoint = checkpoint_path(settings.output_dir, job)
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"\x00" * 64)  # e.g. a disk that filled up outside the atomic write
    with pytest.raises(ValueError, match=r"epoch checkpoint `.*\.ckpt` cannot be read .*delete it to train the job"):
        run_sweep([job], settings)
    assert checkpoint.read_bytes() == b"\x00" * 64  # the user's file is left for them to look at
    assert not result_path(settings.output_dir, job).exists()


def test_epoch_checkpoints_can_be_turned_off(ili_dir, tmp_path):
    from benchmarks.runner import CHECKPOINTS_DIR

    job = _tiny_training_job("nlinear", "national_illness", 2)
    settings = RunSettings(output_dir=tmp_path / "out", data_dir=ili_dir, accelerator="cpu", epoch_checkpoints=False)
    assert run_sweep([job], settings).completed == (job.run_id,)
    assert not (settings.output_dir / CHECKPOINTS_DIR).exists()  # with them on, it exists (emptied at the end)


def test_the_record_keeps_each_epochs_validation_loss_and_training_seconds(ili_dir, tmp_path):
    job = _tiny_training_job("dlinear", "national_illness", 8, **_EARLY_STOPPING)
    settings = RunSettings(output_dir=tmp_path / "out", data_dir=ili_dir, accelerator="cpu")
    run_id = job.run_id
    assert run_sweep([job], settings).completed == (run_id,)
    record = json.loads(result_path(settings.output_dir, job).read_text())
    assert record["run_id"] == run_id == job.run_id  # a recorded field is not part of the id
    history, budget = record["history"], record["budget"]
    assert [entry["epoch"] for entry in history] == list(range(1, budget["epochs_run"] + 1))
    assert budget["epochs_run"] == 3 and budget["best_epoch"] == 1  # stopped early; best: the second epoch
    seconds = [entry["seconds"] for entry in history]
    assert 0 < seconds[0] and all(a < b for a, b in zip(seconds, seconds[1:]))
    assert seconds[-1] <= record["timing"]["train_seconds"]
    best = history[budget["best_epoch"]]  # `best_epoch` counts from 0
    assert best["epoch"] == budget["best_epoch"] + 1 and best["val_loss"] == budget["best_val_loss"]
    assert min(entry["val_loss"] for entry in history) == budget["best_val_loss"]


def test_a_job_leaves_no_lightning_seed_behind(monkeypatch):
    import pytorch_lightning as pl

    from benchmarks.runner import restored_environment

    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    monkeypatch.delenv("PL_SEED_WORKERS", raising=False)
    with restored_environment():
        pl.seed_everything(3, workers=True, verbose=False)  # as neuralforecast's models do in `fit`
        assert os.environ["PL_GLOBAL_SEED"] == "3" and os.environ["PL_SEED_WORKERS"] == "1"
    assert os.environ["PL_GLOBAL_SEED"] == "7" and "PL_SEED_WORKERS" not in os.environ


def test_restored_environment_of_every_variable(monkeypatch):
    from benchmarks.runner import restored_environment

    monkeypatch.setenv("BENCH_PROBE_KEPT", "a")
    monkeypatch.delenv("BENCH_PROBE_NEW", raising=False)
    with restored_environment(None):  # as a Ray session: whatever `ray.init` sets
        os.environ["BENCH_PROBE_KEPT"] = "b"
        os.environ["BENCH_PROBE_NEW"] = "c"
    assert os.environ["BENCH_PROBE_KEPT"] == "a" and "BENCH_PROBE_NEW" not in os.environ


def test_a_seed_that_ran_twice_counts_once_in_the_mean_over_seeds():
    from benchmarks.stats import mean_over_seeds

    assert mean_over_seeds([(1, 0.2), (1, 0.4), (2, 0.6)]) == pytest.approx(0.45)  # (0.3 + 0.6) / 2
    with pytest.raises(ValueError, match="No value to average over seeds"):
        mean_over_seeds([])
