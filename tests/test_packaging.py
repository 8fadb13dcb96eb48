"""The wheel: every module of the source tree under its package name, the typing marker, one version, the script.

The wheel is built from a copy of the files a build reads (a ``build/`` folder left in the tree by an earlier build
could otherwise add modules that no longer exist). Installing the wheel into a fresh environment and using it there
is the CI step ``scripts/check_slim_install.py``.
"""

from __future__ import annotations

import configparser
import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import darts_timesclip

ROOT = Path(__file__).resolve().parents[1]
#: source folder -> the package it is installed as
PACKAGE_FOLDERS = {"darts_timesclip": "darts_timesclip", "adapters": "darts_timesclip.adapters"}
BUILD_INPUTS = ("pyproject.toml", "setup.py", "README.md", *PACKAGE_FOLDERS)


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
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_INPUTS:
        if not (ROOT / name).exists():
            continue
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*command, "-w", str(out)], check=True, capture_output=True, text=True, timeout=300)
    (built,) = out.glob("*.whl")
    return built


def test_source_modules_are_those_of_the_tree():
    """The reference list itself: the package folders' modules, the adapter under its installed name."""
    expected = source_modules()
    assert {"darts_timesclip/__init__.py", "darts_timesclip/vq/model.py", "darts_timesclip/py.typed"} <= expected
    assert "darts_timesclip/adapters/pytorch_forecasting.py" in expected
    assert not any(p.startswith(("adapters/", "tests/", "benchmarks/")) for p in expected)
    assert (ROOT / "darts_timesclip" / "py.typed").is_file()


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
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "darts_timesclip.__version__"}
