"""``python -m benchmarks cost``: the Pareto front, the seconds to the best epoch, and the report end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from benchmarks.cli import main
from benchmarks.commands.cost import budget_label, pareto_front, seconds_to_best
from tests.benchmarks.bench_helpers import run_record


def test_pareto_front_keeps_the_points_nothing_beats_on_both_seconds_and_mse():
    points = [
        (1.0, 0.5),  # on: nothing is as fast and as accurate but the equal point below
        (2.0, 0.4),  # on: the only MSE as low in so few seconds
        (2.0, 0.6),  # off: as many seconds as (2, 0.4), higher MSE
        (3.0, 0.4),  # off: the same MSE as (2, 0.4), more seconds
        (1.0, 0.5),  # on: a tie with the first point beats neither
        (0.5, 0.9),  # on: the fastest, beaten in MSE only
        (4.0, 0.3),  # on: the slowest, beaten in seconds only
    ]
    assert pareto_front(points) == [True, True, False, False, True, True, True]
    assert pareto_front([(5.0, 1.0)]) == [True]
    assert pareto_front([]) == []


def _record(model: str, seed: int, mse: float, seconds: float, epochs: int, best: int, **extra) -> dict:
    return run_record(model, mse, seed=seed, seconds=seconds, epochs=epochs, best=best, **extra)


_HISTORY = [{"epoch": e, "val_loss": 0.5 - 0.01 * e, "seconds": s} for e, s in ((1, 2.0), (2, 4.0), (3, 6.5))]


def test_seconds_to_best_reads_the_history_or_estimates_it():
    with_history = _record("nlinear", 1, 0.4, 7.0, epochs=3, best=1, history=_HISTORY)
    assert seconds_to_best(with_history) == (4.0, False)  # the second epoch's seconds
    without = _record("nlinear", 1, 0.4, 90.0, epochs=4, best=2)
    assert seconds_to_best(without) == (pytest.approx(67.5), True)  # 90 s x 3 / 4
    assert seconds_to_best(_record("nlinear", 1, 0.4, 90.0, epochs=4, best=3)) == (pytest.approx(90.0), True)
    assert seconds_to_best(_record("nlinear", 1, 0.4, 9.0, epochs=4, best=None)) == (None, False)
    short = _record("nlinear", 1, 0.4, 7.0, epochs=5, best=4, history=_HISTORY)
    with pytest.raises(ValueError, match=r"etth1_h96_l96_nlinear_s1_x.*has no epoch 5 \(its best\)"):
        seconds_to_best(short)


def test_budget_label_names_what_bounded_the_training():
    record = _record("nlinear", 1, 0.4, 9.0, epochs=4, best=1)
    assert budget_label(record) == "10 ep x all, patience 3"
    record["budget"].update(epoch_limit=2, max_samples_per_ts=4096)
    assert budget_label(record) == "2 ep x 4096"  # patience 3 cannot end 2 epochs


def _write(directory: Path, record: dict) -> None:
    (directory / "runs").mkdir(parents=True, exist_ok=True)
    (directory / "runs" / f"{record['run_id']}.json").write_text(json.dumps(record))


def test_cost_command_writes_the_table_and_plots_from_the_run_records(tmp_path, capsys):
    from PIL import Image

    records = tmp_path / "results"
    # TimesCLIP, two seeds in three studies' directories (seed 1 twice): one point, MSE the mean over seeds
    # (0.40 + 0.38) / 2, seconds the mean over runs (100 + 140 + 60) / 3; no history: the seconds to the best (second
    # of four) epoch estimated, (100 x 2 / 4 + 140 x 2 / 4 + 60 x 2 / 4) / 3 = 50
    _write(records, _record("timesclip", 1, 0.40, 100.0, epochs=4, best=1))
    _write(records / "budget", _record("timesclip", 2, 0.38, 140.0, epochs=4, best=1, tier="budget:2xall"))
    _write(records / "transfer", _record("timesclip", 1, 0.40, 60.0, epochs=4, best=1, tier="transfer:random:quick"))
    # NLinear: fastest, with a history (best: epoch 2, at 4 s); DLinear: slower and worse, off the front
    _write(records, _record("nlinear", 1, 0.42, 7.0, epochs=3, best=1, history=_HISTORY))
    _write(records, _record("dlinear", 1, 0.45, 20.0, epochs=3, best=2))
    # left out: a pretrained TimesCLIP, a probabilistic run
    _write(records / "transfer", _record("timesclip", 3, 0.30, 1.0, epochs=2, best=1, pretrained=True))
    _write(records / "prob", _record("nlinear", 4, 0.30, 1.0, epochs=2, best=1, coordinates={"likelihood": "q"}))

    out = tmp_path / "out"
    assert main(["cost", "--output", str(records), "--results", str(out)]) == 0
    assert "cost.csv" in capsys.readouterr().out
    with (out / "cost.csv").open() as handle:
        rows = {row["model"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"timesclip", "nlinear", "dlinear"}
    timesclip, nlinear, dlinear = rows["timesclip"], rows["nlinear"], rows["dlinear"]
    assert float(timesclip["mse"]) == pytest.approx(0.39) and float(timesclip["train_seconds"]) == 100.0
    assert (timesclip["runs"], timesclip["seeds"], timesclip["best_epoch"]) == ("3", "2", "2.0")
    assert float(timesclip["seconds_to_best"]) == 50.0 and timesclip["seconds_to_best_estimated"] == "True"
    assert timesclip["sources"] == "budget:2xall; quick tier; transfer:random:quick"
    assert timesclip["budget"] == "10 ep x all, patience 3"
    assert float(nlinear["seconds_to_best"]) == 4.0 and nlinear["seconds_to_best_estimated"] == "False"
    assert float(dlinear["seconds_to_best"]) == pytest.approx(20.0) and dlinear["epochs_run"] == "3.0"
    assert [rows[m]["pareto"] for m in ("nlinear", "timesclip", "dlinear")] == ["True", "True", "False"]

    table = (out / "cost.md").read_text()
    assert "| timesclip | 10 ep x all, patience 3 | budget:2xall; quick tier; transfer:random:quick |" in table
    assert "| 3 (2) | 0.3900 | 100 | 4 | 2 | ~50 | * |" in table
    assert "| 1 (1) | 0.4200 | 7.0 | 3 | 2 | 4.0 | * |" in table  # from the history: no `~`
    assert "| 1 (1) | 0.4500 | 20 | 3 | 3 | ~20 |  |" in table
    assert "2 other records" in table and "TimesCLIP: compact backbone, random weights" in table
    assert "](cost/mse_vs_seconds_ETTh1_h96.png)" in table
    assert str(tmp_path) not in table and str(tmp_path) not in (out / "cost.csv").read_text()
    with Image.open(out / "cost" / "mse_vs_seconds_ETTh1_h96.png") as image:
        image.load()
        assert image.format == "PNG" and image.size[0] > 400
    assert sorted(p.name for p in out.rglob("*")) == ["cost", "cost.csv", "cost.md", "mse_vs_seconds_ETTh1_h96.png"]


def test_cost_command_says_when_no_record_is_there(tmp_path, capsys):
    _write(tmp_path, _record("timesclip-gasf", 1, 0.40, 100.0, epochs=4, best=1))  # not a compared model
    with pytest.raises(SystemExit) as exit_info:
        main(["cost", "--output", str(tmp_path), "--results", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "error: No finished point-forecast run of timesclip, " in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_tuned_model_is_a_budget_of_its_model(tmp_path):
    from benchmarks.commands.cost import cost_points, cost_records

    _write(tmp_path, _record("timesclip", 2021, 0.38, 190.0, 2, 1))
    tuned = _record("timesclip-tuned", 2021, 0.39, 2100.0, 9, 5, run_id="etth1_h96_l96_timesclip-tuned_s2021_x")
    _write(tmp_path, {**tuned, "budget": {**tuned["budget"], "epoch_limit": 20}})
    records, left_out = cost_records(tmp_path)
    assert left_out == 0 and sorted(r["model"] for r in records) == ["timesclip", "timesclip-tuned"]
    points = cost_points(records)
    assert [(p.model, p.budget, p.mse) for p in points] == [
        ("timesclip", "10 ep x all, patience 3", 0.38),  # sorted by seconds
        ("timesclip", "tuned, 20 ep x all, patience 3", 0.39),
    ]
