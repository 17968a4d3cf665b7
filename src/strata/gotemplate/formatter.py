"""Docker's ``--format`` handling: ``table`` and ``json`` forms, header rows, ``inspect`` fallbacks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from strata.compat.tabwriter import tabwrite
from strata.gotemplate.executor import Template
from strata.gotemplate.funcs import HEADER_FUNCTIONS
from strata.gotemplate.values import MISSING, Struct, TemplateError

__all__ = ["TABLE_KEY", "Format", "InspectFormat"]


TABLE_KEY = "table"


class Format:
    """A ``--format`` value of a list command (``images``, ``history``, ``ps``…), as Docker's
    formatter handles it: a ``table`` prefix gives a header row and tabwriter alignment, ``\\t`` and
    ``\\n`` written literally are escapes (``json`` alone is plain text, as in Docker 20.10).

    Parse and execution errors raise :class:`TemplateError` ``template parsing error: …`` (exit 1).
    """

    def __init__(self, format_string: str) -> None:
        self.raw = format_string
        self.is_table = format_string.startswith(TABLE_KEY)
        text = format_string
        if self.is_table:  # ("json" alone is text here: Docker 20.10 has no json shorthand, 23.0 added it)
            text = text[len(TABLE_KEY) :]
        text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
        self.text = text
        try:
            self.template = Template(text)
        except TemplateError as e:
            raise TemplateError(f"template parsing error: {e}") from None

    def render_row(self, row: Any, *, struct_name: str | None = None) -> str:
        """One row: the template's output and a newline."""
        data = Struct(struct_name, row) if struct_name is not None and isinstance(row, Mapping) else row
        try:
            return self.template.execute(data) + "\n"
        except TemplateError as e:
            raise TemplateError(f"template parsing error: {e}") from None

    def render(
        self,
        rows: Iterable[Any],
        headers: Mapping[str, Any] | None = None,
        *,
        struct_name: str | None = None,
    ) -> str:
        """All rows; for a table, the header line (the template run over ``headers``, field name →
        column title, with Docker's header functions) first and everything aligned.

        With ``struct_name``, mapping rows act as that Go struct: an unknown field is an error
        (``can't evaluate field Foo in type <struct_name>``) as with Docker's typed contexts.
        """
        body = "".join(self.render_row(row, struct_name=struct_name) for row in rows)
        if not self.is_table:
            return body
        return tabwrite(self.header(headers or {}) + "\n" + body)

    def header(self, headers: Mapping[str, Any]) -> str:
        """The header row; a callable among ``headers`` is a method of Docker's header context (``Label``)."""
        partial: list[str] = []
        data: Any = dict(headers)
        if any(callable(v) for v in data.values()):
            data = Struct("formatter.SubHeaderContext", data)
        try:
            return self.template.execute(data, funcs=HEADER_FUNCTIONS, partial=partial)
        except TemplateError:
            return "".join(partial)  # Docker ignores header errors, keeping what was written


class InspectFormat:
    """``inspect --format``: parse errors are ``template parsing error: …`` with exit code 64, an
    element that fails raises ``template parsing error: …`` (exit 1), as the Docker CLI (which also
    prints an empty line on stdout when no element rendered).

    Docker runs the template on the typed object and, when that fails, on the raw JSON map with
    ``missingkey=error``; pass ``raw`` (the decoded JSON) to get the same fallback.
    """

    def __init__(self, format_string: str) -> None:
        self.raw = format_string
        try:
            self.template = Template(format_string)
        except TemplateError as e:
            raise TemplateError(f"template parsing error: {e}", exit_code=64) from None

    def render(self, element: Any, raw: Any = MISSING) -> str:
        """The output for one element, newline included."""
        try:
            return self.template.execute(element) + "\n"
        except TemplateError as e:
            if raw is MISSING:
                raise TemplateError(f"template parsing error: {e}") from None
        try:
            return self.template.execute(raw, missing_key_error=True) + "\n"
        except TemplateError as e:
            raise TemplateError(f"template parsing error: {e}") from None
