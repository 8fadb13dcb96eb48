"""MkDocs hooks of the documentation site (``mkdocs.yml``: ``hooks``).

- **Generated argument tables.** A line ``<!-- arguments-table: darts_timesclip.network.config.TimesCLIPConfig -->``
  in a page becomes the table of that config's public fields (:meth:`DocumentedConfig.parameters_markdown`), so a
  model's arguments are documented in one place, the config, and never restated by hand.
- **Repository files the pages link to.** A page may link a file outside ``docs/`` (``../benchmarks/README.md``,
  a results report) so that the link also works when the Markdown is read in the repository. Such files are added
  to the site under ``repository/`` (Markdown as pages, anything else as a static file), and every relative link is
  rewritten to the site's copy. A link to a file that exists nowhere is left as written, for ``mkdocs build
  --strict`` to reject.
"""

from __future__ import annotations

import importlib
import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

#: where repository files linked from the pages appear in the site
REPOSITORY_PREFIX = "repository"

_ARGUMENTS = re.compile(r"^<!--\s*arguments-table:\s*([\w.]+)\s*-->[ \t]*$", re.MULTILINE)
# an inline Markdown link or image target; titles (``(x "title")``) are not used in these pages
_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")
_FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1", re.MULTILINE | re.DOTALL)

_included: dict[Path, str] = {}  # repository file -> its path in the site (src_uri)


def _roots(config: Any) -> tuple[Path, Path]:
    docs = Path(config["docs_dir"]).resolve()
    return docs, Path(config.config_file_path).resolve().parent


def _relative_targets(markdown: str) -> list[str]:
    """Relative link targets of ``markdown`` (outside code blocks), without their ``#anchor``."""
    prose = _FENCE.sub("", markdown)
    targets = []
    for match in _LINK.finditer(prose):
        target = match.group(2).split("#", 1)[0]
        if target and "://" not in target and not target.startswith(("/", "mailto:")):
            targets.append(target)
    return targets


def on_files(files: Files, config: Any) -> Files:
    """Add the repository files that the pages (and the files so added) link to."""
    docs, repo = _roots(config)
    _included.clear()
    pending = [Path(f.abs_src_path) for f in files.documentation_pages() if f.abs_src_path]
    seen: set[Path] = set()
    while pending:
        source = pending.pop()
        if source in seen or source.suffix != ".md":
            continue
        seen.add(source)
        for target in _relative_targets(source.read_text(encoding="utf-8")):
            path = (source.parent / target).resolve()
            if path.is_relative_to(docs) or not path.is_file() or not path.is_relative_to(repo):
                continue  # a page of the site, a missing file (strict mode reports it) or outside the repository
            if path not in _included:
                src_uri = posixpath.join(REPOSITORY_PREFIX, path.relative_to(repo).as_posix())
                _included[path] = src_uri
                files.append(File.generated(config, src_uri, abs_src_path=str(path)))
                pending.append(path)
    return files


def _site_path(path: Path, docs: Path) -> str | None:
    if path.is_relative_to(docs):
        return path.relative_to(docs).as_posix()
    return _included.get(path)


def _rewrite_links(markdown: str, page_source: Path, page_uri: str, docs: Path) -> str:
    def rewrite(match: re.Match[str]) -> str:
        target, _, anchor = match.group(2).partition("#")
        if not target or "://" in target or target.startswith(("/", "mailto:")):
            return match.group(0)
        site_path = _site_path((page_source.parent / target).resolve(), docs)
        if site_path is None:
            return match.group(0)
        relative = posixpath.relpath(site_path, posixpath.dirname(page_uri) or ".")
        return f"{match.group(1)}{relative}{'#' + anchor if anchor else ''}{match.group(3)}"

    # code blocks keep their text: split them out, rewrite the prose between them
    pieces, last = [], 0
    for fence in _FENCE.finditer(markdown):
        pieces.append(_LINK.sub(rewrite, markdown[last : fence.start()]))
        pieces.append(fence.group(0))
        last = fence.end()
    pieces.append(_LINK.sub(rewrite, markdown[last:]))
    return "".join(pieces)


def arguments_table(dotted_name: str) -> str:
    """The Markdown table of the public fields of the config class ``dotted_name`` (``module.Class``)."""
    module, _, name = dotted_name.rpartition(".")
    return getattr(importlib.import_module(module), name).parameters_markdown()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Fill the argument tables and point relative links at the site's copies."""
    if not page.file.src_uri.endswith(".md"):  # a notebook (mkdocs-jupyter renders it)
        return markdown
    docs, _ = _roots(config)
    markdown = _ARGUMENTS.sub(lambda m: arguments_table(m.group(1)), markdown)
    source = Path(page.file.abs_src_path).resolve()
    return _rewrite_links(markdown, source, page.file.src_uri, docs)
