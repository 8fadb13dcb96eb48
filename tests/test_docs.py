"""The README and the documentation: every code block runs as written, every link resolves, the site builds.

- The code blocks (``tests/docs_examples.py`` says how they are marked) run in one subprocess, a temporary working
  directory per page, with ``$DARTS_TIMESCLIP_DATA`` and ``../shared/data`` pointing at the benchmark data.
- The site is built with ``mkdocs build --strict`` (every warning an error: links, API pages, the notebook).
- The example notebook is executed at tiny settings (a cell injected after its ``parameters`` cell).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._extras import requires
from tests.docs_examples import REPO, code_blocks, documentation_files, plan_for

DOC_FILES = documentation_files()
NOTEBOOK = REPO / "docs" / "examples" / "quickstart.ipynb"
README_COMMANDS = (
    "bash scripts/bootstrap.sh && .venv/bin/python -m benchmarks quickstart --data-dir ../shared/data",
    "bash scripts/bootstrap.sh && .venv/bin/python -m pytest -q",
)


def _data_dir() -> Path | None:
    for candidate in (os.environ.get("DARTS_TIMESCLIP_DATA"), REPO.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "ETTh1.csv.gz").is_file():
            return Path(candidate).resolve()
    return None


def _ids(paths: list[Path]) -> list[str]:
    return [p.relative_to(REPO).as_posix() for p in paths]


# ------------------------------------------------------------------------------------------------ block rules
@pytest.mark.parametrize("path", DOC_FILES, ids=_ids(DOC_FILES))
def test_every_code_block_is_run_or_says_why_not(path):
    for block in code_blocks(path):
        assert block.language in ("python", "bash", "text"), (
            f"{block.where}: a code block is ```python, ```bash or ```text (printed output), got {block.language!r}"
        )
        if block.directive == "excerpt":
            assert block.value, f"{block.where}: an excerpt says why it is not run: <!-- excerpt: REASON -->"
            assert block.language != "text", f"{block.where}: output blocks are never run; drop the excerpt mark"
        if block.directive == "serve":
            assert block.language == "bash" and "localhost:8000" in block.code, (
                f"{block.where}: a serve block is bash and calls localhost:8000"
            )


def test_code_block_parser_reads_directives_and_languages(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n\n<!-- excerpt: needs a GPU -->\n```bash\nnvidia-smi\n```\n\n```python\nx = 1\n```\n"
        "- item\n\n    ```text\n    out\n    ```\n"
    )
    monkeypatch.setattr("tests.docs_examples.REPO", tmp_path)
    blocks = code_blocks(page)
    assert [(b.line, b.language, b.directive, b.value, b.runs) for b in blocks] == [
        (4, "bash", "excerpt", "needs a GPU", False),
        (8, "python", None, "", True),
        (13, "text", None, "", False),
    ]
    assert blocks[2].code == "out\n"
    page.write_text("```python\nx = 1\n")
    with pytest.raises(ValueError, match="not closed"):
        code_blocks(page)


@pytest.fixture(scope="module")
def example_results(tmp_path_factory):
    """Run every runnable block of the README and the pages (once); ``{where: {"ok", "error", "seconds"}}``."""
    root = tmp_path_factory.mktemp("docs-examples")
    data = _data_dir()
    plan = plan_for(DOC_FILES, root / "pages", data)
    plan_file, results_file = root / "plan.json", root / "results.json"
    plan_file.write_text(json.dumps(plan))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    if data:
        env["DARTS_TIMESCLIP_DATA"] = str(data)
    runner = REPO / "tests" / "docs_examples.py"
    completed = subprocess.run(
        [sys.executable, str(runner), str(plan_file), str(results_file)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,  # a safety net for a heavily loaded machine
    )
    assert completed.returncode == 0, completed.stderr[-5000:]
    return plan, json.loads(results_file.read_text())


RUNNABLE = [p for p in DOC_FILES if any(b.runs for b in code_blocks(p))]


@pytest.mark.parametrize("path", RUNNABLE, ids=_ids(RUNNABLE))
def test_code_blocks_run_as_written(path, example_results):
    plan, results = example_results
    failures = [
        f"--- {b.where} ({b.language})\n{results[b.where]['error']}"
        for b in code_blocks(path)
        if b.runs and not results[b.where]["ok"]
    ]
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------------------------------------ README
def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = code_blocks(REPO / "README.md")[0]
    for command in README_COMMANDS:
        assert command in first_block.code, f"the README's first block lacks {command!r}"
    assert README_COMMANDS[1] in (REPO / ".ci" / "run").read_text(), ".ci/run must run the README's test command"
    assert readme.count("\n") <= 220, "the README is the front door: guides and results belong in docs/"


@pytest.mark.parametrize("path", DOC_FILES, ids=_ids(DOC_FILES))
def test_relative_links_resolve(path):
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.MULTILINE | re.DOTALL)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        target = target.split("#", 1)[0]
        if target and "://" not in target and not target.startswith("mailto:"):
            assert (path.parent / target).exists(), f"{path.relative_to(REPO)} links {target!r}, which does not exist"


def test_no_page_names_a_path_of_this_machine():
    for path in DOC_FILES:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"/work/|/root/|/home/", text), f"{path.relative_to(REPO)} names an absolute path"


# ------------------------------------------------------------------------------------------------ the site
def test_site_builds_strictly(tmp_path):
    """``mkdocs build --strict``: a broken link, a missing API object or a bad notebook fails the build."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # a safety net for a heavily loaded machine
    )
    assert completed.returncode == 0, completed.stderr[-5000:]
    usage = (tmp_path / "site" / "usage" / "index.html").read_text(encoding="utf-8")
    assert "<td><code>alignment_weight</code></td>" in usage, "the argument table was not generated"
    model_api = (tmp_path / "site" / "api" / "model" / "index.html").read_text(encoding="utf-8")
    assert "text_tower_lr" in model_api and "{timesclip_parameters}" not in model_api
    assert (tmp_path / "site" / "examples" / "quickstart" / "index.html").is_file()


# ------------------------------------------------------------------------------------------------ the notebook
def test_quickstart_notebook_runs_at_tiny_settings(tmp_path, monkeypatch):
    nbformat = requires("nbformat", "docs")
    nbclient = requires("nbclient", "docs")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    index = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    tiny = 'BACKBONE, N_EPOCHS, TRAIN_WINDOWS, TEST_WINDOWS = "tiny", 1, 64, 24'
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(tiny))
    data = _data_dir()
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend returns the figures
    if data:
        monkeypatch.setenv("DARTS_TIMESCLIP_DATA", str(data))
    client = nbclient.NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    printed = "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")
    assert ("ETTh1 from" if data else "synthetic series of the same shape") in printed
    assert re.search(r"MSE \d\.\d{3}, MAE \d\.\d{3}", printed), printed
    figures = sum("image/png" in o.get("data", {}) for o in outputs)
    assert figures == 4, f"expected the data, forecast, attention and views figures, got {figures}"


def test_committed_notebook_carries_the_outputs_of_a_run():
    nbformat = requires("nbformat", "docs")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "commit the notebook executed, every cell"
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)


# ------------------------------------------------------------------------------------------------ CI timing
def test_ci_prints_how_long_the_test_command_took_above_pytests_last_line(tmp_path):
    started = int(time.time()) - 65
    env = {**os.environ, "DARTS_TIMESCLIP_CI_START": str(started)}
    target = "tests/test_docs.py::test_code_block_parser_reads_directives_and_languages"
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", target],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = completed.stdout.strip().splitlines()
    assert completed.returncode == 0, completed.stdout[-3000:]
    assert re.fullmatch(r"1 passed in [\d.]+s( \(\d+:\d\d:\d\d\))?", lines[-1].strip("= ")), lines[-1]
    timing = [line for line in lines if line.startswith("README test command (bootstrap + pytest): ")]
    assert len(timing) == 1 and re.search(r": 1 min \d+ s on \d+ CPU cores", timing[0]), lines
    assert "DARTS_TIMESCLIP_CI_START=" in (REPO / ".ci" / "run").read_text()


def test_sphinx_roles_become_optional_links_of_the_site():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        from griffe_docstrings import markdown_docstring
    finally:
        sys.path.remove(str(REPO / "scripts"))
    text = ":meth:`Model.predictor <pkg.Model.predictor>`, :class:`~pkg.Config`, :meth:`fit` [1]_"
    assert markdown_docstring(text) == (
        '<autoref identifier="pkg.Model.predictor" optional><code>Model.predictor</code></autoref>, '
        '<autoref identifier="pkg.Config" optional><code>Config</code></autoref>, `fit` [1]'
    )
