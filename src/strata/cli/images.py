"""Image commands: images, tag, inspect, history, rmi, save, load, import, image prune, system df."""

from __future__ import annotations

import sys
import time

from strata import jsonfast
from strata.cli import output
from strata.cli.format import ellipsis, human_size, render_table, short_id, time_ago
from strata.compat.gotime import parse_time
from strata.errors import ImageNotFound, InvalidReference, StrataError
from strata.ops import images as ops
from strata.reference import parse_normalized_named, parse_tag_source, parse_tag_target

TYPE_CHECKING = False  # typing's costs a listing command
if TYPE_CHECKING:
    import argparse  # images, inspect and history are parsed without it (strata.cli.listing)
    from pathlib import Path
    from typing import Any

    from strata.cli.main import Context

__all__ = ["image_prune_events", "register", "register_df"]


def register(sub: Any) -> None:
    p = sub.add_parser("images", help="List images")
    _images_args(p)
    image = sub.add_parser("image", help="Manage images")
    isub = image.add_subparsers(dest="image_command", metavar="COMMAND", parser_class=type(image))
    _images_args(isub.add_parser("ls", aliases=["list"], help="List images"))

    for target in (sub, isub):
        t = target.add_parser("tag", help="Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
        t.add_argument("source")
        t.add_argument("target")
        t.set_defaults(func=cmd_tag)

        h = target.add_parser("history", help="Show the history of an image")
        h.add_argument("-H", "--human", default="true", nargs="?", const="true")
        h.add_argument("-q", "--quiet", action="store_true")
        h.add_argument("--no-trunc", action="store_true")
        h.add_argument("--format")
        h.add_argument("image")
        h.set_defaults(func=cmd_history)

        s = target.add_parser("save", help="Save one or more images to a tar archive")
        s.add_argument("-o", "--output")
        s.add_argument("images", nargs="+")
        s.set_defaults(func=cmd_save)

        lo = target.add_parser("load", help="Load an image from a tar archive or STDIN")
        lo.add_argument("-i", "--input")
        lo.add_argument("-q", "--quiet", action="store_true")
        lo.set_defaults(func=cmd_load)

        im = target.add_parser("import", help="Import the contents from a tarball to create a filesystem image")
        im.add_argument("-c", "--change", action="append", default=[])
        im.add_argument("-m", "--message", default="")
        im.add_argument("--platform")
        im.add_argument("source")
        im.add_argument("repository", nargs="?")
        im.set_defaults(func=cmd_import)

    r = sub.add_parser("rmi", help="Remove one or more images")
    _rmi_args(r)
    _rmi_args(isub.add_parser("rm", aliases=["remove"], help="Remove one or more images"))

    for target, kind in ((sub, ""), (isub, "image")):
        ins = target.add_parser("inspect", help="Return low-level information on images")
        ins.add_argument("-f", "--format")
        if not kind:
            ins.add_argument("--type", default="")
            ins.add_argument("-s", "--size", action="store_true", help="Display total file sizes if the type is container")
        ins.add_argument("names", nargs="+")
        ins.set_defaults(func=cmd_inspect, type=kind)

    pr = isub.add_parser("prune", help="Remove unused images")
    pr.add_argument("-a", "--all", action="store_true")
    pr.add_argument("-f", "--force", action="store_true")
    pr.add_argument("--filter", action="append", default=[])
    pr.set_defaults(func=cmd_prune)



def register_df(ssub: Any) -> None:
    """``system df`` in the ``system`` group (``strata.cli.system`` owns the group)."""
    df = ssub.add_parser("df", help="Show disk usage")
    df.add_argument("-v", "--verbose", action="store_true")
    df.add_argument("--format")
    df.set_defaults(func=cmd_df)


def _images_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("reference", nargs="?")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--digests", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.set_defaults(func=cmd_images)


def _rmi_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--no-prune", action="store_true")
    p.add_argument("images", nargs="+")
    p.set_defaults(func=cmd_rmi)


# --- images --------------------------------------------------------------------------------------


def cmd_images(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.engine()
    # the CLI's needDigest: --digests, or a --format naming {{.Digest}} literally
    digests = args.digests or "{{.Digest}}" in (args.format or "")
    rows = ops.image_rows(engine, all_images=args.all, reference=args.reference, filters=args.filter, digests=digests)
    trunc = not args.no_trunc
    now = time.time()
    items = [
        {
            "ID": short_id(str(r.id)) if trunc else str(r.id),
            "Repository": r.repository,
            "Tag": r.tag,
            "Digest": r.digest,
            "CreatedSince": time_ago(r.created, now) if r.created else "N/A",
            "CreatedAt": output.go_time(r.created),
            "Size": human_size(r.size),
            "VirtualSize": human_size(r.size, 4),
            "SharedSize": "N/A",
            "UniqueSize": "N/A",
            "Containers": "N/A",
        }
        for r in rows
    ]
    if args.quiet and args.format in (None, "", "table"):  # a --format of its own wins over -q
        ctx.out.write("".join(it["ID"] + "\n" for it in items))
        return 0
    if args.format:
        output.write_format(ctx, args.format, items, output.IMAGE_HEADERS, "*formatter.imageContext")
        return 0
    cols = ["Repository", "Tag"] + (["Digest"] if args.digests else []) + ["ID", "CreatedSince", "Size"]
    output.write_table(ctx, cols, items, output.IMAGE_HEADERS)
    return 0


# --- tag -----------------------------------------------------------------------------------------


def cmd_tag(args: argparse.Namespace, ctx: Context) -> int:
    parse_tag_source(args.source)
    target = parse_tag_target(args.target)
    engine = ctx.engine()
    image_id = engine.resolve_image(args.source)
    engine.tag(image_id, target)
    record_image(engine.root, "tag", str(image_id), target.familiar_string())
    return 0


# --- inspect -------------------------------------------------------------------------------------


INSPECT_TYPES = ("", "config", "container", "image", "network", "node", "plugin", "secret", "service", "task", "volume")


def _inspect_one(engine: Any, name: str, kind: str) -> tuple[str, dict[str, Any]] | None:
    """(the kind found, its document): the Docker CLI's inspect goes through containers, images, networks
    and volumes in that order (the swarm kinds have nothing here), or keeps to ``kind``."""
    if kind in ("", "container") and (doc := ops.inspect_container(engine, name)) is not None:
        return "container", doc
    if kind in ("", "image"):
        try:
            return "image", ops.inspect_doc(engine, engine.resolve_image(name))
        except (ImageNotFound, InvalidReference):
            pass
    if kind in ("", "network"):
        from strata.cli.network import inspect_doc as network_doc

        if (doc := network_doc(engine, name)) is not None:
            return "network", doc
    if kind in ("", "volume"):
        from strata.cli.volume import inspect_doc as volume_doc

        if (doc := volume_doc(engine, name)) is not None:
            return "volume", doc
    return None


def cmd_inspect(args: argparse.Namespace, ctx: Context) -> int:
    """Docker's inspect: each name in turn (errors collected, in order), ``--format`` rendered per element
    (an empty line when none rendered), otherwise one indented JSON list."""
    if args.type not in INSPECT_TYPES:
        raise StrataError(f'"{args.type}" is not a valid value for --type')
    form = output.inspect_format(args.format) if args.format else None
    engine = ctx.engine()
    docs: list[Any] = []
    errors: list[str] = []
    for name in args.names:
        found = _inspect_one(engine, name, args.type)
        if found is None:
            errors.append(f"Error: No such {args.type or 'object'}: {name}")  # the client's own words
            continue
        found_kind, doc = found
        if getattr(args, "size", False):
            if found_kind == "container":
                from strata.cli.containers import sized_inspect

                doc = sized_inspect(ctx, doc)
            else:  # the client's warning, on stderr, for each object -s cannot size
                ctx.err.write(f"WARNING: --size ignored for {found_kind}\n")
        if form is None:
            docs.append(doc)
            continue
        try:
            ctx.out.write(output.render_inspect(form, doc) + "\n")
            docs.append(doc)
        except StrataError as e:
            errors.append(str(e))
    if form is None:
        ctx.out.write(output.go_json_indent(docs) + "\n")
    elif not docs:
        ctx.out.write("\n")  # Docker's CLI prints an empty line when nothing rendered
    if errors:
        text = "\n".join(errors)
        raise StrataError(text.removeprefix("Error: "))  # main prints the first line's "Error: "
    return 0


# --- history -------------------------------------------------------------------------------------


def cmd_history(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.engine()
    rows = engine.history(engine.resolve_image(args.image))
    human = str(args.human).lower() not in ("false", "0")
    trunc = not args.no_trunc
    now = time.time()
    items = []
    for r in rows:
        ident = "<missing>" if r["id"] is None else (short_id(str(r["id"])) if trunc else str(r["id"]))
        created = parse_time(r["created"])
        created_by = r["created_by"].replace("\t", " ")
        items.append(
            {
                "ID": ident,
                "CreatedSince": (time_ago(created, now) if created else "N/A") if human else output.go_time(created, rfc=True),
                "CreatedAt": output.go_time(created, rfc=True),
                "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
                "Size": human_size(r["size"]) if human else str(r["size"]),
                "Comment": r["comment"],
            }
        )
    if args.quiet and args.format in (None, "", "table"):  # a --format of its own wins over -q
        ctx.out.write("".join(i["ID"] + "\n" for i in items))
        return 0
    if args.format:
        output.write_format(ctx, args.format, items, output.HISTORY_HEADERS, "*image.historyContext")
        return 0
    created_col = "CreatedSince" if human else "CreatedAt"  # Docker's -H=false column is CREATED AT
    output.write_table(ctx, ["ID", created_col, "CreatedBy", "Size", "Comment"], items, output.HISTORY_HEADERS)
    return 0


# --- rmi -----------------------------------------------------------------------------------------


def record_image(root: Path, action: str, actor: str, name: str | None = None) -> None:
    """``strata.events.record_image``, loaded only by the commands that act (not by a listing)."""
    from strata.events import record_image as record

    record(root, action, actor, name)


def _image_id(engine: Any, name: str) -> str:
    try:
        return str(engine.resolve_image(name))
    except StrataError:
        return ""


def cmd_rmi(args: argparse.Namespace, ctx: Context) -> int:
    """Docker's CLI: every argument is tried; errors are printed together at the end, and with ``-f``
    an image that does not exist is not a failure (exit 0)."""
    engine = ctx.engine()
    errors: list[str] = []
    fatal = False
    for name in args.images:
        try:
            if not name:
                raise ImageNotFound(name)
            images = {str(s.id) for s in engine.summaries()}
            image_id = _image_id(engine, name)
            result = engine.rmi(name, force=args.force, prune=not args.no_prune)
        except ImageNotFound:
            errors.append(f"No such image: {name}")  # the client's words for a 404: the name as given
            continue
        except StrataError as e:
            errors.append(str(e))
            fatal = True
            continue
        for kind, text in result.lines:
            ctx.out.write(f"{kind}: {text}\n")
            if kind == "Untagged":  # Docker's events: untag and delete name the image by its ID
                record_image(engine.root, "untag", image_id)
            elif text in images:
                record_image(engine.root, "delete", text)
    if errors:
        ctx.out.flush()
        ctx.err.write("".join(f"Error: {e}\n" for e in errors))
    return 1 if errors and (fatal or not args.force) else 0


# --- save / load / import ------------------------------------------------------------------------


def cmd_save(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.engine()
    if not args.output and ctx.out.isatty():
        raise StrataError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    if args.output:  # the CLI's ValidateOutputPath, before anything is looked up
        from strata.container.copypaths import validate_output_path

        try:
            validate_output_path(args.output)
        except StrataError as e:
            raise StrataError(f"failed to save image: {e}") from None
    selections = ops.save_selection(engine, args.images)
    if args.output:
        from strata.atomicfile import copy_to_file

        copy_to_file(args.output, lambda f: ops.save(engine, selections, f))  # Docker CLI's CopyToFile
    else:
        ctx.out.flush()
        ops.save(engine, selections, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    for image_id, _refs in selections:
        record_image(engine.root, "save", str(image_id))
    return 0


def cmd_load(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.engine()
    if args.input:
        try:
            stream: Any = open(args.input, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise StrataError(f"open {args.input}: no such file or directory") from None
    else:
        if ctx.stdin.isatty():
            raise StrataError("requested load from stdin, but stdin is empty")
        stream = sys.stdin.buffer
    with stream:
        for line in ops.load(engine, stream):
            ctx.out.write(line + "\n")
    return 0


def cmd_import(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.engine()
    tag = None
    if args.repository:
        try:
            named = parse_normalized_named(args.repository)
        except InvalidReference as e:
            raise InvalidReference(f"invalid reference format: {e}" if "invalid reference" not in str(e) else str(e)) from None
        if named.digest is not None:
            raise StrataError("cannot import digest reference")
        tag = named.tag_name_only()
    def say(line: str) -> None:
        ctx.out.write(line + "\n")
        ctx.out.flush()

    image_id = ops.import_rootfs(engine, args.source, tag=tag, changes=args.change, message=args.message,
                                 stdin=ctx.stdin, say=say)
    if tag is not None:
        record_image(engine.root, "tag", str(image_id), tag.familiar_string())
    record_image(engine.root, "import", str(image_id))
    ctx.out.write(f"{image_id}\n")
    return 0


# --- prune / df ----------------------------------------------------------------------------------


def cmd_prune(args: argparse.Namespace, ctx: Context) -> int:
    """Docker's CLI: the prompt is written whatever stdin is, only ``y`` goes on; the filters are the
    daemon's to refuse, after the prompt."""
    if not args.force:
        what = "all images without at least one container associated to them" if args.all else "all dangling images"
        ctx.out.write(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")
        ctx.out.flush()
        answer = ctx.stdin.readline() if ctx.stdin is not None else ""
        if answer.strip().lower() != "y":
            ctx.out.write("Total reclaimed space: 0B\n")
            return 0
    engine = ctx.engine()
    before = {str(s.id): [r.familiar_string() for r in s.refs] for s in engine.summaries()}
    lines, reclaimed = ops.prune(engine, all_images=args.all, filters=args.filter)
    image_prune_events(engine.root, before, lines, reclaimed)
    if lines:
        ctx.out.write("Deleted Images:\n")
        for kind, text in lines:
            ctx.out.write(f"{kind.lower()}: {text}\n")
        ctx.out.write("\n")
    ctx.out.write(f"Total reclaimed space: {human_size(reclaimed, 4)}\n")
    return 0


def image_prune_events(root: Path, before: dict[str, list[str]], lines: list[tuple[str, str]],
                       reclaimed: int | None) -> None:
    """Docker's events of an image prune: ``untag``/``delete`` of each image (by its ID), then ``prune``
    (``reclaimed`` None: the caller records that one, as ``system prune`` does)."""
    owner = {ref: image_id for image_id, refs in before.items() for ref in refs}
    for kind, text in lines:
        if kind == "Untagged" and text in owner:
            record_image(root, "untag", owner[text])
        elif kind == "Deleted" and text in before:
            record_image(root, "delete", text)
    if reclaimed is not None:
        from strata.events import record

        record(root, "image", "prune", "", {"reclaimed": str(reclaimed)})


def _df_verbose(ctx: Context) -> int:
    """``system df -v``: images (first tag only), containers, volumes, build cache, as Docker's CLI."""
    engine = ctx.engine()
    images, _ = ops.disk_images(engine)
    now = time.time()
    rows = []
    for i in images:
        tagged = [r for r in i.summary.refs if r.digest is None]
        repo, tag = (tagged[0].familiar, tagged[0].tag or "") if tagged else ("<none>", "<none>")
        rows.append([
            repo, tag, short_id(str(i.summary.id)), time_ago(i.created, now) if i.created else "N/A",
            human_size(i.summary.size, 4), human_size(i.shared, 4), human_size(i.summary.size - i.shared, 4),
            str(i.containers),
        ])
    out = ["Images space usage:\n\n"]
    out.append(render_table(
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"], rows
    ))
    out.append("\nContainers space usage:\n\n")
    out.append(render_table(
        ["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE", "CREATED", "STATUS", "NAMES"],
        _df_containers(engine.root, now),
    ))
    out.append("\nLocal Volumes space usage:\n\n")
    out.append(render_table(["VOLUME NAME", "LINKS", "SIZE"], _df_volumes(engine.root)))
    out.append("\nBuild cache usage: 0B\n\n")
    out.append(render_table(["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED", "USAGE", "SHARED"], []))
    ctx.out.write("".join(out))
    return 0


def _df_volumes(root: Path) -> list[list[str]]:
    """The volumes' rows of ``system df -v`` (those the daemon can size), by name."""
    from strata.container.volumes import volume_rows

    return [[name, str(links), human_size(size, 4)] for name, links, size in sorted(volume_rows(root))]


def _df_containers(root: Path, now: float) -> list[list[str]]:
    """The containers' rows of ``system df -v``."""
    from strata.cli.format import container_status, truncate
    from strata.container.changes import rw_size
    from strata.container.inspect import list_command
    from strata.container.lifecycle import reconcile
    from strata.container.records import ContainerStore, container_dir

    if not (root / "containers.db").exists():
        return []
    with ContainerStore(root) as store:
        containers = [reconcile(store, c) for c in store.all()]
    rows = []
    for c in sorted(containers, key=lambda c: c.created, reverse=True):
        status = container_status(
            running=c.state in ("running", "paused"), paused=c.state == "paused", dead=c.state == "dead",
            started_at=c.started_at or None, finished_at=c.finished_at or None, exit_code=c.exit_code,
        )
        rows.append([
            short_id(c.id), c.image_name, jsonfast.quote(truncate(list_command(c), 20)), "0",
            human_size(rw_size(container_dir(root, c.id), c.driver)), time_ago(c.created, now), status, c.name,
        ])
    return rows


def cmd_df(args: argparse.Namespace, ctx: Context) -> int:
    if args.verbose and args.format not in (None, "", "table"):  # Docker: the template over the whole usage
        from strata.cli.dfverbose import df_verbose_format

        return df_verbose_format(ctx, args.format)
    if args.verbose:
        return _df_verbose(ctx)
    engine = ctx.engine()
    rows = ops.disk_usage(engine)
    items = [
        {
            "Type": r["type"],
            "TotalCount": str(r["total"]),
            "Active": str(r["active"]),
            "Size": human_size(r["size"], 4),
            "Reclaimable": human_size(r["reclaimable"], 4)
            + (f" ({r['reclaimable'] * 100 // r['size']}%)" if r["size"] else ""),
        }
        for r in rows
    ]
    if args.format:
        output.write_format(ctx, args.format, items, output.DF_HEADERS, "*formatter.diskUsageImagesContext")
        return 0
    output.write_table(ctx, ["Type", "TotalCount", "Active", "Size", "Reclaimable"], items, output.DF_HEADERS)
    return 0
