"""Mutation testing of the code that computes results: break it one small change at a time, run its tests.

Each mutant is one change to the syntax tree of a module (an arithmetic or comparison operator swapped, a boolean
operator or constant flipped, a number moved by one, a sign dropped, a ``not`` dropped, a call statement removed).
The mutated module is written into a scratch copy of the repository and the module's tests run there (``pytest -x``,
one process per mutant). A mutant is *killed* when a test fails or the run exceeds its time limit, *survived* when
every test passes. Mutants listed in ``tests/mutation/equivalent.json`` (with the reason they cannot change a result)
are left out of the score. Raised errors, messages, assertions, annotations and docstrings are not mutated.

Usage (from the repository root)::

    python scripts/mutation.py run                      # every target; resumes, skipping mutants already run
    python scripts/mutation.py run --targets explainability --max-mutants 40
    python scripts/mutation.py report                   # the score table, from tests/mutation/<target>.json
    python scripts/mutation.py show explainability      # the surviving mutants as diffs

Where a target has more mutants than ``--max-mutants``, a fixed sample of them is run (the same sample every time:
the mutants are shuffled with ``--seed``); the report says how many of how many ran.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "tests" / "mutation"  # one file of records per target, ``<target>.json``
EQUIVALENT = ROOT / "tests" / "mutation" / "equivalent.json"

TARGETS: dict[str, dict] = {
    "network": {
        "files": [
            "darts_timesclip/network/timesclip.py:TimesCLIPNetwork.encode,TimesCLIPNetwork.forward,"
            "TimesCLIPNetwork.losses,TimesCLIPNetwork.parameter_groups",
            "darts_timesclip/network/heads.py",
            "darts_timesclip/network/losses.py",
            "darts_timesclip/network/normalization.py",
            "darts_timesclip/network/patching.py",
            "darts_timesclip/network/towers.py",
        ],
        "tests": ["tests/test_network.py"],
        # the tests of each file's parts (a mutant of one runs these only)
        "file_tests": {
            "darts_timesclip/network/heads.py": [
                "tests/test_network.py",
                "-k",
                "alignment or selection or weighting or shapes or equivariant or gradients or vision_only or defaults",
            ],
            "darts_timesclip/network/losses.py": ["tests/test_network.py", "-k", "alignment or weighting or shapes"],
            "darts_timesclip/network/normalization.py": [
                "tests/test_network.py",
                "tests/test_likelihoods.py",
                "-k",
                "norm or equivariant or shapes or map or families or beta",
            ],
            "darts_timesclip/network/patching.py": ["tests/test_network.py", "-k", "patching or summary or shapes"],
            "darts_timesclip/network/towers.py": [
                "tests/test_network.py",
                "-k",
                "summary or chunked or cache or vision or covariates or shapes or gradients or pipeline or positions "
                "or defaults",
            ],
        },
    },
    "darts_module": {
        "files": ["darts_timesclip/lightning_module.py"],
        "tests": [
            "tests/test_model.py::test_past_covariates_enter_the_forecast_as_the_network_sees_them",
            "tests/test_model.py::test_user_optimizer_and_scheduler_are_honoured",
            "tests/test_model.py::test_fit_predict_multivariate_and_autoregressive",
            "tests/test_model.py::test_past_covariates_are_extra_variates_not_forecast",
            "tests/test_model.py::test_quantile_likelihood_samples_and_parameters",
            "tests/test_model.py::test_training_logs_both_losses_and_uses_two_learning_rates",
            "tests/test_model.py::test_validation_loss_is_the_forecast_loss",
            "tests/test_predictor.py::test_forecasts_equal_predict_with_past_covariates_and_autoregression",
            "tests/test_operations.py::test_cpu_ddp_trains_and_a_single_device_trainer_predicts",
        ],
    },
    "explainability": {
        "files": ["darts_timesclip/explainability.py:TimesCLIPExplainer.explain,TimesCLIPExplainer._explain_window"],
        "tests": ["tests/test_explainability.py"],
    },
    "pretraining": {
        "files": ["darts_timesclip/pretraining/objectives.py:TimesCLIPPretrainer.forward"],
        "tests": ["tests/test_pretraining.py", "-k", "objective or loss or towers"],
    },
    "regressor": {
        "files": [
            "darts_timesclip/regression/head.py",
            "darts_timesclip/regression/inputs.py:as_targets,length_groups,as_sample_arrays",
        ],
        "tests": ["tests/test_regression.py", "-k", "head or embed or batched or targets or stage_2 or bad_input"],
    },
    "likelihoods": {
        "files": ["darts_timesclip/likelihoods.py", "darts_timesclip/network/normalization.py:denormalize"],
        "tests": [
            "tests/test_likelihoods.py",
            "-k",
            "(map or families or beta or default or either) and not service and not darts_api",
        ],
    },
    "service": {
        "files": [
            "darts_timesclip/serve/service.py:ForecastService.prepare,ForecastService._values,"
            "ForecastService._covariate_window,ForecastService.answer,ForecastService.predictor_batch,"
            "ForecastService.forecast_with_darts,ForecastService.forecast_now,_step,_times,_series,_time_index",
            "darts_timesclip/serve/batching.py:MicroBatcher._work,MicroBatcher._run",
        ],
        "tests": [
            "tests/test_serve.py",
            "-k",
            "forecast_equals or integer_index or concurrent or probabilistic or darts_engine or bad_requests or "
            "micro_batches or seed or integer_time_index or time_index_of or every_kind or failed_batch or "
            "start_with_the_input",
        ],
    },
}
"""What is mutated, and which tests are asked to notice: target name -> module files and test files."""

_BINOPS = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
}
_CMPOPS = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


@dataclass(frozen=True)
class Mutant:
    """One change to one module: where it is and what it does."""

    target: str
    file: str
    index: int  # position of the node in ``ast.walk`` order, together with ``kind`` it names the change
    kind: str
    line: int
    description: str

    @property
    def key(self) -> str:
        """A stable identifier: the file, the line, the change and a hash of the mutated line."""
        return f"{self.file}:{self.line}:{self.kind}:{self.index}"


def _skipped_nodes(tree: ast.AST) -> set[int]:
    """Ids of nodes inside raise statements, assertions, f-strings, annotations, docstrings and logging calls."""
    skipped: set[int] = set()

    def skip_all(node: ast.AST | None) -> None:
        if node is not None:
            skipped.update(id(child) for child in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, ast.Raise | ast.Assert | ast.JoinedStr):
            skip_all(node)
        elif isinstance(node, ast.AnnAssign):
            skip_all(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            skip_all(node.returns)
            for arg in [*node.args.args, *node.args.kwonlyargs, *node.args.posonlyargs]:
                skip_all(arg.annotation)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip_all(node)  # docstrings
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id in {"logger", "log", "warnings", "logging"}:
                skip_all(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            skip_all(node)
    return skipped


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _changes(node: ast.AST) -> Iterator[tuple[str, str]]:
    """The changes this node admits, as ``(kind, description)``."""
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        yield "binop", f"{type(node.op).__name__} -> {_BINOPS[type(node.op)].__name__}"
    elif isinstance(node, ast.AugAssign) and type(node.op) in _BINOPS:
        yield "augop", f"{type(node.op).__name__}= -> {_BINOPS[type(node.op)].__name__}="
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMPOPS:
        yield "compare", f"{type(node.ops[0]).__name__} -> {_CMPOPS[type(node.ops[0])].__name__}"
    elif isinstance(node, ast.BoolOp):
        yield "boolop", f"{type(node.op).__name__} -> {'Or' if isinstance(node.op, ast.And) else 'And'}"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
        yield "unary", f"drop {type(node.op).__name__}"
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield "bool", f"{node.value} -> {not node.value}"
    elif isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        yield "number", f"{node.value!r} -> {_moved(node.value)!r}"
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield "dropcall", "call statement removed"


def _moved(value: int | float) -> int | float:
    if isinstance(value, int):
        return value + 1
    return 1.0 if value == 0 else value * 2


def _apply(node: ast.AST, kind: str) -> ast.AST:
    """The node after the change (a new node; the tree is a copy)."""
    if kind == "binop":
        node.op = _BINOPS[type(node.op)]()
    elif kind == "augop":
        node.op = _BINOPS[type(node.op)]()
    elif kind == "compare":
        node.ops = [_CMPOPS[type(node.ops[0])]()]
    elif kind == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
    elif kind == "unary":
        return node.operand
    elif kind == "bool":
        node.value = not node.value
    elif kind == "number":
        node.value = _moved(node.value)
    elif kind == "dropcall":
        return ast.Pass()
    return node


def _scope(tree: ast.AST, functions: list[str]) -> set[int]:
    """Ids of the nodes inside the functions named by qualified name (``Class.method`` or ``function``)."""
    inside: set[int] = set()

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                if name in functions:
                    inside.update(id(n) for n in ast.walk(child))
                visit(child, f"{name}.")

    visit(tree, "")
    return inside


def enumerate_mutants(target: str, spec: str, root: Path = ROOT) -> list[Mutant]:
    """Every change :func:`_changes` admits in a file, outside the parts that are not mutated.

    ``spec`` is a file, or ``file:function,Class.method,...`` to mutate those functions only.
    """
    file, _, names = spec.partition(":")
    text = (root / file).read_text()
    tree = ast.parse(text)
    skipped = _skipped_nodes(tree)
    scope = _scope(tree, names.split(",")) if names else None
    lines = text.splitlines()
    mutants = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skipped or not hasattr(node, "lineno") or (scope is not None and id(node) not in scope):
            continue
        for kind, description in _changes(node):
            line = lines[node.lineno - 1].strip()
            mutants.append(Mutant(target, file, index, kind, node.lineno, f"{description}: {line[:100]}"))
    return mutants


def mutated_source(mutant: Mutant, root: Path = ROOT) -> str:
    """The module's source with the mutant's change applied (re-printed by :func:`ast.unparse`)."""
    tree = ast.parse((root / mutant.file).read_text())
    for index, candidate in enumerate(ast.walk(tree)):
        if index == mutant.index:
            node = candidate
            break
    else:  # pragma: no cover - the file changed since the mutants were listed
        raise LookupError(f"mutant {mutant.key} does not exist in {mutant.file}")
    replacement = _apply(node, mutant.kind)
    if replacement is not node:
        _replace(tree, node, replacement)
    return ast.unparse(ast.fix_missing_locations(tree))


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, new)
                return
            if isinstance(value, list) and any(item is old for item in value):
                setattr(parent, field, [new if item is old else item for item in value])
                return
    raise LookupError("node not found in its tree")  # pragma: no cover


def select(mutants: list[Mutant], limit: int | None, seed: int) -> list[Mutant]:
    """A fixed sample of at most ``limit`` mutants (all of them without a limit)."""
    if limit is None or len(mutants) <= limit:
        return mutants
    shuffled = list(mutants)
    random.Random(seed).shuffle(shuffled)
    return sorted(shuffled[:limit], key=lambda m: (m.file, m.line, m.index))


def _record_key(target: str, key: str) -> str:
    """A record's key in the merged records: a mutant can belong to two targets, each with its own record."""
    return f"{target}/{key}"


def load_results() -> dict[str, dict]:
    """Every target's records, by ``<target>/<mutant key>`` (a module's function can belong to two targets, each
    with its own tests and its own record)."""
    results: dict[str, dict] = {}
    for target in TARGETS:
        path = RESULTS / f"{target}.json"
        if path.exists():
            results.update({_record_key(target, key): record for key, record in json.loads(path.read_text()).items()})
    return results


def write_results(results: dict[str, dict], target: str) -> None:
    """Write the target's records atomically (a temporary file beside them, then a rename): runs of different
    targets can go side by side."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    records = {_key(record): record for _, record in sorted(results.items()) if record["target"] == target}
    with tempfile.NamedTemporaryFile("w", dir=RESULTS, delete=False, suffix=".tmp") as handle:
        json.dump(records, handle, indent=1)
        handle.write("\n")
    os.replace(handle.name, RESULTS / f"{target}.json")


def load_equivalent() -> dict[str, str]:
    """Mutant key -> the reason it cannot change a result."""
    if not EQUIVALENT.exists():
        return {}
    return {entry["mutant"]: entry["reason"] for entry in json.loads(EQUIVALENT.read_text())}


def scratch_copy() -> Path:
    """The repository's tracked files (as they are in the work tree) copied into a temporary directory."""
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    scratch = Path(tempfile.mkdtemp(prefix="mutation-"))
    for name in files:
        source = ROOT / name
        if source.is_file():
            (scratch / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, scratch / name)
    return scratch


HEAVY_IMPORTS = ("torch", "darts", "pytorch_lightning", "transformers", "pandas", "matplotlib.pyplot", "pytest")
"""Imported once by the parent process; every mutant's test run is a fork of it, so it starts in a moment."""


def preload() -> None:
    """Import the libraries every test run needs (never the package under test), one torch thread."""
    import importlib

    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.dont_write_bytecode = True  # a mutated module must never be read back from a stale .pyc
    for name in HEAVY_IMPORTS:
        importlib.import_module(name)
    import torch

    torch.set_num_threads(1)


def run_tests(scratch: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    """Run ``tests`` in the scratch copy in a fork of this process: ``("passed" | "failed" | "timeout", seconds)``."""
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: the scratch copy first on the path, pytest in-process, output discarded
        code = 3
        try:
            os.chdir(scratch)
            sys.path.insert(0, str(scratch))
            os.environ["PYTHONPATH"] = str(scratch)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            import pytest

            code = int(pytest.main(["-x", "-q", "-n", "0", "-p", "no:cacheprovider", *tests]))
        finally:
            os._exit(code)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.perf_counter() - start > timeout:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return "timeout", time.perf_counter() - start
        time.sleep(0.2)
    outcome = "passed" if os.waitstatus_to_exitcode(status) == 0 else "failed"
    return outcome, time.perf_counter() - start


def _tests_hash(tests: list[str], root: Path = ROOT) -> str:
    """A hash of the test selection (files and options) and of the test files and shared helpers: a survivor is run
    again once they change."""
    digest = hashlib.sha256(" ".join(tests).encode())
    files = {name.split("::")[0] for name in tests if name.startswith("tests/")}
    for name in sorted(files | {"tests/conftest.py", "tests/_helpers.py"}):
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:12]


def run(targets: list[str], limit: int | None, seed: int, timeout_limit: float | None = None) -> int:
    results = load_results()
    preloaded = False  # the libraries are imported before the first test run, if there is one
    scratch = scratch_copy()
    try:
        for target in targets:
            spec = TARGETS[target]
            # the sources of the scratch copy: the work tree may change while the mutants run
            mutants = [m for file in spec["files"] for m in enumerate_mutants(target, file, scratch)]
            chosen = select(mutants, limit, seed)
            print(f"{target}: {len(chosen)} of {len(mutants)} mutants", flush=True)
            timeout = timeout_limit  # without a limit: three times the unmutated tests, run before the first mutant
            for number, mutant in enumerate(chosen, 1):
                tests = spec.get("file_tests", {}).get(mutant.file, spec["tests"])
                tests_hash = _tests_hash(tests, scratch)
                source = mutated_source(mutant, scratch)
                fingerprint = hashlib.sha256(source.encode()).hexdigest()[:12]
                previous = results.get(_record_key(target, mutant.key))
                if previous and previous["fingerprint"] == fingerprint:
                    if previous["status"] == "killed" or previous["tests"] == tests_hash:
                        continue  # killed, or survived the same tests
                if not preloaded:
                    preload()
                    preloaded = True
                if timeout is None:
                    baseline, seconds = run_tests(scratch, spec["tests"], timeout=3600)
                    if baseline != "passed":
                        print(f"{target}: the tests fail without a mutant; fix them first", file=sys.stderr)
                        return 1
                    timeout = max(60.0, 3 * seconds)
                    print(f"{target}: the tests take {seconds:.0f} s unmutated", flush=True)
                path = scratch / mutant.file
                original = path.read_text()
                path.write_text(source)
                try:
                    outcome, spent = run_tests(scratch, tests, timeout)
                finally:
                    path.write_text(original)
                status = "survived" if outcome == "passed" else "killed"
                results[_record_key(target, mutant.key)] = {
                    **asdict(mutant),
                    "status": status,
                    "outcome": outcome,
                    "seconds": round(spent, 1),
                    "fingerprint": fingerprint,
                    "tests": tests_hash,
                    "population": len(mutants),
                    "seed": seed,
                }
                write_results(results, target)
                print(f"  [{number}/{len(chosen)}] {status:8s} {mutant.key}  {mutant.description}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def report(
    results: dict[str, dict] | None = None,
    equivalent: dict[str, str] | None = None,
    targets: dict[str, dict] | None = None,
    root: Path = ROOT,
) -> str:
    """The score table (markdown) of the recorded mutants of the sources as they are now.

    A record whose mutant no longer exists (its line or its place in the module changed) is left out: run the
    mutants again.
    """
    results = load_results() if results is None else results
    equivalent = load_equivalent() if equivalent is None else equivalent
    lines = [
        "| target | mutants run (of all) | killed | survived | equivalent | score |",
        "|---|---|---|---|---|---|",
    ]
    total_killed = total_counted = 0
    for target, spec in (TARGETS if targets is None else targets).items():
        current = _current(target, spec, root)
        records = [r for r in results.values() if r["target"] == target and _is_current(r, current)]
        if not records:
            continue
        population = len(current)
        counted = [r for r in records if _key(r) not in equivalent]
        killed = sum(r["status"] == "killed" for r in counted)
        survived = len(counted) - killed
        total_killed += killed
        total_counted += len(counted)
        score = f"{100 * killed / len(counted):.0f} %" if counted else "-"
        lines.append(
            f"| {target} | {len(records)} ({population}) | {killed} | {survived} | {len(records) - len(counted)} "
            f"| {score} |"
        )
    if total_counted:
        lines.append(
            f"| all | | {total_killed} | {total_counted - total_killed} | | "
            f"{100 * total_killed / total_counted:.0f} % |"
        )
    return "\n".join(lines)


def _key(record: dict) -> str:
    return f"{record['file']}:{record['line']}:{record['kind']}:{record['index']}"


def _current(target: str, spec: dict, root: Path = ROOT) -> dict[str, Mutant]:
    """The mutants of a target's sources as they are now, by key."""
    return {m.key: m for file in spec["files"] for m in enumerate_mutants(target, file, root)}


def _is_current(record: dict, current: dict[str, Mutant]) -> bool:
    """Whether a record is of a mutant of the sources as they are now: its key and its change (the line and what
    is done to it) both still exist."""
    mutant = current.get(_key(record))
    return mutant is not None and mutant.description == record["description"]


def show(target: str) -> str:
    """The surviving (not equivalent) mutants of ``target`` as unified diffs."""
    equivalent = load_equivalent()
    current = _current(target, TARGETS[target])
    chunks = []
    for record in load_results().values():
        if record["target"] != target or record["status"] != "survived" or _key(record) in equivalent:
            continue
        if not _is_current(record, current):
            continue  # a record of an older version of the module
        mutant = Mutant(**{k: record[k] for k in ("target", "file", "index", "kind", "line", "description")})
        before = ast.unparse(ast.parse((ROOT / mutant.file).read_text())).splitlines()
        after = mutated_source(mutant).splitlines()
        diff = difflib.unified_diff(before, after, mutant.file, mutant.key, n=1, lineterm="")
        chunks.append("\n".join(diff))
    return "\n\n".join(chunks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run the mutants (resumes)")
    run_parser.add_argument("--targets", nargs="+", choices=list(TARGETS), default=list(TARGETS))
    run_parser.add_argument("--max-mutants", type=int, default=None, help="a fixed sample of at most this many")
    run_parser.add_argument("--seed", type=int, default=0)
    run_parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per mutant; skips the unmutated run that sets it"
    )
    sub.add_parser("report", help="print the score table")
    show_parser = sub.add_parser("show", help="print the surviving mutants of a target")
    show_parser.add_argument("target", choices=list(TARGETS))
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.targets, args.max_mutants, args.seed, args.timeout)
    print(report() if args.command == "report" else show(args.target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
