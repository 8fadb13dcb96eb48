"""Tests of optional extras: skipped with the missing package named, or failed where every extra must be installed.

``requires("ray", "benchmark")`` imports and returns a module, or skips the test (or, at module level, the file)
with a reason that starts with :data:`MISSING`. Under ``DARTS_TIMESCLIP_REQUIRE_EXTRAS=1`` (CI, where every extra is
installed) :func:`fail_missing_dependency` turns such a skip, or a plain ``pytest.importorskip`` skip, into a failure:
nothing goes untested because a package is missing. The hooks below (imported by ``tests/conftest.py``) call it
on every report.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from types import ModuleType

import pytest

#: Set to ``1`` to fail, not skip, the tests whose optional dependency is missing.
REQUIRE_EXTRAS_ENV = "DARTS_TIMESCLIP_REQUIRE_EXTRAS"

#: How the reason of a skip for a missing package starts (``requires``, and ``pytest.importorskip`` by default).
MISSING = "missing optional dependency"
_IMPORTORSKIP = "could not import"


def requires(module: str, extra: str | None = None) -> ModuleType:
    """Import ``module``, or skip naming it (and the extra that installs it).

    Parameters
    ----------
    module
        The module to import (``"pytorch_forecasting"``).
    extra
        The darts-timesclip extra that installs it, named in the reason.

    Returns
    -------
    ModuleType
        The imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        where = f" (the `{extra}` extra)" if extra else ""
        pytest.skip(f"{MISSING}: `{module}`{where}: {err}", allow_module_level=True)


def _skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def is_missing_dependency(reason: str) -> bool:
    """Whether a skip reason (``"Skipped: ..."`` or bare) is that of a missing package."""
    text = reason.removeprefix("Skipped: ")
    return text.startswith((MISSING, _IMPORTORSKIP))


def fail_missing_dependency(
    report: pytest.CollectReport | pytest.TestReport, path: str | None = None, line: int | None = None
) -> None:
    """A skip for a missing package, in place: reported at the test (``path``, 0-based ``line``) rather than in
    :func:`requires`; under ``DARTS_TIMESCLIP_REQUIRE_EXTRAS=1``, a failure."""
    if not report.skipped:
        return
    reason = _skip_reason(report)
    if not is_missing_dependency(reason):
        return
    if os.environ.get(REQUIRE_EXTRAS_ENV) == "1":
        report.outcome = "failed"
        report.longrepr = f"{reason}\n{REQUIRE_EXTRAS_ENV}=1: every optional dependency must be installed."
    elif path is not None and isinstance(report.longrepr, tuple):
        report.longrepr = (path, (line or 0) + 1, reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Under ``DARTS_TIMESCLIP_REQUIRE_EXTRAS=1``, a test skipped for a missing package fails."""
    report = yield
    path, line, _ = item.location
    fail_missing_dependency(report, path, line)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """As :func:`pytest_runtest_makereport`, for a test file skipped at import (``requires`` at module level)."""
    report = yield
    fail_missing_dependency(report, collector.nodeid or None, None)
    return report
