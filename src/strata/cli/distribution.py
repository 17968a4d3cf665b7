"""Registry commands: ``login``, ``logout``, ``pull``, ``push``, ``search``, ``copy``, ``manifest inspect``.

Output lines, errors and exit codes follow Docker 20.10's CLI (see shared/reference/docker/). The work
is the library's (``strata.api``: pull, push, copy, login over the one copy engine); this module parses
the arguments, calls it and prints its progress events, line by line, or as live bars on a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from strata import api
from strata.compat.units import human_size
from strata.distribution.client import RegistryClient
from strata.distribution.credentials import erase_credentials, get_credentials, server_key
from strata.distribution.hosts import DOCKER_HUB, HostsConfig, normalize_host
from strata.distribution.search import filter_results, parse_filters, search, split_term
from strata.errors import ManifestUnknown, NameUnknown, NotFound, StrataError, UsageError
from strata.image.spec import load_json
from strata.reference import parse_normalized_named
from strata.transports.base import ProgressEvent

if TYPE_CHECKING:
    from strata.cli.main import Context

__all__ = ["ProgressPrinter", "register"]

_BAR_STATUSES = {"Downloading", "Pushing", "Extracting"}


# ------------------------------------------------------------------------------------ progress


class ProgressPrinter:
    """Prints ``ProgressEvent``s as Docker does: one line per status change without a terminal,
    live per-layer lines with progress bars on one."""

    def __init__(self, out: TextIO, *, tty: bool | None = None, quiet: bool = False) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.quiet = quiet
        self._lines: dict[str, int] = {}
        self._order: list[str] = []
        self._lock = threading.Lock()
        self._existed: set[str] = set()

    def __call__(self, ev: ProgressEvent) -> None:
        if self.quiet:
            return
        if not ev.id:
            self.message(ev.status)
            return
        with self._lock:
            if ev.status == "Already exists":
                self._existed.add(ev.id)
            elif ev.status == "Pull complete" and ev.id in self._existed:
                return  # Docker says nothing more about a layer it already had
            if self.tty:
                self._tty(ev)
            elif ev.status not in _BAR_STATUSES:
                self.out.write(f"{ev.id}: {ev.status}\n" if ev.id else f"{ev.status}\n")
                self.out.flush()

    def _render(self, ev: ProgressEvent) -> str:
        text = f"{ev.id}: {ev.status}"
        if ev.status in _BAR_STATUSES and ev.total > 0:
            width = 50
            filled = min(width, int(width * ev.current / ev.total))
            arrow = "=" * max(0, filled - 1) + (">" if filled else "")
            text += f" [{arrow:<{width}}]  {human_size(ev.current, 4)}/{human_size(ev.total, 4)}"
        return text

    def _tty(self, ev: ProgressEvent) -> None:
        if not ev.id:
            self.out.write(f"{ev.status}\n")
            self.out.flush()
            return
        line = self._render(ev)
        if ev.id not in self._lines:
            self._lines[ev.id] = len(self._order)
            self._order.append(ev.id)
            self.out.write(f"{line}\n")
        else:
            up = len(self._order) - self._lines[ev.id]
            self.out.write(f"\x1b[{up}A\r\x1b[2K{line}\r\x1b[{up}B")
        self.out.flush()

    def message(self, text: str) -> None:
        """A whole-operation line (``Digest: …``); ends the live block."""
        with self._lock:
            self._lines.clear()
            self._order.clear()
            self.out.write(text + "\n")
            self.out.flush()


# ------------------------------------------------------------------------------------ helpers


def _client(registry: str) -> RegistryClient:
    return RegistryClient(registry, get_credentials(registry), config=HostsConfig.load())


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C aborts every transfer at once (worker threads would otherwise finish their downloads
    before the interrupt gets out), then interrupts as usual: nothing is committed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: object) -> None:
        api.cancel_transfers()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# ------------------------------------------------------------------------------------ login / logout


def _read_password(args: argparse.Namespace, ctx: Context) -> str:
    if args.password_stdin:
        if args.password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        if not args.username:
            raise UsageError("Must provide --username with --password-stdin")
        return str(ctx.stdin.read()).rstrip("\r\n")
    if args.password:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", file=ctx.err)
        return str(args.password)
    return getpass.getpass("Password: ")


def cmd_login(args: argparse.Namespace, ctx: Context) -> int:
    server = normalize_host(args.server) if args.server else DOCKER_HUB
    username = args.username
    if not username:
        stored = get_credentials(server)
        if not args.password and not args.password_stdin and stored:
            # Docker reuses the stored login when called without credentials
            api.check_login(server, stored)
            print("Login Succeeded", file=ctx.out)
            return 0
        ctx.out.write(f"Username{f' ({stored.username})' if stored.username else ''}: ")
        ctx.out.flush()
        username = str(ctx.stdin.readline()).strip() or stored.username
    if not username:
        raise StrataError("Error: Non-null Username Required")
    password = _read_password(args, ctx)
    if not password:
        raise StrataError("Error: Password Required")
    result = api.login(server, username, password)
    if result.stored_in_plain_text:
        # Docker 20.10's client prints this on stderr (checked against Debian's docker.io), then a blank line
        print(
            f"WARNING! Your password will be stored unencrypted in {result.config_file}.\n"
            "Configure a credential helper to remove this warning. See\n"
            "https://docs.docker.com/engine/reference/commandline/login/#credentials-store\n",
            file=ctx.err,
        )
    print("Login Succeeded", file=ctx.out)
    return 0


def cmd_logout(args: argparse.Namespace, ctx: Context) -> int:
    server = normalize_host(args.server) if args.server else DOCKER_HUB
    shown = server_key(server)
    if not get_credentials(server) and not erase_credentials(server):
        print(f"Not logged in to {shown}", file=ctx.out)
        return 0
    print(f"Removing login credentials for {shown}", file=ctx.out)
    erase_credentials(server)
    return 0


# ------------------------------------------------------------------------------------ pull / push


def _default_tag(name: str, all_tags: bool, quiet: bool, ctx: Context) -> None:
    ref = parse_normalized_named(name)
    if all_tags and not ref.is_name_only:
        raise StrataError("tag can't be used with --all-tags/-a")  # the CLI's plain error: exit 1
    if ref.is_name_only and not all_tags and not quiet:
        print("Using default tag: latest", file=ctx.out)


def cmd_pull(args: argparse.Namespace, ctx: Context) -> int:
    _default_tag(args.name, args.all_tags, args.quiet, ctx)
    printer = ProgressPrinter(ctx.out, quiet=args.quiet)
    with _interruptible():
        result = api.pull(args.name, platform=args.platform, all_tags=args.all_tags, progress=printer, engine=ctx.engine())
    print(result.reference, file=ctx.out)
    return 0


def cmd_push(args: argparse.Namespace, ctx: Context) -> int:
    engine = ctx.engine()
    _default_tag(args.name, args.all_tags, args.quiet, ctx)
    printer = ProgressPrinter(ctx.out, quiet=args.quiet)
    with _interruptible():
        results = api.push(args.name, all_tags=args.all_tags, progress=printer, engine=engine)
    if args.quiet:
        for r in results:
            print(r.reference.string(), file=ctx.out)
    return 0


# ------------------------------------------------------------------------------------ search


def cmd_search(args: argparse.Namespace, ctx: Context) -> int:
    from strata.cli.format import ellipsis, render_table

    registry, term = split_term(args.term)
    filters = parse_filters(args.filter or [])
    with _client(registry) as client:
        results = search(client, term, args.limit)
    results = filter_results(results, filters)
    if args.format:
        from strata.gotemplate import Format

        fmt = Format(args.format)
        rows_data = [
            {
                "Name": r.name,
                "Description": r.description if args.no_trunc else ellipsis(r.description.replace("\n", " "), 45),
                "StarCount": r.star_count,
                "IsOfficial": r.is_official,
                "IsAutomated": r.is_automated,
            }
            for r in results
        ]
        headers = {"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS",
                   "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"}  # fmt: skip
        ctx.out.write(fmt.render(rows_data, headers, struct_name="searchContext"))
        return 0
    rows = []
    for r in results:
        desc = r.description.replace("\n", " ")
        if not args.no_trunc:
            desc = ellipsis(desc, 45)
        rows.append(
            [r.name, desc, str(r.star_count), "[OK]" if r.is_official else "", "[OK]" if r.is_automated else ""]
        )
    ctx.out.write(render_table(["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"], rows))
    return 0


# ------------------------------------------------------------------------------------ manifest


def cmd_manifest_inspect(args: argparse.Namespace, ctx: Context) -> int:
    ref = parse_normalized_named(args.name)
    if ref.is_name_only:
        ref = ref.with_tag("latest")
    reference = str(ref.digest) if ref.digest else (ref.tag or "latest")
    with _client(ref.domain) as client:
        try:
            res = client.get_manifest(ref.path, reference)
        except (ManifestUnknown, NameUnknown) as e:
            raise NotFound(f"no such manifest: {ref.string()}") from e
    doc = load_json(res.raw, "manifest")
    if args.verbose:
        doc = {
            "Ref": ref.string(),
            "Descriptor": {"mediaType": res.media_type, "digest": str(res.digest), "size": len(res.raw)},
            "Raw": doc,
        }
    ctx.out.write(json.dumps(doc, indent="\t") + "\n")
    return 0


# ------------------------------------------------------------------------------------ copy


def cmd_copy(args: argparse.Namespace, ctx: Context) -> int:
    printer = ProgressPrinter(ctx.out, quiet=args.quiet)
    with _interruptible():
        api.copy(args.src, args.dst, all_images=args.all, platform=args.platform, progress=printer, root=ctx.root)
    return 0


# ------------------------------------------------------------------------------------ register


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("login", help="Log in to a Docker registry")
    p.add_argument("server", nargs="?", metavar="SERVER")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(func=cmd_login)

    p = subparsers.add_parser("logout", help="Log out from a Docker registry")
    p.add_argument("server", nargs="?", metavar="SERVER")
    p.set_defaults(func=cmd_logout)

    p = subparsers.add_parser("pull", help="Pull an image or a repository from a registry")
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("-a", "--all-tags", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--platform")
    p.add_argument("--disable-content-trust", action="store_true", default=True)
    p.set_defaults(func=cmd_pull)

    p = subparsers.add_parser("push", help="Push an image or a repository to a registry")
    p.add_argument("name", metavar="NAME[:TAG]")
    p.add_argument("-a", "--all-tags", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--disable-content-trust", action="store_true", default=True)
    p.set_defaults(func=cmd_push)

    p = subparsers.add_parser("search", help="Search Docker Hub for images")
    p.add_argument("term", metavar="TERM")
    p.add_argument("--limit", type=int, default=25)
    p.add_argument("-f", "--filter", action="append")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("--format")
    p.set_defaults(func=cmd_search)

    p = subparsers.add_parser("copy", help="Copy an image between transports (docker://, docker-archive:, oci:, ...)")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dst", metavar="DST")
    p.add_argument("--all", action="store_true")
    p.add_argument("--platform")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_copy)

    p = subparsers.add_parser("manifest", help="Manage Docker image manifests and manifest lists")
    msub = p.add_subparsers(dest="manifest_command", metavar="COMMAND", parser_class=type(p))
    pi = msub.add_parser("inspect", help="Display an image manifest, or manifest list")
    pi.add_argument("name", metavar="NAME")
    pi.add_argument("-v", "--verbose", action="store_true")
    pi.add_argument("--insecure", action="store_true")
    pi.set_defaults(func=cmd_manifest_inspect)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
