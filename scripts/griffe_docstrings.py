"""A griffe extension for the documentation site: the package's numpydoc docstrings, read as Markdown.

The docstrings follow numpydoc and use a few reStructuredText constructs that Markdown does not know: Sphinx roles
(``:class:`~darts_timesclip.TimesCLIPModel```), citations (``[1]_``) and their targets (``.. [1] ...``). mkdocstrings
renders docstrings as Markdown, so this extension rewrites those constructs before they are parsed: a role becomes a
cross-reference where the site documents its target (an optional autorefs link) and inline code otherwise; a
citation becomes ``[1]``. Configured in ``mkdocs.yml`` under the Python handler's ``extensions``.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|obj|exc|ref):`(~?)([^`]+)`")
_CITATION = re.compile(r"\[(\d+)\]_")
_CITATION_TARGET = re.compile(r"^(\s*)\.\. \[(\d+)\]", re.MULTILINE)


def _role(match: re.Match[str]) -> str:
    short, target = match.group(1) == "~", match.group(2)
    explicit = re.fullmatch(r"(.+?)\s*<([^<>]+)>", target)  # Sphinx's ``:meth:`title <target>```
    if explicit:
        title, target = explicit.groups()
    else:
        title = target.rsplit(".", 1)[-1] if short else target
    if "." not in target:  # a bare name (``:meth:`fit```): no identifier to resolve
        return f"`{title}`"
    # an optional autorefs link: a link where the site documents the target, plain code where it does not
    return f'<autoref identifier="{target}" optional><code>{title}</code></autoref>'


def markdown_docstring(text: str) -> str:
    """``text`` with its Sphinx roles and numbered citations rewritten as Markdown."""
    text = _ROLE.sub(_role, text)
    text = _CITATION.sub(r"[\1]", text)
    return _CITATION_TARGET.sub(r"\1[\2]", text)


class MarkdownDocstrings(griffe.Extension):
    """Rewrite every loaded docstring with :func:`markdown_docstring`."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
