"""The suite's own rules, run on generated test files: a test that leaks process state fails, naming what leaked;
under ``DARTS_TIMESCLIP_REQUIRE_EXTRAS=1`` a test skipped for a missing package fails."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFTEST = """
from tests._extras import pytest_make_collect_report, pytest_runtest_makereport
from tests._isolation import no_leaked_state
"""

TESTS = """
import logging
import os

import pytest
import torch

from tests._extras import requires


def test_threads():
    torch.set_num_threads(torch.get_num_threads() + 1)


def test_environment():
    os.environ["SUITE_POLICY_PROBE"] = "1"


def test_logger():
    logging.getLogger("darts_timesclip").setLevel(logging.DEBUG)


def test_directory(tmp_path):
    os.chdir(tmp_path)


def test_restored(monkeypatch, tmp_path):
    monkeypatch.setenv("SUITE_POLICY_PROBE", "1")
    monkeypatch.chdir(tmp_path)


def test_missing_package():
    requires("darts_timesclip_no_such_package", "serve")


def test_importorskip():
    pytest.importorskip("darts_timesclip_no_such_package")


def test_other_skip():
    pytest.skip("not a missing package")
"""

MODULE_SKIP = """
from tests._extras import requires

requires("darts_timesclip_no_such_package")


def test_never_collected():
    pass
"""


def _run(tmp_path: Path, require_extras: bool) -> str:
    for name, text in {"conftest.py": CONFTEST, "test_probe.py": TESTS, "test_module_skip.py": MODULE_SKIP}.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DARTS_TIMESCLIP_REQUIRE"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    if require_extras:
        env["DARTS_TIMESCLIP_REQUIRE_EXTRAS"] = "1"
    env["COLUMNS"] = "500"  # whole lines in the short summary
    args = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-p", "no:xdist"]
    args += ["--continue-on-collection-errors", str(tmp_path)]
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return done.stdout + done.stderr


def _line(output: str, start: str) -> str:
    return next(line for line in output.splitlines() if line.startswith(start))


def test_leaked_state_fails_the_test_and_is_named(tmp_path):
    output = _run(tmp_path, require_extras=False)
    assert "torch threads" in _line(output, "ERROR test_probe.py::test_threads")
    assert "environment variables ['SUITE_POLICY_PROBE']" in _line(output, "ERROR test_probe.py::test_environment")
    assert "loggers ['darts_timesclip']" in _line(output, "ERROR test_probe.py::test_logger")
    assert "working directory" in _line(output, "ERROR test_probe.py::test_directory")
    assert _line(output, "PASSED test_probe.py::test_restored")  # what monkeypatch restores is no leak
    # skipped where the package is missing, the package named
    skipped = _line(output, "SKIPPED [1] test_probe.py:")  # where the test is, not where `requires` is
    assert "missing optional dependency: `darts_timesclip_no_such_package` (the `serve` extra)" in skipped
    assert _line(output, "SKIPPED [1] test_module_skip.py:1: missing optional dependency")
    assert "5 passed, 4 skipped, 4 errors" in output, output  # 1 file skipped at import; test_restored passed


def test_required_extras_turn_skips_for_missing_packages_into_failures(tmp_path):
    output = _run(tmp_path, require_extras=True)
    assert _line(output, "FAILED test_probe.py::test_missing_package")
    assert _line(output, "FAILED test_probe.py::test_importorskip")
    assert _line(output, "SKIPPED [1] test_probe.py:").endswith("not a missing package")  # another reason: a skip
    assert _line(output, "ERROR test_module_skip.py")  # the file skipped at import
    assert "DARTS_TIMESCLIP_REQUIRE_EXTRAS=1: every optional dependency must be installed" in output
