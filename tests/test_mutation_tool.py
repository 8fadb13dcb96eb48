"""The mutation-testing script (scripts/mutation.py): which changes it makes, where, and how it scores them."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_spec = importlib.util.spec_from_file_location("mutation_script", ROOT / "scripts" / "mutation.py")
mutation = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mutation
_spec.loader.exec_module(mutation)

MODULE = '''"""A module."""


def combine(a, b):
    """Docstrings are not mutated."""
    if a < b:
        return a + b * 2
    raise ValueError(f"{a - b} is not allowed")


def other(x):
    return -x
'''


@pytest.fixture
def module(tmp_path: Path) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text(MODULE)
    return tmp_path


def _call(source: str, name: str, *args):
    namespace: dict = {}
    exec(compile(source, "mutant", "exec"), namespace)
    return namespace[name](*args)


def test_each_change_is_made_where_it_is_listed_and_nowhere_else(module):
    mutants = mutation.enumerate_mutants("t", "pkg/mod.py", module)
    assert sorted((m.line, m.kind, m.description.split(":")[0]) for m in mutants) == [
        (6, "compare", "Lt -> LtE"),
        (7, "binop", "Add -> Sub"),
        (7, "binop", "Mult -> Div"),
        (7, "number", "2 -> 3"),
        (12, "unary", "drop USub"),
    ]  # nothing from the docstrings, the raise or its f-string
    outcomes = {}
    for mutant in mutants:
        source = mutation.mutated_source(mutant, module)
        name = "other" if mutant.line == 12 else "combine"
        args = (5,) if name == "other" else (1, 3)
        outcomes[mutant.description.split(":")[0]] = _call(source, name, *args)
    assert _call(MODULE, "combine", 1, 3) == 7 and _call(MODULE, "other", 5) == -5
    assert outcomes == {"Lt -> LtE": 7, "Add -> Sub": -5, "Mult -> Div": 1 + 3 / 2, "2 -> 3": 10, "drop USub": 5}


def test_a_scope_limits_the_changes_to_the_functions_it_names(module):
    mutants = mutation.enumerate_mutants("t", "pkg/mod.py:other", module)
    assert [(m.line, m.kind) for m in mutants] == [(12, "unary")]
    assert all(m.file == "pkg/mod.py" for m in mutants)


def test_the_sample_is_fixed_by_the_seed_and_keeps_every_mutant_under_the_limit(module):
    mutants = mutation.enumerate_mutants("t", "pkg/mod.py", module)
    assert mutation.select(mutants, None, 0) == mutants
    assert mutation.select(mutants, 10, 0) == mutants
    first, again = (mutation.select(mutants, 3, seed) for seed in (0, 0))
    assert first == again and len(first) == 3 and set(first) <= set(mutants)
    assert len({frozenset(mutation.select(mutants, 3, seed)) for seed in range(6)}) > 1


def test_the_score_leaves_out_equivalent_and_stale_mutants(module):
    mutants = mutation.enumerate_mutants("t", "pkg/mod.py", module)
    results = {m.key: {**m.__dict__, "status": "killed"} for m in mutants}
    survivor, equivalent = mutants[1].key, mutants[2].key
    results[survivor]["status"] = "survived"
    results[equivalent]["status"] = "survived"
    results["pkg/mod.py:99:binop:999"] = {**mutants[0].__dict__, "line": 99, "index": 999, "status": "survived"}
    # a record of an older module whose key now names another change
    results[mutants[3].key] = {**mutants[3].__dict__, "description": "Lt -> LtE: if a <= b:", "status": "survived"}
    table = mutation.report(results, {equivalent: "cannot change a result"}, {"t": {"files": ["pkg/mod.py"]}}, module)
    row = next(line for line in table.splitlines() if line.startswith("| t |"))
    assert row == "| t | 4 (5) | 2 | 1 | 1 | 67 % |"


def test_the_docs_show_the_score_of_the_recorded_mutants():
    page = (ROOT / "docs" / "development.md").read_text()
    table = re.search(r"<!-- mutation-scores -->\n(.*?)\n\n", page, re.S)
    assert table, "docs/development.md has no mutation-score table"
    assert table.group(1).strip() == mutation.report().strip(), "run `python scripts/mutation.py report`"


def test_every_listed_equivalent_mutant_exists_and_says_why():
    current = {
        m.key
        for target, spec in mutation.TARGETS.items()
        for file in spec["files"]
        for m in mutation.enumerate_mutants(target, file)
    }
    for key, reason in mutation.load_equivalent().items():
        assert key in current, f"{key} no longer exists"
        assert len(reason) > 20, f"{key}: say why it cannot change a result"


_DRIVER = """
import importlib.util, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("mutation_script", sys.argv[1])
m = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = m
spec.loader.exec_module(m)
spec = {"files": ["darts_timesclip/_checks.py:positive_int"], "tests": ["tests/test_checks.py"]}
m.TARGETS = {"checks": spec, "same_function": spec}  # two targets may share a function: each keeps its records
m.RESULTS = Path(sys.argv[2])
m.EQUIVALENT = m.RESULTS / "equivalent.json"
sys.exit(m.run(["checks", "same_function"], 3, 0))
"""


def test_a_run_kills_its_mutants_in_a_scratch_copy_and_a_second_run_runs_nothing(tmp_path):
    import json
    import subprocess

    command = [sys.executable, "-c", _DRIVER, str(ROOT / "scripts" / "mutation.py"), str(tmp_path)]
    source = (ROOT / "darts_timesclip" / "_checks.py").read_text()
    first = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    records = json.loads((tmp_path / "checks.json").read_text())
    # the two mutants of `positive_int` (`<` and the bound 1), each caught by tests/test_checks.py, once per target
    assert sorted(r["kind"] for r in records.values()) == ["compare", "number"]
    assert {r["status"] for r in records.values()} == {"killed"}
    again = json.loads((tmp_path / "same_function.json").read_text())
    assert sorted(again) == sorted(records) and {r["target"] for r in again.values()} == {"same_function"}
    assert first.stdout.count("unmutated") == 2 and first.stdout.count("] killed") == 4
    assert (ROOT / "darts_timesclip" / "_checks.py").read_text() == source  # mutants live in the scratch copy only

    second = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "unmutated" not in second.stdout and "killed" not in second.stdout  # no test run at all
    assert json.loads((tmp_path / "checks.json").read_text()) == records
