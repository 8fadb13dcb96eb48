"""The autouse fixture that fails a test leaving the process otherwise than it found it (``tests/conftest.py``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import torch

#: Loggers whose level, handlers and propagation a test must leave as it found them (the root: its level and the
#: handlers that are not pytest's own, which change with every test phase).
WATCHED_LOGGERS = (
    "darts_timesclip",
    "darts_timesclip.pretraining",
    "benchmarks",
    "darts",
    "pytorch_lightning",
    "lightning",
    "lightning.pytorch",
    "lightning_fabric",
    "lightning.fabric",
)


#: Variables that are not a test's to restore: pytest's own (set anew at every test phase), and those libraries set
#: once, at their first import (scikit-learn: the OpenMP ones; Ray: its client mode; tensorboardX: its checksum mode).
UNWATCHED_VARIABLES = frozenset(
    {"PYTEST_CURRENT_TEST", "KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK", "RAY_CLIENT_MODE", "CRC32C_SW_MODE"}
)


def _environment() -> dict[str, str]:
    """The environment variables, less :data:`UNWATCHED_VARIABLES`."""
    return {k: v for k, v in os.environ.items() if k not in UNWATCHED_VARIABLES}


def _logging_state() -> dict[str, tuple]:
    root = logging.getLogger()
    own = [h for h in root.handlers if not type(h).__module__.startswith("_pytest")]
    state = {"<root>": (root.level, own)}
    for name in WATCHED_LOGGERS:
        logger = logging.getLogger(name)
        state[name] = (logger.level, list(logger.handlers), logger.propagate)
    return state


def _restore_logging(state: dict[str, tuple]) -> None:
    root = logging.getLogger()
    root.setLevel(state["<root>"][0])
    pytest_handlers = [h for h in root.handlers if type(h).__module__.startswith("_pytest")]
    root.handlers[:] = [*state["<root>"][1], *pytest_handlers]
    for name in WATCHED_LOGGERS:
        logger = logging.getLogger(name)
        level, handlers, propagate = state[name]
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.propagate = propagate


@pytest.fixture(autouse=True)
def no_leaked_state() -> Iterator[None]:
    """Fail a test that leaves the process otherwise than it found it: torch's thread count, the working directory,
    the environment variables, the watched loggers. What leaked is named and put back, so later tests start clean."""
    threads, cwd, env, logs = torch.get_num_threads(), os.getcwd(), _environment(), _logging_state()
    yield
    leaks = []
    if torch.get_num_threads() != threads:
        leaks.append(f"torch threads {threads} -> {torch.get_num_threads()}")
        torch.set_num_threads(threads)
    if os.getcwd() != cwd:
        leaks.append(f"working directory {cwd} -> {os.getcwd()}")
        os.chdir(cwd)
    now_env = _environment()
    if now_env != env:
        changed = sorted(k for k in set(env) | set(now_env) if env.get(k) != now_env.get(k))
        leaks.append(f"environment variables {changed}")
        for name in changed:
            if name in env:
                os.environ[name] = env[name]
            else:
                del os.environ[name]
    now = _logging_state()
    if now != logs:
        changed = [name for name in logs if now[name] != logs[name]]
        leaks.append(
            f"loggers {changed} (level, handlers, propagation: {[logs[n] for n in changed]} -> "
            f"{[now[n] for n in changed]})"
        )
        _restore_logging(logs)
    if leaks:
        pytest.fail("The test leaked state: " + "; ".join(leaks), pytrace=False)
