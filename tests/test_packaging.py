"""The wheel: every module of the source tree under its package name, the typing marker, one version, the script.

The wheel is built as CI builds it (``scripts/check_slim_install.py``, which then installs it into a fresh
environment with the ``serve`` extra alone and uses it there).
"""

from __future__ import annotations

import configparser
import email
import zipfile
from pathlib import Path

import pytest

import darts_timesclip
from scripts.check_slim_install import BUILD_INPUTS, build_wheel

ROOT = Path(__file__).resolve().parents[1]
#: source folder -> the package it is installed as
PACKAGE_FOLDERS = {"darts_timesclip": "darts_timesclip", "adapters": "darts_timesclip.adapters"}


def source_modules() -> set[str]:
    """Paths in a wheel of every ``.py`` file under the package folders of the tree, plus ``py.typed``."""
    expected = {"darts_timesclip/py.typed"}
    for folder, package in PACKAGE_FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                relative = path.relative_to(ROOT / folder).as_posix()
                expected.add(f"{package.replace('.', '/')}/{relative}")
    return expected


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


def test_source_modules_are_those_of_the_tree():
    """The reference list itself: the package folders' modules, the adapter under its installed name."""
    expected = source_modules()
    assert {"darts_timesclip/__init__.py", "darts_timesclip/vq/model.py", "darts_timesclip/py.typed"} <= expected
    assert "darts_timesclip/adapters/pytorch_forecasting.py" in expected
    assert not any(p.startswith(("adapters/", "tests/", "benchmarks/")) for p in expected)
    assert (ROOT / "darts_timesclip" / "py.typed").is_file()
    assert set(PACKAGE_FOLDERS) <= set(BUILD_INPUTS)  # the build reads every package folder


def test_the_wheel_holds_every_module_of_the_tree_and_nothing_else(wheel):
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if ".dist-info/" not in name}
    assert sorted(source_modules() - shipped) == []  # e.g. `darts_timesclip/vq/...` before packages were discovered
    assert sorted(shipped - source_modules()) == []  # no tests, benchmarks, top-level `adapters/` or stale files


def test_the_wheel_has_the_package_version_and_the_console_script(wheel):
    assert wheel.name == f"darts_timesclip-{darts_timesclip.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        info = f"darts_timesclip-{darts_timesclip.__version__}.dist-info"
        metadata = email.message_from_bytes(archive.read(f"{info}/METADATA"))
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(f"{info}/entry_points.txt").decode())
    assert metadata["Name"] == "darts-timesclip" and metadata["Version"] == darts_timesclip.__version__
    assert {"serve", "pytorch-forecasting", "regression", "onnx"} <= set(metadata.get_all("Provides-Extra"))
    assert dict(entry_points["console_scripts"]) == {"darts-timesclip": "darts_timesclip.cli:main"}


def test_the_version_is_written_once():
    """``pyproject.toml`` reads the version from the package (``dynamic``), so a release changes one line."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib: Python 3.11+")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "darts_timesclip.__version__"}
