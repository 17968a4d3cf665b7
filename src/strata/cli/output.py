"""Writing command results as Docker does: tables, ``--format`` templates, indented JSON, Go times."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from strata.cli.format import render_table
from strata.cli.main import Context

__all__ = [
    "DF_HEADERS",
    "HISTORY_HEADERS",
    "IMAGE_HEADERS",
    "go_json_indent",
    "go_time",
    "render_template",
    "write_format",
    "write_table",
]

IMAGE_HEADERS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "Size": "SIZE",
    "VirtualSize": "VIRTUAL SIZE",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "Containers": "CONTAINERS",
}
HISTORY_HEADERS = {
    "ID": "IMAGE",
    "CreatedSince": "CREATED",
    "CreatedAt": "CREATED AT",
    "CreatedBy": "CREATED BY",
    "Size": "SIZE",
    "Comment": "COMMENT",
}
DF_HEADERS = {
    "Type": "TYPE",
    "TotalCount": "TOTAL",
    "Active": "ACTIVE",
    "Size": "SIZE",
    "Reclaimable": "RECLAIMABLE",
}


def write_table(ctx: Context, cols: list[str], items: list[dict[str, Any]], headers: dict[str, str]) -> None:
    ctx.out.write(render_table([headers.get(c, c.upper()) for c in cols], [[str(i[c]) for c in cols] for i in items]))


def write_format(ctx: Context, fmt: str, items: list[dict[str, Any]], headers: dict[str, str]) -> None:
    from strata.cli.template import Format

    ctx.out.write(Format(fmt).render(items, headers))


def render_template(fmt: str, doc: Any) -> str:
    """``inspect --format`` output for one document, without its newline."""
    from strata.cli.template import InspectFormat

    return InspectFormat(fmt).render(doc, doc).rstrip("\n")


def _go_escape(text: str) -> str:
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def go_json_indent(obj: Any) -> str:
    """Go's json.MarshalIndent with four spaces (and its HTML escaping)."""
    return _go_escape(json.dumps(obj, indent=4, ensure_ascii=False))


def go_time(ts: float, rfc: bool = False) -> str:
    """Docker's CREATED AT: ``2026-11-27 17:22:02 +0000 UTC`` (or RFC 3339 for history -H=false)."""
    if not ts:
        return "0001-01-01 00:00:00 +0000 UTC"
    dt = datetime.fromtimestamp(ts, UTC)
    if rfc:
        return dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return dt.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")
