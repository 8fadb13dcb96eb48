"""The command line's console: one progress line per epoch, our messages and real problems, no chatter."""

from __future__ import annotations

import logging
import re
import warnings
from types import SimpleNamespace

import pytest
import torch

from benchmarks.callbacks import EpochLog, make_callbacks
from benchmarks.console import (
    KNOWN_HARMLESS_WARNINGS,
    ConsoleFormatter,
    configure_console,
    console_handlers,
    ignore_known_warnings,
)
from benchmarks.models import TrainingCaps, model_config
from benchmarks.protocol import prepare
from benchmarks.registry import get_spec, read_dataset
from benchmarks.runner import Job, RunSettings, run_job, run_sweep

#: What Lightning prints around every fit unless the console is configured.
CHATTER = ("GPU available", "TPU available", "litlogger", "LeafSpec", "train_dataloader", "Trainer.fit", "INFO")

LINE = re.compile(
    r"^\d\d:\d\d:\d\d nlinear national_illness H=24  epoch (\d+)/2  "
    r"train_loss \d+\.\d{4}  val_loss \d+\.\d{4}  \d+\.\d s$"
)

# tests that set up the console themselves, as a command does: the fixture puts the logging state back
pytestmark = pytest.mark.usefixtures("restore_logging")


def _tiny_job() -> Job:
    return Job(
        dataset="national_illness",
        horizon=24,
        lookback=24,
        model=model_config("nlinear", "national_illness", 24, scale="tiny"),
        seed=0,
        caps=TrainingCaps(max_epochs=2, max_samples_per_ts=64),
    )


def test_one_progress_line_per_epoch_and_no_lightning_chatter(ili_dir, tmp_path, capfd, recwarn):
    configure_console()
    data = prepare(read_dataset(get_spec("national_illness"), ili_dir), 24)
    record = run_job(_tiny_job(), data, RunSettings(output_dir=tmp_path, accelerator="cpu"))

    out, err = capfd.readouterr()
    assert record["budget"]["epochs_run"] == 2
    progress = [line for line in err.splitlines() if " epoch " in line]
    assert [int(LINE.match(line).group(1)) for line in progress] == [1, 2], err
    assert out == ""  # the progress goes to stderr, results (printed by the entry points) to stdout
    for text in CHATTER:
        assert text not in err
    assert not [w for w in recwarn if "LeafSpec" in str(w.message)]


def test_progress_bar_replaces_the_progress_line():
    _, with_line = make_callbacks(3, label="x")
    _, with_bar = make_callbacks(3, label="x", epoch_log=False)
    assert sum(isinstance(cb, EpochLog) for cb in with_line) == 1
    assert not any(isinstance(cb, EpochLog) for cb in with_bar)
    assert len(with_bar) == 2  # best weights and early stopping stay


def test_progress_line_from_the_hooks():
    def trainer(sanity: bool = False, **metrics: float) -> SimpleNamespace:
        values = {name: torch.tensor(value) for name, value in metrics.items()}
        return SimpleNamespace(callback_metrics=values, sanity_checking=sanity)

    log = EpochLog("timesclip ETTh1 H=96")
    log.on_train_epoch_start(trainer(), None)
    pattern = r"timesclip ETTh1 H=96  epoch 2/2  train_loss n/a  val_loss n/a  \d+\.\d s"
    assert re.fullmatch(pattern, log.format_line(2, 2))
    log.on_validation_end(trainer(sanity=True, val_loss=9.0), None)  # the sanity check is no epoch
    for loss in (1.0, 0.5, 0.0, 0.5):
        log.on_train_batch_end(trainer(train_loss=loss), None, None, None, 0)
    log.on_validation_end(trainer(val_loss=0.25), None)
    assert "epoch 1/3  train_loss 0.5000  val_loss 0.2500  " in log.format_line(1, 3)
    log.on_train_epoch_start(trainer(), None)  # a new epoch starts from scratch
    assert EpochLog().format_line(3, None).startswith("epoch 3  train_loss n/a")  # no max_epochs: no "/N"
    assert "timesclip ETTh1 H=96  epoch 3  train_loss n/a  val_loss n/a" in log.format_line(3, -1)


LEAF = "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)` instead."
ZERO = "Total length of `list` across ranks is zero. Please make sure this was your intention."


def test_known_warnings_are_ignored_by_message_category_and_module_only():
    def warn(text: str, category: type[Warning], module: str) -> None:
        warnings.warn_explicit(text, category, "somewhere.py", 1, module=module)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ignore_known_warnings()
        warn(LEAF, FutureWarning, "pytorch_lightning.utilities._pytree")
        warn(LEAF, FutureWarning, "lightning.pytorch.utilities._pytree")
        warn(ZERO, UserWarning, "pytorch_lightning.utilities.data")
        # the same texts from elsewhere, other texts from there, other categories: all still shown
        warn(LEAF, FutureWarning, "benchmarks.models")
        warn("`foo` is deprecated", FutureWarning, "pytorch_lightning.utilities._pytree")
        warn(ZERO, DeprecationWarning, "pytorch_lightning.utilities.data")
        warn("Total length of `DataLoader` across ranks is zero.", UserWarning, "pytorch_lightning.utilities.data")
    assert [(str(w.message)[:12], w.category) for w in caught] == [
        ("`isinstance(", FutureWarning),
        ("`foo` is dep", FutureWarning),
        ("Total length", DeprecationWarning),
        ("Total length", UserWarning),
    ]
    assert len(KNOWN_HARMLESS_WARNINGS) == 2


def test_our_messages_and_real_problems_still_show(capfd):
    lightning_logger = logging.getLogger("lightning")
    lightning_logger.addHandler(logging.StreamHandler())  # as `import lightning` does, whatever the root has
    configure_console(import_lightning=False)
    configure_console(import_lightning=False)  # a second main() in the same process: still one handler
    assert len(console_handlers()) == 1

    logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False, used: False")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").warning("a real problem")
    logging.getLogger("benchmarks.runner").info("[1/1] ETTh1 H=96 ...")
    err = capfd.readouterr().err
    assert "GPU available" not in err
    assert err.count("a real problem") == 1  # not also through Lightning's own handler
    assert re.search(r"^\d\d:\d\d:\d\d WARNING pytorch_lightning\.utilities\.rank_zero: a real problem$", err, re.M)
    assert re.search(r"^\d\d:\d\d:\d\d \[1/1\] ETTh1 H=96 \.\.\.$", err, re.M)

    configure_console(verbose=True, import_lightning=False)
    logging.getLogger("pytorch_lightning.utilities.rank_zero").info("GPU available: False, used: False")
    assert capfd.readouterr().err.count("GPU available") == 1


def test_a_failing_job_is_reported(ili_dir, tmp_path, capfd):
    configure_console(import_lightning=False)
    settings = RunSettings(output_dir=tmp_path, data_dir=ili_dir)

    def failing(job, data, settings):
        raise RuntimeError("boom")

    summary = run_sweep([_tiny_job()], settings, job_runner=failing, keep_going=True)
    err = capfd.readouterr().err
    assert len(summary.failed) == 1
    assert "national_illness H=24 L=24 nlinear seed=0 failed" in err and "RuntimeError: boom" in err
    with pytest.raises(RuntimeError, match="boom"):
        run_sweep([_tiny_job()], settings, job_runner=failing)


def test_formatter_keeps_our_info_lines_short():
    formatter = ConsoleFormatter()

    def record(name: str, level: int) -> logging.LogRecord:
        return logging.LogRecord(name, level, __file__, 1, "hello", None, None)

    assert re.fullmatch(r"\d\d:\d\d:\d\d hello", formatter.format(record("benchmarks.callbacks", logging.INFO)))
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d WARNING benchmarks\.runner: hello",
        formatter.format(record("benchmarks.runner", logging.WARNING)),
    )
    assert "darts: hello" in formatter.format(record("darts", logging.INFO))
    assert "benchmarksx: hello" in formatter.format(record("benchmarksx", logging.INFO))
