"""Container commands that reach into a container: ``cp``, ``top``, ``rename`` and ``attach`` (also as
``container cp|top|rename|attach``), with Docker 20.10's arguments, output and errors."""

from __future__ import annotations

import argparse
import os
import sys

from strata.errors import NotFound, StrataError

TYPE_CHECKING = False  # typing's costs ps a listing's start-up (cli.containers registers this group)

if TYPE_CHECKING:
    from typing import Any

    from strata.cli.main import Context
    from strata.container.records import Container, ContainerStore

__all__ = ["exec_detach_keys", "register", "register_in_group", "run_detachable"]

_CP_USAGE = """Usage:  strata cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
\tstrata cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH

Copy files/folders between a container and the local filesystem"""


def _bool(text: str) -> bool:
    value = text.lstrip("=").lower()
    if value in ("true", "1", "t"):
        return True
    if value in ("false", "0", "f"):
        return False
    raise argparse.ArgumentTypeError(f'invalid boolean value "{text}"')


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


def attach_streams(args: argparse.Namespace) -> set[str] | None:
    """``run -a``: the streams named (None: Docker's default), with Docker's errors."""
    if not args.attach:
        return None
    streams = set()
    for value in args.attach:
        if value.lower() not in ("stdin", "stdout", "stderr"):
            raise StrataError(f'invalid argument "{value}" for "-a, --attach" flag: valid streams are STDIN, '
                              "STDOUT and STDERR\nSee 'strata run --help'.", exit_code=125)
        streams.add(value.lower())
    if args.detach:
        raise StrataError("Conflicting options: -a and -d")
    return streams


# --- attach --------------------------------------------------------------------------------------


def _keys_text(flag: str | None) -> str:
    """``--detach-keys``, else the client config file's ``detachKeys`` ('' when neither is set)."""
    import json

    from strata.distribution.credentials import config_path

    if flag:
        return flag
    try:
        return str(json.loads(config_path().read_text()).get("detachKeys") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def detach_keys(ctx: Context, flag: str | None) -> bytes:
    """``--detach-keys``, else the client config file's ``detachKeys``, else Docker's ``ctrl-p,ctrl-q``; keys
    Docker cannot read are reported and the default is used, as Docker's CLI does."""
    from strata.container.attach import DEFAULT_DETACH_KEYS, parse_detach_keys

    text = _keys_text(flag)
    try:
        return parse_detach_keys(text or DEFAULT_DETACH_KEYS)
    except StrataError:
        print(f"Invalid detach keys ({text}) provided", file=ctx.err, flush=True)
        return parse_detach_keys(DEFAULT_DETACH_KEYS)


def exec_detach_keys(flag: str | None) -> bytes:
    """An exec's keys (the flag's, the config file's or the default): the daemon refuses keys it cannot
    read when the exec is created, whether or not a terminal is attached."""
    from strata.container.attach import DEFAULT_DETACH_KEYS, parse_detach_keys

    text = _keys_text(flag)
    try:
        return parse_detach_keys(text or DEFAULT_DETACH_KEYS)
    except StrataError:
        raise StrataError(f"Invalid escape keys ({text}) provided") from None


def _settle(store: ContainerStore, c: Container, code: int | None) -> int | None:
    """The exit code a session ended with; when the monitor went away without one, the record's."""
    from strata.container import lifecycle as lc

    if code is None or code >= 0:
        return code
    return lc.wait(store, c).exit_code


def run_detachable(ctx: Context, store: ContainerStore, c: Container, keys: bytes, *, sig_proxy: bool = False,
                   stdin: bool = True) -> int:
    """``run -it`` / ``start -ai`` (and ``run --sig-proxy=false``): the container starts under a detached
    monitor that this process is attached to from the start, so the detach keys leave it running (exit
    0, as Docker's), and so does this process' end."""
    import socket

    from strata.container import lifecycle as lc
    from strata.container.attach import attach_session

    ours, theirs = socket.socketpair()
    try:
        try:
            lc.start_detached(store, c, client=(theirs, ours), console_fd=1)
        finally:
            theirs.close()
        ctx.out.flush()
        code = attach_session(ours, stdin=0 if stdin else None, tty=bool(c.config.get("Tty")), keys=keys,
                              sig_proxy=sig_proxy, redraw=False)
    finally:
        ours.close()
    code = _settle(store, c, code)
    return 0 if code is None else code


def _attach_running(ctx: Context, store: ContainerStore, c: Container, keys: bytes, *, with_stdin: bool,
                    sig_proxy: bool, ref: str) -> int | None:
    """Relay the terminal to a running container's monitor: its exit code, or None when detached."""
    from strata.container.attach import attach_session, connect
    from strata.container.records import container_dir

    tty = bool(c.config.get("Tty"))
    sock = connect(container_dir(store.root, c.id))
    if sock is None:
        raise StrataError(f"cannot attach to container {ref}: it runs attached to another terminal (only "
                          "containers started detached, or with -it, can be attached to)")
    ctx.close()
    ctx.out.flush()
    with sock:
        code = attach_session(sock, stdin=0 if with_stdin else None, tty=tty, keys=keys, sig_proxy=sig_proxy)
    return _settle(store, c, code)


def reattach(ctx: Context, store: ContainerStore, c: Container, keys: bytes) -> int:
    """``start -ai`` of a container that already runs: attach to it (detaching exits 0)."""
    code = _attach_running(ctx, store, c, keys, with_stdin=True, sig_proxy=False, ref=c.name)
    return 0 if code is None else code


def _cmd_attach(args: argparse.Namespace, ctx: Context) -> int:
    from strata.container import lifecycle as lc
    from strata.errors import Conflict

    _arity("attach", args.container, 1, "Usage:  strata attach [OPTIONS] CONTAINER\n\n"
           "Attach local standard input, output, and error streams to a running container")
    with _store(ctx) as store:
        c = lc.reconcile(store, store.get(args.container[0]))
        if c.state == "paused":
            raise Conflict("You cannot attach to a paused container, unpause it first")
        if c.state == "restarting":
            raise Conflict("You cannot attach to a restarting container, wait until it is running")
        if c.state != "running":
            raise Conflict("You cannot attach to a stopped container, start it first")
        with_stdin = not args.no_stdin and bool(c.config.get("OpenStdin"))
        if with_stdin and c.config.get("Tty") and not os.isatty(0):
            raise StrataError("the input device is not a TTY")
        keys = detach_keys(ctx, args.detach_keys)
        code = _attach_running(ctx, store, c, keys, with_stdin=with_stdin, sig_proxy=args.sig_proxy,
                               ref=args.container[0])
    if code is None:
        print("read escape sequence", file=ctx.err, flush=True)
        return 1
    return code


def _add(sub: Any, name: str, handler: Any, help_text: str, **kw: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text, **kw)
    p.set_defaults(func=handler)
    return p


def _register_commands(sub: Any) -> None:
    p = _add(sub, "cp", _cmd_cp, "Copy files/folders between a container and the local filesystem",
             usage="strata cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
                   "\tstrata cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH")
    p.add_argument("-a", "--archive", action="store_true", help="Archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true", help="Always follow symbol link in SRC_PATH")
    p.add_argument("paths", nargs=2, metavar="PATH")  # cli.pflag: "requires exactly 2 arguments"

    p = _add(sub, "top", _cmd_top, "Display the running processes of a container",
             usage="strata top CONTAINER [ps OPTIONS]")
    p.add_argument("container")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="ps OPTIONS")

    p = _add(sub, "rename", _cmd_rename, "Rename a container", usage="strata rename CONTAINER NEW_NAME")
    p.add_argument("names", nargs=2, metavar="NAME")

    p = _add(sub, "attach", _cmd_attach,
             "Attach local standard input, output, and error streams to a running container",
             usage="strata attach [OPTIONS] CONTAINER")
    p.add_argument("--detach-keys", help="Override the key sequence for detaching a container")
    p.add_argument("--no-stdin", action="store_true", help="Do not attach STDIN")
    p.add_argument("--sig-proxy", type=_bool, nargs="?", const=True, default=True,
                   help="Proxy all received signals to the process (default true)")
    p.add_argument("container", nargs=1, metavar="CONTAINER")


def register(subparsers: Any) -> None:
    _register_commands(subparsers)


def register_in_group(group_subparsers: Any) -> None:
    """The same commands under ``strata container``."""
    _register_commands(group_subparsers)
