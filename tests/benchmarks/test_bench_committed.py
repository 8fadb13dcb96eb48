"""The committed results: every report regenerates from its run files, every run id is what the studies make now,
old result files are read into today's names, and no committed table holds an absolute path of a machine."""

from __future__ import annotations

import json
import re

import pytest

from benchmarks.cli import main
from benchmarks.models import TrainingCaps
from benchmarks.report import REPO_ROOT, portable_path, portable_paths
from benchmarks.runner import SweepSpec, load_results
from benchmarks.studies.ablate import AblateStudy
from benchmarks.studies.budget import BudgetStudy
from benchmarks.studies.probabilistic import ProbabilisticStudy
from benchmarks.studies.regression import RegressionStudy
from benchmarks.studies.transfer import TransferStudy
from benchmarks.study import StudyOptions
from benchmarks.tiers import get_tier

RESULTS = REPO_ROOT / "benchmarks" / "results"

#: Each study's command and the report it writes (``run``'s is ``results``, rewritten by ``report``).
REPORTS = {
    "report": ("results", "runs"),
    "ablate": ("ablations", "ablations/runs"),
    "budget": ("budget", "budget/runs"),
    "transfer": ("pretraining", "transfer/runs"),
    "regression": ("regression", "regression/runs"),
    "probabilistic": ("probabilistic", "probabilistic/runs"),
}


@pytest.mark.parametrize("command", list(REPORTS))
def test_every_committed_report_regenerates_from_its_run_files(command, tmp_path, capsys):
    stem, runs = REPORTS[command]
    assert len(list((RESULTS / runs).glob("*.json"))) >= 12  # the committed run files are there to read
    assert (
        main([command, "--no-plots", "--results", str(tmp_path), *([] if command == "report" else ["--report-only"])])
        == 0
    )
    for suffix in (".md", ".csv"):
        regenerated = (tmp_path / f"{stem}{suffix}").read_bytes()
        assert regenerated == (RESULTS / f"{stem}{suffix}").read_bytes(), (
            f"{stem}{suffix} differs from the committed one"
        )
    assert not list(tmp_path.glob("*.png"))  # --no-plots


def test_no_committed_table_holds_an_absolute_path():
    reports = [RESULTS / f"{stem}{suffix}" for stem, _ in REPORTS.values() for suffix in (".md", ".csv")]
    absolute = re.compile(r"(?<![\w.~/-])/(?:[\w.@+-]+/)+[\w.@+-]*")
    found = {p.name: absolute.findall(p.read_text(encoding="utf-8")) for p in reports}
    assert {name: paths for name, paths in found.items() if paths} == {}
    # the run files name no absolute path either (the runner writes them portable)
    recorded = json.loads(next((RESULTS / "ablations" / "runs").glob("etth1_*full_s2021_*.json")).read_text())
    assert "--data-dir ../shared/data" in recorded["command"]
    runs = [p for p in RESULTS.rglob("runs/*.json")]
    assert runs and [p.name for p in runs if absolute.search(p.read_text(encoding="utf-8"))] == []
    assert "--data-dir ../shared/data" in (RESULTS / "ablations.md").read_text()


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/srv/ci/main/benchmarks/results/transfer/backbones/b1", "benchmarks/results/transfer/backbones/b1"),
        ("/elsewhere/clone/benchmarks/results/x.json", "benchmarks/results/x.json"),  # whichever checkout
        ("/srv/ci/shared/data", "../shared/data"),  # the registry's default data directory beside a checkout
        ("/data/projects/shared/data/ETTh1.csv", "../shared/data/ETTh1.csv"),
        (str(REPO_ROOT / "outputs" / "quickstart"), "outputs/quickstart"),
        (str(REPO_ROOT.parent / "elsewhere" / "x"), "../elsewhere/x"),
        ("/opt/datasets/etth/ETTh1.csv", "…/etth/ETTh1.csv"),
        ("../shared/data", "../shared/data"),  # relative paths stay as they are
    ],
)
def test_a_recorded_path_is_shown_relative(path, shown):
    assert portable_path(path) == shown


def test_only_paths_are_rewritten_in_a_report():
    text = "`python -m benchmarks run --data-dir /srv/ci/shared/data` | 2.1 t/ha | 30 windows/s | MSE / MAE | (1/2) |"
    assert portable_paths(text) == (
        "`python -m benchmarks run --data-dir ../shared/data` | 2.1 t/ha | 30 windows/s | MSE / MAE | (1/2) |"
    )


def _run_ids(directory: str) -> set[str]:
    return {p.stem for p in (RESULTS / directory / "runs").glob("*.json")}


def test_committed_run_ids_are_the_ones_the_studies_make_now():
    """A rerun of a committed study skips its finished jobs: today's job definitions give the same run ids."""
    options = StudyOptions(output=RESULTS / "x", results=RESULTS, seeds=(2021, 2022, 2023), threads=1)
    assert _run_ids("ablations") == {job.run_id for job in AblateStudy().jobs(options)}  # all 150
    assert _run_ids("budget") == {job.run_id for job in BudgetStudy().jobs(options)}
    assert _run_ids("regression") <= {job.run_id for job in RegressionStudy().jobs(options)}
    assert _run_ids("probabilistic") <= {job.run_id for job in ProbabilisticStudy().jobs(options)}
    suite = []
    for tier in (get_tier("quick"), get_tier("standard")):
        suite += SweepSpec(tier.datasets, tier.horizons, 96, tier.models, (2021,), tier=tier).expand()
        patchtst = TrainingCaps(max_epochs=20)  # the standard tier's PatchTST ran with --max-epochs 20
        suite += SweepSpec(tier.datasets, tier.horizons, 96, ("patchtst",), (2021,), tier=tier, caps=patchtst).expand()
    # TimesCLIP with its searched configuration at the baselines' budget (`--max-epochs 20`, no tier)
    full_budget = TrainingCaps(max_epochs=20)
    tuned_cells = SweepSpec(
        ("ETTh1", "ETTh2"), (96, 192), 96, ("timesclip-tuned",), (2021, 2022, 2023), caps=full_budget
    )
    tuned = tuned_cells.expand()
    suite += tuned
    committed_tuned = {r for r in _run_ids("") if "timesclip-tuned" in r}
    assert _run_ids("") <= {job.run_id for job in suite} and len(_run_ids("")) == 62 + len(committed_tuned)
    assert len(committed_tuned) >= 5
    # transfer: the random-init and NLinear jobs (the pretrained ones name backbone directories not committed)
    transfer = StudyOptions(output=RESULTS / "transfer", results=RESULTS, seeds=(2021, 2022))
    random_jobs = TransferStudy(inits=("random",)).jobs(transfer)
    committed = {r["run_id"] for r in load_results(RESULTS / "transfer") if r["model_config"]["pretrained"] is False}
    assert committed == {job.run_id for job in random_jobs}


def test_result_files_written_before_typed_coordinates_are_read_into_them():
    options = StudyOptions(output=RESULTS / "transfer", results=RESULTS)
    old = next(r for r in load_results(RESULTS / "transfer") if r["tier"] == "transfer:pretrained-others:quick:masked")
    assert "study" not in old and "coordinates" not in old  # as committed
    records = {r["run_id"]: r for r in TransferStudy().records(options)}
    assert len(records) == 104
    assert records[old["run_id"]]["coordinates"] == {
        "init": "pretrained-others",
        "budget": "quick",
        "objective": "masked",
    }
    rows = TransferStudy().table(list(records.values()))
    default = next(r for r in rows if r["init"] == "pretrained-synthetic")
    assert default["objective"] == "next-patch"  # a pretrained record naming no objective had the default one

    ablations = AblateStudy().records(StudyOptions(output=RESULTS / "ablations", results=RESULTS))
    assert len(ablations) == 150 and {r["study"] for r in ablations} == {"ablate"}
    assert {r["coordinates"]["configuration"] for r in ablations} == set(AblateStudy().configurations)
    assert AblateStudy().records(StudyOptions(output=RESULTS / "budget", results=RESULTS)) == []  # not its jobs


def test_a_model_under_its_former_name_is_read_as_todays(tmp_path):
    record = json.loads(next((RESULTS / "runs").glob("etth1_h96_l96_timesclip_s2021_*.json")).read_text())
    record.update(model="timesclip-no-vision", run_id="etth1_h96_l96_timesclip-no-vision_s2021_0123456789")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / f"{record['run_id']}.json").write_text(json.dumps(record))
    assert [r["model"] for r in load_results(tmp_path)] == ["timesclip-language-only"]
    assert main(["report", "--output", str(tmp_path), "--no-plots"]) == 0
    assert "| ETTh1 | 96 | 96 | timesclip-language-only | quick | 1 |" in (tmp_path / "results.md").read_text()
