"""Container commands that reach into a container: ``cp``, ``top``, ``rename`` and ``attach`` (also as
``container cp|top|rename|attach``), with Docker 20.10's arguments, output and errors."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from strata.errors import NotFound, StrataError

if TYPE_CHECKING:
    from strata.cli.main import Context
    from strata.container.records import ContainerStore

__all__ = ["register", "register_in_group"]

_CP_USAGE = """Usage:  strata cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
\tstrata cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH

Copy files/folders between a container and the local filesystem"""


def _store(ctx: Context) -> ContainerStore:
    from strata.container.records import ContainerStore

    return ContainerStore(ctx.engine().root)


def _arity(name: str, args: list[str], count: int, usage: str) -> None:
    if len(args) != count:
        word = "argument" if count == 1 else "arguments"
        raise StrataError(f'"strata {name}" requires exactly {count} {word}.\n'
                          f"See 'strata {name} --help'.\n\n{usage}")


def _split_cp_arg(arg: str) -> tuple[str, str]:
    """Docker's ``splitCpArg``: ``CTR:PATH``, unless the argument is a local path (absolute, or
    relative starting with ``.``)."""
    if arg.startswith("/"):
        return "", arg
    ctr, sep, path = arg.partition(":")
    if not sep or ctr.startswith("."):
        return "", arg
    return ctr, path


def _cmd_cp(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container.copy import copy_from_container, copy_to_container

    _arity("cp", args.paths, 2, _CP_USAGE)
    source, destination = args.paths
    if not source:
        raise StrataError("source can not be empty")
    if not destination:
        raise StrataError("destination can not be empty")
    src_ctr, src_path = _split_cp_arg(source)
    dst_ctr, dst_path = _split_cp_arg(destination)
    if src_ctr and dst_ctr:
        raise StrataError("copying between containers is not supported")
    if not src_ctr and not dst_ctr:
        raise StrataError("must specify at least one container source")
    ref = src_ctr or dst_ctr
    with _store(ctx) as store:
        try:
            c = store.get(ref)
        except NotFound:
            path = src_path if src_ctr else dst_path
            raise NotFound(f"No such container:path: {ref}:{path}") from None
        ctx.close()
        if src_ctr:
            ctx.out.flush()
            copy_from_container(store, c, ref, src_path, dst_path, follow_link=args.follow_link,
                                out=sys.stdout.buffer)
        else:
            copy_to_container(store, c, ref, src_path, dst_path, follow_link=args.follow_link,
                              copy_uid_gid=args.archive, stdin=sys.stdin.buffer)
    return 0


def _cmd_top(args: argparse.Namespace, ctx: Context) -> int:
    from strata.compat.tabwriter import tabwrite
    from strata.container import lifecycle as lc
    from strata.container.top import top

    with _store(ctx) as store:
        c = lc.reconcile(store, store.get(args.container))
        titles, processes = top(c, list(args.ps_args))
    lines = ["\t".join(titles), *("\t".join(p) for p in processes)]
    ctx.out.write(tabwrite("\n".join(lines) + "\n", minwidth=20, padding=3))
    return 0


def _cmd_rename(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container.rename import rename

    _arity("rename", args.names, 2, "Usage:  strata rename CONTAINER NEW_NAME\n\nRename a container")
    old, new = (n.strip() for n in args.names)
    if not old or not new:
        raise StrataError("Neither old nor new names may be empty")
    with _store(ctx) as store:
        try:
            rename(store, old, new)
        except StrataError as e:
            e.message = f"{e}\nError: failed to rename container named {old}"
            raise
    return 0


def _add(sub: Any, name: str, handler: Any, help_text: str, **kw: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text, **kw)
    p.set_defaults(func=handler)
    return p


def _register_commands(sub: Any) -> None:
    p = _add(sub, "cp", _cmd_cp, "Copy files/folders between a container and the local filesystem")
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true", help="Always follow symbol link in SRC_PATH")
    p.add_argument("paths", nargs="*", metavar="PATH")

    p = _add(sub, "top", _cmd_top, "Display the running processes of a container",
             usage="strata top CONTAINER [ps OPTIONS]")
    p.add_argument("container")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="ps OPTIONS")

    p = _add(sub, "rename", _cmd_rename, "Rename a container")
    p.add_argument("names", nargs="*", metavar="NAME")


def register(subparsers: Any) -> None:
    _register_commands(subparsers)


def register_in_group(group_subparsers: Any) -> None:
    """The same commands under ``strata container``."""
    _register_commands(group_subparsers)
