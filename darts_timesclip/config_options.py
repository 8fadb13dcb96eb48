"""Documented config fields, shared by the package's configs (``TimesCLIPConfig``, ``VQTransformerConfig``).

A config is a frozen dataclass whose public fields are declared with :func:`option` (a default and a numpydoc
sentence). The model that wraps it takes those fields as keyword arguments (:meth:`DocumentedConfig.split_kwargs`)
and shows their documentation in its own docstring (:func:`document_parameters`), so that a new hyperparameter is
one new field and nothing else lists it.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])


def option(default: Any, doc: str, public: bool = True) -> Any:
    """A config field with its documentation (``public``: a keyword argument of the wrapping models)."""
    return field(default=default, metadata={"doc": doc, "public": public})


class DocumentedConfig:
    """Class methods over the :func:`option` fields of a dataclass config (a mixin; holds no state)."""

    @classmethod
    def public_parameters(cls) -> tuple[str, ...]:
        """Names of the fields that the wrapping models take as keyword arguments."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("public"))  # type: ignore[arg-type]

    @classmethod
    def split_kwargs(cls, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split a wrapper's ``**kwargs`` into config values and the rest."""
        public = set(cls.public_parameters())
        ours = {k: v for k, v in kwargs.items() if k in public}
        rest = {k: v for k, v in kwargs.items() if k not in public}
        return ours, rest

    @classmethod
    def _documented_fields(cls) -> list[tuple[dataclasses.Field, str]]:
        """The public fields with their documentation, which states the default (added where the doc does not)."""
        documented = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if f.metadata.get("public"):
                doc = f.metadata["doc"]
                documented.append((f, doc if "Default:" in doc else f"{doc} Default: ``{f.default!r}``."))
        return documented

    @classmethod
    def parameters_doc(cls, indent: int = 0) -> str:
        """The numpydoc ``Parameters`` entries of the public fields, with their defaults."""
        entries = []
        for f, doc in cls._documented_fields():
            body = textwrap.fill(
                doc, width=112, initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False
            )
            entries.append(f"{f.name}\n{body}")
        return textwrap.indent("\n".join(entries), " " * indent).lstrip()

    @classmethod
    def parameters_markdown(cls) -> str:
        """The public fields as a Markdown table (argument, type, documentation), for the documentation site."""
        rows = ["| argument | type | description |", "|---|---|---|"]
        for f, doc in cls._documented_fields():
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            kind = kind.replace(" | ", " or ")  # ``bool | None``: a pipe would end the table cell
            text = " ".join(doc.split()).replace("|", r"\|")
            rows.append(f"| `{f.name}` | {kind} | {text} |")
        return "\n".join(rows)


def document_parameters(replacements: Mapping[str, Callable[[], str]]) -> Callable[[_F], _F]:
    """A decorator that replaces each ``{marker}`` line of a docstring by a text, indented as that line.

    Parameters
    ----------
    replacements
        Marker (e.g. ``"{vq_parameters}"``) to a function returning its text (called at decoration time).
    """

    def decorate(func: _F) -> _F:
        if func.__doc__:
            for marker, text in replacements.items():
                line = next((line for line in func.__doc__.splitlines() if marker in line), None)
                if line is not None:
                    indent = len(line) - len(line.lstrip())
                    func.__doc__ = func.__doc__.replace(marker, textwrap.indent(text(), " " * indent).lstrip())
        return func

    return decorate
