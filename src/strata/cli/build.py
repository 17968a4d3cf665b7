"""``strata build``: the command line over ``strata.build.build`` (Docker's classic builder output)."""

from __future__ import annotations

import os
import sys

from strata.errors import StrataError

TYPE_CHECKING = False  # not typing's: a cached rebuild is mostly start-up (strata.cli.listing reads its words)
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from strata.cli.main import Context
    from strata.digest import Digest

__all__ = ["cmd_build", "register"]


def register(sub: Any) -> None:
    """Build's flags for argparse (help, Docker's errors); the same as its table in ``strata.cli.listing``."""
    p = sub.add_parser("build", help="Build an image from a Dockerfile")
    p.add_argument("-t", "--tag", action="append", default=[])
    p.add_argument("-f", "--file")
    p.add_argument("--build-arg", action="append", default=[])
    p.add_argument("--target")
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--pull", action="store_true")
    p.add_argument("--label", action="append", default=[])
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--iidfile")
    p.add_argument("--network", default="default")
    p.add_argument("--platform")
    p.add_argument("--secret", action="append", default=[])
    p.add_argument("--ssh", action="append", default=[])
    p.add_argument("--progress", default="auto")
    p.add_argument("--rm", default="true", nargs="?", const="true")
    p.add_argument("--force-rm", action="store_true")
    p.add_argument("path", metavar="PATH | URL | -")
    p.set_defaults(func=cmd_build)


def _build_args(raw: list[str]) -> dict[str, str | None]:
    """Docker's CLI: ``K=V``, or ``K`` taking the value of $K (no value when unset)."""
    out: dict[str, str | None] = {}
    for item in raw:
        key, sep, value = item.partition("=")
        out[key] = value if sep else os.environ.get(key)
    return out


def _puller(ctx: Context, quiet: bool) -> Any:
    def pull(name: str, platform: str | None) -> Digest:
        """The daemon's pull for the builder: no ``Using default tag`` nor reference line (the CLI's);
        without a terminal only the messages that name no layer, as Docker's build output shows."""
        from strata import api
        from strata.cli.distribution import ProgressPrinter

        printer = ProgressPrinter(ctx.out, quiet=quiet)
        shown = printer if printer.tty else lambda ev: None if ev.id else printer(ev)
        api.pull(name, platform=platform, all_tags=False, progress=shown, engine=ctx.engine())
        return ctx.engine().resolve_image(name)

    return pull


def _progress(args: argparse.Namespace, ctx: Context) -> Any:
    """``--progress``: ``tty`` the live view on stderr (BuildKit's), ``plain`` the classic lines;
    ``auto`` the view when stderr is a terminal."""
    from strata.build.progress import ClassicProgress, TtyProgress

    mode = args.progress
    if mode not in ("plain", "tty"):  # auto; an unknown mode too (the classic builder ignores the flag)
        mode = "tty" if not args.quiet and os.isatty(sys.stderr.fileno()) else "plain"
    if mode == "tty" and not args.quiet:
        return TtyProgress(ctx.err, sys.stderr.fileno())
    fds = (None, None) if args.quiet else (sys.stdout.fileno(), sys.stderr.fileno())
    return ClassicProgress(ctx.out, *fds, quiet=args.quiet, quiet_errors=sys.stderr.fileno() if args.quiet else None)


def _secrets(values: list[str]) -> dict[str, str]:
    if not values:  # a build without --secret never loads the mount machinery
        return {}
    from strata.build.mounts import parse_secrets

    return parse_secrets(values)


def _ssh(values: list[str]) -> dict[str, list[str]]:
    if not values:  # a build without --ssh never loads the forwarder
        return {}
    from strata.build.sshforward import parse_ssh

    return parse_ssh(values)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _load_builder() -> Any:
    """``strata.build`` imported with the cyclic collector off, what it loaded then frozen (kept out of
    every later collection): loading allocates many objects and frees few, so collecting meanwhile
    found nothing and cost a cached rebuild a tenth of its run."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        import strata.build
        import strata.build.schedule  # what every build runs
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
    return strata.build


def cmd_build(args: argparse.Namespace, ctx: Context) -> int:
    builder = _load_builder()
    BuildOptions, build = builder.BuildOptions, builder.build

    if args.network not in ("default", "none", "host", "bridge"):
        raise StrataError(f"network {args.network} not found")
    opts = BuildOptions(
        context=args.path, dockerfile=args.file, tags=list(args.tag), build_args=_build_args(args.build_arg),
        target=args.target, no_cache=args.no_cache, pull=args.pull,
        labels={k: v for k, _, v in (lbl.partition("=") for lbl in args.label)}, quiet=args.quiet,
        network=args.network, platform=args.platform, secrets=_secrets(args.secret), ssh=_ssh(args.ssh),
    )  # fmt: skip
    stdin = sys.stdin.buffer if "-" in (args.path, args.file) else None
    import _signal  # type: ignore[import-not-found]  # signal's C module (signal builds three enums at import)

    _signal.signal(_signal.SIGTERM, _interrupt)  # a terminated build cleans up as an interrupted one
    ctx.out.flush()
    result = build(ctx.engine(), opts, stdin=stdin, pull=_puller(ctx, args.quiet), progress=_progress(args, ctx))
    if args.iidfile:
        with open(args.iidfile, "w") as f:
            f.write(str(result.image_id))
    if args.quiet:
        ctx.out.write(f"{result.image_id}\n")
        return 0
    ctx.out.write(f"Successfully built {result.image_id.hex[:12]}\n")
    for tag in result.tags:
        ctx.out.write(f"Successfully tagged {tag}\n")
    return 0
