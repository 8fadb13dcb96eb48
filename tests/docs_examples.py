"""The code blocks of the README and the documentation pages: how they are found, marked and run.

A fenced block is ``python`` (executed), ``bash`` (run with ``bash -euo pipefail``) or ``text`` (printed output,
not run). An HTML comment on the line before a block changes how it is treated:

- ``<!-- excerpt: REASON -->``: not run, for the reason given (a GPU, hours of compute, an install, a server that
  runs until stopped); the reason is required.
- ``<!-- serve: MODEL_PATH -->`` (bash only): the test starts ``darts-timesclip serve MODEL_PATH`` on a free port
  of 127.0.0.1 (MODEL_PATH as an earlier block of the page wrote it) and runs the block with ``localhost:8000`` or
  ``127.0.0.1:8000`` pointed at it.

The blocks of one page run in order, as a reader would run them: the Python blocks share one namespace, and every
block runs in the page's own empty working directory, beside which ``../shared/data`` is the benchmark data. All
pages run in one process (``python tests/docs_examples.py PLAN.json RESULTS.json``), so the imports are paid once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import traceback
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LANGUAGES = {"python": "python", "bash": "bash", "text": "text"}
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$")
_DIRECTIVE = re.compile(r"^<!--\s*(?P<kind>excerpt|serve):\s*(?P<value>.*?)\s*-->$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    path: str  # relative to the repository
    line: int  # line of the opening fence, 1-based
    language: str
    code: str
    directive: str | None = None  # "excerpt" or "serve"
    value: str = ""  # the excerpt's reason, or the model path to serve

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in ("python", "bash") and self.directive != "excerpt"


def documentation_files() -> list[Path]:
    """The README and every Markdown page of ``docs/``."""
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def code_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of ``path``, with the directive of the comment line before each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, info = match["indent"], match["fence"], match["info"].strip()
        end = next(
            (j for j in range(i + 1, len(lines)) if lines[j].strip() == fence and lines[j].startswith(indent)), None
        )
        if end is None:
            raise ValueError(f"{path}:{i + 1}: the code block is not closed.")
        code = "\n".join(line[len(indent) :] for line in lines[i + 1 : end]) + "\n"
        previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        directive = _DIRECTIVE.match(previous)
        blocks.append(
            Block(
                path=path.relative_to(REPO).as_posix(),
                line=i + 1,
                language=info.split()[0] if info else "",
                code=code,
                directive=directive["kind"] if directive else None,
                value=directive["value"] if directive else "",
            )
        )
        i = end + 1
    return blocks


# ---------------------------------------------------------------------------------------------- running the blocks
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _service(model_path: str, cwd: Path, env: dict[str, str]) -> Iterator[int]:
    """``darts-timesclip serve model_path`` on a free port, until the block has run."""
    port = _free_port()
    command = [str(Path(sys.executable).parent / "darts-timesclip"), "serve", model_path, "--port", str(port)]
    log = (cwd / "service.log").open("w")
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600  # imports and loading the model: seconds, or minutes on a loaded machine
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the service did not start: {(cwd / 'service.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.5)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _run_bash(block: Block, cwd: Path, env: dict[str, str]) -> None:
    code = block.code
    with contextlib.ExitStack() as stack:
        if block.directive == "serve":
            port = stack.enter_context(_service(block.value, cwd, env))
            code = code.replace("localhost:8000", f"127.0.0.1:{port}").replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
        )
    if result.returncode:
        raise RuntimeError(f"exit status {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")


def run_plan(plan: dict) -> dict[str, dict]:
    """Run every page of ``plan`` (``{"root": DIR, "data": DIR, "pages": {path: [block, ...]}}``).

    Returns ``{block.where: {"ok": bool, "error": str, "seconds": float}}``; after a failing block the page's
    later blocks are not run (they would fail for its sake).
    """
    import matplotlib

    matplotlib.use("Agg")  # plots are drawn, never shown
    root = Path(plan["root"])
    (root / "shared").mkdir(parents=True, exist_ok=True)
    if plan["data"] and not (root / "shared" / "data").exists():
        (root / "shared" / "data").symlink_to(plan["data"], target_is_directory=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    results: dict[str, dict] = {}
    for page, blocks in plan["pages"].items():
        cwd = root / re.sub(r"[^\w.-]", "_", page)
        cwd.mkdir()
        namespace: dict = {"__name__": "__main__"}
        failed = False
        for data in blocks:
            block = Block(**data)
            if failed:
                results[block.where] = {"ok": False, "error": "not run: an earlier block of the page failed"}
                continue
            start = time.perf_counter()
            previous = Path.cwd()
            os.chdir(cwd)
            try:
                if block.language == "python":
                    exec(compile(block.code, block.where, "exec"), namespace)  # noqa: S102 - the documentation's code
                else:
                    _run_bash(block, cwd, env)
                results[block.where] = {"ok": True, "error": "", "seconds": time.perf_counter() - start}
            except BaseException:  # noqa: BLE001 - report every failure, SystemExit included
                failed = True
                results[block.where] = {"ok": False, "error": traceback.format_exc(), "seconds": 0.0}
            finally:
                outcome = "ok" if results[block.where]["ok"] else "FAILED"
                print(f"{block.where}: {outcome} in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
                os.chdir(previous)
                import matplotlib.pyplot as plt

                plt.close("all")
    return results


def plan_for(files: list[Path], root: Path, data: Path | None) -> dict:
    """The plan of :func:`run_plan` for the runnable blocks of ``files``."""
    pages = {}
    for path in files:
        blocks = [asdict(b) for b in code_blocks(path) if b.runs]
        if blocks:
            pages[path.relative_to(REPO).as_posix()] = blocks
    return {"root": str(root), "data": str(data) if data else "", "pages": pages}


if __name__ == "__main__":
    plan_file, results_file = sys.argv[1:3]
    outcome = run_plan(json.loads(Path(plan_file).read_text()))
    Path(results_file).write_text(json.dumps(outcome, indent=1))
