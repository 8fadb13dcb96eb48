"""Atomic writes (``darts_timesclip._io``): the old file survives a failed write, and no temporary file is left."""

from __future__ import annotations

import os
import stat

import matplotlib
import pytest

from darts_timesclip._io import atomic_path, save_figure_atomic, write_text_atomic

matplotlib.use("Agg")


def test_write_text_atomic_replaces_and_leaves_nothing_behind(tmp_path):
    path = tmp_path / "sub" / "results.md"
    write_text_atomic(path, "first")
    write_text_atomic(path, "second")
    assert path.read_text(encoding="utf-8") == "second"
    assert os.listdir(path.parent) == ["results.md"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("kept", encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_path(path) as tmp:
            tmp.write_text("half a fi", encoding="utf-8")
            raise RuntimeError("disk on fire")
    assert path.read_text(encoding="utf-8") == "kept"
    assert os.listdir(tmp_path) == ["results.csv"]


def test_the_new_file_keeps_the_replaced_files_mode(tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("old", encoding="utf-8")
    os.chmod(path, 0o640)
    write_text_atomic(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    fresh = tmp_path / "fresh.txt"
    write_text_atomic(fresh, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask  # as open() would make it, not mkstemp's 0o600


def test_save_figure_atomic_writes_the_format_of_the_suffix(tmp_path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png, svg = save_figure_atomic(fig, tmp_path / "a.png"), save_figure_atomic(fig, tmp_path / "a.svg")
    plt.close(fig)
    assert png.read_bytes().startswith(b"\x89PNG") and b"<svg" in svg.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["a.png", "a.svg"]
