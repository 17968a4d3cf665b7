"""Writing command results as Docker does: tables, ``--format`` templates, indented JSON, Go times."""

from __future__ import annotations

from strata import jsonfast
from strata.cli.format import render_table

TYPE_CHECKING = False  # typing's costs a listing command
if TYPE_CHECKING:
    from typing import Any

    from strata.cli.main import Context

__all__ = [
    "DF_HEADERS",
    "HISTORY_HEADERS",
    "IMAGE_HEADERS",
    "go_json_indent",
    "go_time",
    "inspect_format",
    "render_inspect",
    "render_template",
    "with_nil_sizes",
    "write_format",
    "write_inspected",
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
    "VirtualSize": "SIZE",
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


def write_format(
    ctx: Context, fmt: str, items: list[dict[str, Any]], headers: dict[str, Any], struct_name: str | None = None
) -> None:
    """Rows through a ``--format`` template; with ``struct_name`` a row acts as Docker's typed context
    (an unknown field is an error naming that type) and ``{{json .}}`` lists its fields sorted by name,
    as the context's MarshalJSON does."""
    from strata.gotemplate import Format

    if struct_name is not None:
        items = [dict(sorted(i.items())) for i in items]
    ctx.out.write(Format(fmt).render(items, headers, struct_name=struct_name))


def render_template(fmt: str, doc: Any) -> str:
    """``inspect --format`` output for one document, without its newline."""
    return render_inspect(inspect_format(fmt), doc)


def with_nil_sizes(doc: Any) -> Any:
    """A container's document without ``-s`` as Docker's typed ``ContainerJSON``: ``SizeRw`` and
    ``SizeRootFs`` nil pointers (``<nil>`` in a template, left out of its JSON as ``omitempty``)."""
    if not (isinstance(doc, dict) and "GraphDriver" in doc and "State" in doc) or "SizeRw" in doc:
        return doc
    from strata.gotemplate.values import Nil

    return {**doc, "SizeRw": Nil("<nil>"), "SizeRootFs": Nil("<nil>")}


def write_inspected(ctx: Context, docs: list[Any], fmt: str | None) -> None:
    """``network|volume inspect`` output: each document through ``--format``, else all as indented JSON."""
    if fmt:
        for doc in docs:
            print(render_template(fmt, doc), file=ctx.out)
        if not docs:  # the CLI's TemplateInspector.Flush: an empty line when nothing was found
            print(file=ctx.out)
    else:
        print(go_json_indent(docs), file=ctx.out)


def inspect_format(fmt: str) -> Any:
    """The parsed ``inspect --format`` (a parse error is raised here, exit 64, before any lookup output)."""
    from strata.gotemplate import InspectFormat

    return InspectFormat(fmt)


def render_inspect(form: Any, doc: Any) -> str:
    """``inspect --format`` of a document the way Docker's CLI ends up running it on the raw JSON:
    ``missingkey=error`` (``map has no entry for key "Nope"``), nil slices and maps printing as Go's."""
    from strata.cli.inspecttypes import document_struct
    from strata.gotemplate import NIL_MAP, NIL_SLICE, TemplateError
    from strata.gotemplate.gojson import OmitEmpty

    def typed(value: Any, key: str = "") -> Any:
        if isinstance(value, OmitEmpty):
            return OmitEmpty({k: typed(v, k) for k, v in value.items()}, value.omitted)
        if isinstance(value, dict):
            return {k: typed(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [typed(v) for v in value]
        if value is None and key in _NIL_SLICES:
            return NIL_SLICE
        if value is None and key in _NIL_MAPS:
            return NIL_MAP
        return value

    raw = doc
    try:
        if isinstance(doc, dict):  # the document's own container.Config (never HostConfig.LogConfig.Config):
            # the struct has these fields even where its JSON omits them
            doc = {k: _with_omitted(v) if k in ("Config", "ContainerConfig") and isinstance(v, dict) else v
                   for k, v in doc.items()}
            if "Architecture" in doc and "Variant" not in doc:  # an image's: ImageInspect.Variant is omitempty
                doc = OmitEmpty({**doc, "Variant": ""}, frozenset({"Variant"}))
        structs = _container_structs(doc)
        if structs is not doc:
            try:  # Docker's CLI runs the typed struct first, then the raw JSON when that fails
                whole = document_struct(with_nil_sizes(typed(structs)))
                return str(form.template.execute(whole, missing_key_error=True))
            except TemplateError:
                doc = raw  # the raw JSON: no field its JSON leaves out
        text: str = form.template.execute(typed(doc), missing_key_error=True)  # no SizeRw: Docker's raw JSON
        return text  # the CLI writes the template's output as it is, then a newline
    except TemplateError as e:
        raise TemplateError(f"template parsing error: {e}") from None


def _container_structs(doc: Any) -> Any:
    """``doc`` with Docker's typed structs (a container's ContainerJSON, an image's ImageInspect, a
    network's NetworkResource) where a template sees them, else ``doc`` itself."""
    if not isinstance(doc, dict):
        return doc
    from strata.cli import inspecttypes

    if isinstance(doc.get("State"), dict) and isinstance(doc.get("HostConfig"), dict) and "GraphDriver" in doc:
        return inspecttypes.container_typed(doc)
    if "RootFS" in doc and "Architecture" in doc:
        return inspecttypes.image_typed(doc)
    if "IPAM" in doc and "Created" in doc:
        return inspecttypes.network_typed(doc)
    if "Mountpoint" in doc and "Scope" in doc:
        return inspecttypes.volume_typed(doc)
    return doc


_NIL_SLICES = frozenset({"Env", "Cmd", "Entrypoint", "OnBuild", "Shell", "RepoTags", "RepoDigests", "Layers"})
_NIL_MAPS = frozenset({"Labels", "Volumes", "ExposedPorts"})


def _with_omitted(config: dict[str, Any]) -> Any:
    """``config`` with container.Config's omitted fields there for templates only (not for ``json``)."""
    from strata.gotemplate.gojson import OmitEmpty

    extra = {k: v for k, v in _config_omitted().items() if k not in config}
    return OmitEmpty({**config, **extra}, frozenset(extra))


def _config_omitted() -> dict[str, Any]:
    """container.Config's omitempty fields as Go's zero values: a nil pointer prints ``<nil>``, JSON ``null``."""
    from strata.gotemplate import NIL_MAP, NIL_SLICE
    from strata.gotemplate.values import Nil

    return {"Healthcheck": Nil("<nil>"), "StopTimeout": Nil("<nil>"), "ExposedPorts": NIL_MAP, "Shell": NIL_SLICE,
            "ArgsEscaped": False, "NetworkDisabled": False, "MacAddress": "", "StopSignal": ""}


def go_json_indent(obj: Any) -> str:
    """The CLI's ``json.Indent`` (four spaces) of the daemon's JSON, which is written without HTML escaping."""
    return jsonfast.dumps_indented(obj)


def go_time(ts: float, rfc: bool = False) -> str:
    """Docker's CREATED AT: ``2026-11-27 17:22:02 +0000 UTC`` (or RFC 3339 for history -H=false)."""
    if not ts:
        return "0001-01-01 00:00:00 +0000 UTC"
    form = "%Y-%m-%dT%H:%M:%SZ" if rfc else "%Y-%m-%d %H:%M:%S +0000 UTC"
    second = _utc_second(ts)
    if not _FIRST_SECOND <= second <= _LAST_SECOND:  # beyond datetime's years 1-9999: its error
        from datetime import UTC, datetime

        return datetime.fromtimestamp(ts, UTC).strftime(form)
    import time

    return time.strftime(form, time.gmtime(second))


_FIRST_SECOND, _LAST_SECOND = -62135596800, 253402300799  # 0001-01-01T00:00:00Z, 9999-12-31T23:59:59Z


def _utc_second(ts: float) -> int:
    """The whole second of ``datetime.fromtimestamp(ts, UTC)`` (datetime is not imported: a listing
    command needs none): the fraction rounded half to even to microseconds first, as datetime does."""
    whole = int(ts)
    micro = round((ts - whole) * 1e6)  # ts - whole is exact: both lie within a factor of two
    if micro >= 1_000_000:
        whole += 1
    elif micro < 0:
        whole -= 1
    return whole
