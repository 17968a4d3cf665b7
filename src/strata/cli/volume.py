"""``volume`` commands: create, ls, inspect, rm, prune (Docker 20.10's local driver and output)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from strata.errors import StrataError

if TYPE_CHECKING:
    from strata.cli.main import Context
    from strata.container.records import ContainerStore
    from strata.container.volumes import Volume, VolumeStore

__all__ = ["inspect_doc", "prune_volumes", "register"]


def _stores(ctx: Context) -> tuple[VolumeStore, ContainerStore]:
    from strata.container.records import ContainerStore
    from strata.container.volumes import VolumeStore

    root = ctx.engine().root
    return VolumeStore(root), ContainerStore(root)


def _pairs(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _users(store: ContainerStore) -> dict[str, list[str]]:
    """Volume name -> IDs of the containers that mount it."""
    out: dict[str, list[str]] = {}
    for c in store.all():
        for p in c.mounts:
            if p.get("Name"):
                out.setdefault(p["Name"], []).append(c.id)
    return out


def _users_of(store: ContainerStore, name: str) -> Callable[[], list[str]]:
    """How to ask, under the volumes lock, which containers use ``name``."""
    return lambda: _users(store).get(name, [])


def _cmd_create(args: argparse.Namespace, ctx: Context) -> int:
    if args.name and args.name_flag and args.name != args.name_flag:
        raise StrataError('conflicting options: either specify --name or provide positional arg, not both')
    if args.driver != "local":
        name = args.name or args.name_flag or ""
        raise StrataError(f'create {name}: error looking up volume plugin {args.driver}: plugin "{args.driver}" '
                          "not found")
    vols, store = _stores(ctx)
    store.close()
    import secrets

    # no name: a random one, still a volume the user made (labels and options {}, not anonymous)
    vol = vols.create(args.name or args.name_flag or secrets.token_hex(32), _pairs(args.label), _pairs(args.opt))
    print(vol.name, file=ctx.out)
    return 0


_HEADERS = {"Driver": "DRIVER", "Name": "VOLUME NAME", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
            "Labels": "LABELS", "Links": "LINKS", "Size": "SIZE"}
_FILTERS = frozenset({"dangling", "name", "label", "driver"})


def _dangling(filters: dict[str, list[str]]) -> None:
    """The daemon's ``dangling`` filter: one of its values is ``true``/``1`` (unused volumes only) or
    ``false``/``0`` (used ones), exactly; refused otherwise, all values named, before anything is listed."""
    values = filters.get("dangling")
    if values is None:
        return
    if any(w in ("true", "1") for w in values):
        filters["dangling"] = ["true"]
    elif any(w in ("false", "0") for w in values):
        filters["dangling"] = ["false"]
    else:
        raise StrataError(f"Invalid filter 'dangling=[{' '.join(values)}]'")


def _matches(v: Volume, filters: dict[str, list[str]], used: dict[str, list[str]]) -> bool:
    checks: dict[str, Callable[[str], bool]] = {
        "dangling": lambda w: (w == "true") == (v.name not in used),
        "name": lambda w: w in v.name,
        "driver": lambda w: w == "local",
    }
    for key, wanted in filters.items():
        if key == "label":
            if not all(_label_match(v.labels or {}, w) for w in wanted):
                return False
        elif not any(checks[key](w) for w in wanted):
            return False
    return True


def _label_match(labels: dict[str, str], wanted: str) -> bool:
    key, eq, value = wanted.partition("=")
    return key in labels and (not eq or labels[key] == value)


def _row(v: Volume, used: dict[str, list[str]]) -> dict[str, Any]:
    labels = ",".join(f"{k}={val}" for k, val in sorted((v.labels or {}).items()))
    given = dict(v.labels or {})
    return {"Driver": "local", "Name": v.name, "Scope": "local", "Mountpoint": v.mountpoint, "Labels": labels,
            "Links": "N/A", "Size": "N/A", "Label": lambda name: str(given.get(name, ""))}


def _cmd_ls(args: argparse.Namespace, ctx: Context) -> int:
    from strata.cli.format import render_table
    from strata.compat.filters import parse_filters

    filters = parse_filters(args.filter, _FILTERS)
    _dangling(filters)
    vols, store = _stores(ctx)
    with store:
        used = _users(store)
    rows = [_row(v, used) for v in vols.all() if _matches(v, filters, used)]
    if args.quiet and args.format in (None, "", "table"):  # a --format of its own wins over -q
        for r in rows:
            print(r["Name"], file=ctx.out)
        return 0
    if args.format:
        from strata.cli.output import write_format

        headers = {**_HEADERS, "Label": lambda name: name.split(".")[-1].replace("-", " ").replace("_", " ")}
        write_format(ctx, args.format, rows, headers, "*formatter.volumeContext")
        return 0
    ctx.out.write(render_table(["DRIVER", "VOLUME NAME"], [[r["Driver"], r["Name"]] for r in rows]))
    return 0


def _cmd_inspect(args: argparse.Namespace, ctx: Context) -> int:
    from strata.cli.output import write_inspected

    vols, store = _stores(ctx)
    store.close()
    docs, errors = [], []
    for name in args.volumes:
        try:
            docs.append(vols.get(name).doc())
        except StrataError as e:
            errors.append(f"Error: {e}")
    write_inspected(ctx, docs, args.format)
    ctx.out.flush()  # Docker's CLI: what was found first, then the errors
    ctx.err.write("".join(f"{e}\n" for e in errors))
    return 1 if errors else 0


def inspect_doc(engine: Any, name: str) -> dict[str, Any] | None:
    """``inspect NAME``'s volume document (the generic inspect's last try), or None."""
    from strata.container.volumes import VolumeStore

    try:
        doc: dict[str, Any] = VolumeStore(engine.root).get(name).doc()
    except StrataError:
        return None
    return doc


def _cmd_rm(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container.volumes import VolumeNotFound

    vols, store = _stores(ctx)
    failed = False
    with store:
        for name in args.volumes:
            try:
                vols.remove(name, _users_of(store, name))
                print(name, file=ctx.out)
            except VolumeNotFound:
                if args.force:
                    print(name, file=ctx.out)
                    continue
                failed = True
                print(f"Error: No such volume: {name}", file=ctx.err)
            except StrataError as e:
                failed = True
                print(f"Error: {e}", file=ctx.err)
    return 1 if failed else 0


def _cmd_prune(args: argparse.Namespace, ctx: Context) -> int:
    from strata.compat.filters import parse_filters
    from strata.compat.units import human_size

    if not args.force:  # the CLI asks first; the daemon checks the filters only when asked to prune
        ctx.out.write("WARNING! This will remove all local volumes not used by at least one container.\n"
                      "Are you sure you want to continue? [y/N] ")
        ctx.out.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            print("Total reclaimed space: 0B", file=ctx.out)  # Docker's CLI prints it after a no too
            return 0
    filters = parse_filters(args.filter, frozenset({"label", "label!"}))
    vols, store = _stores(ctx)
    with store:
        removed, space = prune_volumes(vols, store, filters)
    if removed:
        ctx.out.write("Deleted Volumes:\n" + "".join(f"{n}\n" for n in removed) + "\n")
    print(f"Total reclaimed space: {human_size(space, 4)}", file=ctx.out)  # go-units HumanSize
    return 0


def prune_volumes(vols: VolumeStore, store: ContainerStore, filters: dict[str, list[str]]) -> tuple[list[str], int]:
    """Remove the volumes no container uses that ``filters`` match: their names and the space freed
    (``volume prune`` and ``system prune --volumes``)."""
    removed, space = [], 0
    with vols.locked():
        used = _users(store)
        for v in vols.all():
            if v.name in used or v.options or not _prune_match(v, filters):
                continue  # Docker 20.10 keeps a volume created with -o (a bind's or tmpfs' options)
            size = vols.size(v.name)
            try:
                vols.remove(v.name, [])
            except StrataError:
                continue
            removed.append(v.name)
            space += size
    return removed, space


def _prune_match(v: Volume, filters: dict[str, list[str]]) -> bool:
    labels = v.labels or {}
    if not all(_label_match(labels, w) for w in filters.get("label", ())):
        return False
    return not any(_label_match(labels, w) for w in filters.get("label!", ()))


def _add(sub: Any, name: str, handler: Any, text: str, **kw: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text, **kw)
    p.set_defaults(func=handler)
    return p


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("volume", help="Manage volumes", description="Manage volumes")
    sub = group.add_subparsers(dest="volume_command", metavar="COMMAND", parser_class=type(group))
    p = _add(sub, "create", _cmd_create, "Create a volume")
    p.add_argument("-d", "--driver", default="local")
    p.add_argument("--name", dest="name_flag")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-o", "--opt", action="append", default=[])
    p.add_argument("name", nargs="?")
    p = _add(sub, "ls", _cmd_ls, "List volumes", aliases=["list"])
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    p.add_argument("-q", "--quiet", action="store_true")
    p = _add(sub, "inspect", _cmd_inspect, "Display detailed information on one or more volumes")
    p.add_argument("-f", "--format")
    p.add_argument("volumes", nargs="+", metavar="VOLUME")
    p = _add(sub, "rm", _cmd_rm, "Remove one or more volumes", aliases=["remove"])
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("volumes", nargs="+", metavar="VOLUME")
    p = _add(sub, "prune", _cmd_prune, "Remove all unused local volumes")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--filter", action="append", default=[])
