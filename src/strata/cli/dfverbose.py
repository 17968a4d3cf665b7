"""``system df -v --format`` as Docker 20.10's CLI runs it: one template over the whole disk usage (its
``*formatter.diskUsageContext``), not a row per type as ``system df --format`` (``strata.cli.images``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from strata.errors import StrataError

if TYPE_CHECKING:
    from pathlib import Path

    from strata.cli.main import Context

__all__ = ["df_verbose_format"]


def df_verbose_format(ctx: Context, fmt: str) -> int:
    """``system df -v --format`` (any but ``table``) as Docker 20.10's CLI: the template runs once over its
    ``*formatter.diskUsageContext`` (``Images``, ``Containers``, ``Volumes``, ``BuildCache``: slices of
    pointers to the list commands' contexts, full IDs unless the format starts with ``table``); no newline
    after it; an execution error after what it wrote."""
    from strata.gotemplate import Pointer, Struct, Template, TemplateError

    text = (fmt[len("table"):] if fmt.startswith("table") else fmt).strip(" ")
    try:
        template = Template(text.replace("\\t", "\t").replace("\\n", "\n"))
    except TemplateError as e:
        raise StrataError(f"template parsing error: {e}") from None
    engine = ctx.engine()
    trunc = fmt.startswith("table")
    parts = {"Images": ("*formatter.imageContext", _df_images(engine, trunc)),
             "Containers": ("*formatter.ContainerContext", _df_containers(engine.root, trunc)),
             "Volumes": ("*formatter.volumeContext", _df_volumes(engine.root)), "BuildCache": ("", [])}
    fields = {key: [Pointer(Struct(name, dict(sorted(row.items())))) for row in rows]
              for key, (name, rows) in parts.items()}
    partial: list[str] = []
    try:
        ctx.out.write(template.execute(Struct("*formatter.diskUsageContext", fields, marshal=fields),
                                       partial=partial))
    except TemplateError as e:
        ctx.out.write("".join(partial))
        ctx.out.flush()
        raise StrataError(str(e)) from None
    return 0


def _df_images(engine: Any, trunc: bool) -> list[dict[str, Any]]:
    from strata.cli.format import human_size, short_id, time_ago
    from strata.cli.output import go_time
    from strata.ops.images import disk_images

    images, _ = disk_images(engine)
    rows = []
    for i in images:
        tagged = [r for r in i.summary.refs if r.digest is None]
        repo, tag = (tagged[0].familiar, tagged[0].tag or "") if tagged else ("<none>", "<none>")
        rows.append({
            "ID": short_id(str(i.summary.id)) if trunc else str(i.summary.id), "Repository": repo, "Tag": tag,
            "Digest": "", "CreatedSince": time_ago(i.created) if i.created else "N/A",
            "CreatedAt": go_time(i.created), "Size": human_size(i.summary.size),
            "VirtualSize": human_size(i.summary.size, 4), "SharedSize": human_size(i.shared, 4),
            "UniqueSize": human_size(i.summary.size - i.shared, 4), "Containers": str(i.containers),
        })
    return rows


def _df_containers(root: Path, trunc: bool) -> list[dict[str, Any]]:
    from strata.cli.containers import _ps_fields
    from strata.cli.format import human_size
    from strata.container.changes import rw_size
    from strata.container.lifecycle import reconcile
    from strata.container.links import link_names
    from strata.container.records import ContainerStore, container_dir

    if not (root / "containers.db").exists():
        return []
    with ContainerStore(root) as store:
        containers = [reconcile(store, c) for c in store.all()]
    linked = {} if trunc else link_names(containers)  # untruncated Names: the links' names too
    rows = []
    for c in sorted(containers, key=lambda c: c.created, reverse=True):
        row = {**_ps_fields(c, trunc), "Size": human_size(rw_size(container_dir(root, c.id), c.driver))}
        if c.name in linked:
            row["Names"] = ",".join(sorted([c.name, *linked[c.name]]))
        rows.append(row)
    return rows


def _df_volumes(root: Path) -> list[dict[str, Any]]:
    from strata.cli.format import human_size
    from strata.container.volumes import VolumeStore, volume_rows

    rows = {name: (links, size) for name, links, size in volume_rows(root)}
    if not rows:
        return []
    out = []
    for v in sorted(VolumeStore(root).all(), key=lambda v: v.name):
        if v.name in rows:
            given = dict(v.labels or {})
            out.append({"Driver": "local", "Name": v.name, "Scope": "local", "Mountpoint": v.mountpoint,
                        "Labels": ",".join(f"{k}={val}" for k, val in sorted(given.items())),
                        "Links": str(rows[v.name][0]), "Size": human_size(rows[v.name][1], 4),
                        "Label": lambda name, given=given: str(given.get(name, ""))})
    return out
