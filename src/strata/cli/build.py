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
    import argparse
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
    hidden = argparse.SUPPRESS  # BuildKit's flags: the classic builder's help does not show them
    p.add_argument("--platform", help=hidden)
    p.add_argument("--secret", action="append", default=[], help=hidden)
    p.add_argument("--ssh", action="append", default=[], help=hidden)
    p.add_argument("--progress", default="auto", help=hidden)
    p.add_argument("-o", "--output", action="append", default=[], help=hidden)  # the classic builder ignores it
    p.add_argument("--stream", action="store_true", help=hidden)
    p.add_argument("--rm", default="true", nargs="?", const="true")
    p.add_argument("--force-rm", action="store_true")
    for flag in ("--add-host", "--cache-from", "--security-opt", "--ulimit"):
        p.add_argument(flag, action="append", default=[])
    for flag in ("--cgroup-parent", "--cpu-period", "--cpu-quota", "--cpuset-cpus", "--cpuset-mems", "--isolation",
                 "--memory-swap", "--shm-size"):
        p.add_argument(flag)
    p.add_argument("-c", "--cpu-shares")
    p.add_argument("-m", "--memory")
    p.add_argument("--compress", action="store_true")
    p.add_argument("--disable-content-trust", default="true", nargs="?", const="true")
    p.add_argument("--squash", nargs="?", const="true", help=hidden)  # shown by an experimental daemon only
    p.add_argument("path", metavar="PATH | URL | -")
    p.set_defaults(func=cmd_build)


_STREAM_GONE = """DEPRECATED: The experimental --stream flag has been removed and the build context
            will be sent non-streaming. Enable BuildKit instead with DOCKER_BUILDKIT=1
            to stream build context, see https://docs.docker.com/go/buildkit/

"""


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
    progress = ClassicProgress(ctx.out, *fds, quiet=args.quiet, quiet_errors=sys.stderr.fileno() if args.quiet else None)
    progress.stderr_on_stdout = True  # as Docker's CLI shows a step's stderr
    return progress


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


def _flag_error(flag: str, value: str, why: str) -> StrataError:
    return StrataError(f'invalid argument "{value}" for "{flag}" flag: {why}\nSee \'strata build --help\'.',
                       exit_code=125)


def _parsed(flag: str, value: str | None, parse: Any) -> Any:
    """A flag's value as Docker's CLI parses it (None: not given), its error for a bad one."""
    if value is None:
        return None
    try:
        return parse(value)
    except ValueError as e:
        raise _flag_error(flag, value, str(e)) from None


def _check_add_host(value: str) -> None:
    """Docker's ValidateExtraHost: ``host:ip``."""
    from strata.cli.containers import _is_ip  # the address check ``run --add-host`` makes

    host, colon, addr = value.partition(":")
    if not colon or not host:
        raise _flag_error("--add-host", value, f'bad format for add-host: "{value}"')
    if not _is_ip(addr):
        raise _flag_error("--add-host", value, f'invalid IP address in add-host: "{addr}"')


_HOST_FLAGS = ("add_host", "ulimit", "cgroup_parent", "cpu_period", "cpu_quota", "cpuset_cpus", "cpuset_mems",
               "memory", "memory_swap", "shm_size", "cpu_shares")


def _step_host(args: argparse.Namespace) -> Any:
    """The step containers' flags, checked as Docker's CLI checks them (None: none given, nothing loaded)."""
    if not any(getattr(args, name) for name in _HOST_FLAGS):
        return None
    from strata.build.hostopts import StepHost
    from strata.container.resources import parse_int64, parse_ram, parse_ulimit

    for value in args.add_host:
        _check_add_host(value)
    for value in args.ulimit:
        _parsed("--ulimit", value, parse_ulimit)
    shares, period, quota = (_parsed(flag, getattr(args, name), parse_int64) or 0
                             for name, flag in (("cpu_shares", "-c, --cpu-shares"), ("cpu_period", "--cpu-period"),
                                                ("cpu_quota", "--cpu-quota")))
    swap = _parsed("--memory-swap", args.memory_swap, lambda v: -1 if v == "-1" else parse_ram(v)) or 0
    host = StepHost(memory=_parsed("-m, --memory", args.memory, parse_ram) or 0, memory_swap=swap,
                    shm_size=_parsed("--shm-size", args.shm_size, parse_ram) or 0, ulimits=_by_name(args.ulimit),
                    cpuset_cpus=args.cpuset_cpus or "", cpuset_mems=args.cpuset_mems or "",
                    cgroup_parent=args.cgroup_parent or "", add_hosts=list(args.add_host), cpu_shares=shares,
                    cpu_period=period, cpu_quota=quota)
    host.warnings = _rootless_warnings(host.limits())
    return host


def _by_name(ulimits: list[str]) -> list[str]:
    """Docker's UlimitOpt: one per name, the last given."""
    return list({u.partition("=")[0]: u for u in ulimits}.values())


def _rootless_warnings(limits: dict[str, Any]) -> list[str]:
    """The daemon's warnings for the limits a rootless step container runs without (none as root)."""
    from strata.rootless.mode import in_user_namespace

    if not in_user_namespace():
        return []
    from strata.rootless.cgroups import discarded_limits

    return discarded_limits(limits)


def _csv(values: list[str]) -> list[str]:
    """A pflag ``strings`` flag: each value a CSV record (``--cache-from a,b``)."""
    if not any("," in v or '"' in v for v in values):
        return [v for v in values if v]
    import csv

    return [item for v in values if v for row in csv.reader([v]) for item in row]


class _Terminated(KeyboardInterrupt):
    """SIGTERM: the build cleans up as an interrupted one, then strata dies of the signal (as Docker's CLI)."""


def _interrupt(signum: int, frame: Any) -> None:
    raise _Terminated


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

    if args.squash is not None:  # the CLI's check of the daemon (given at all, =false too)
        raise StrataError('"--squash" is only supported on a Docker daemon with experimental features enabled')
    if args.stream:  # Docker 20.10's CLI, before it sends the context
        ctx.err.write(_STREAM_GONE)
        ctx.err.flush()
    _check_words(args)
    opts = BuildOptions(
        context=args.path, dockerfile=args.file, tags=list(args.tag), build_args=_build_args(args.build_arg),
        target=args.target, no_cache=args.no_cache, pull=args.pull,
        labels={k: v for k, _, v in (lbl.partition("=") for lbl in args.label)}, quiet=args.quiet,
        network=args.network, platform=args.platform, secrets=_secrets(args.secret), ssh=_ssh(args.ssh),
        host=_step_host(args), cache_from=_csv(args.cache_from), security_opt=_csv(args.security_opt),
        isolation=args.isolation or "", compress=args.compress,
    )  # fmt: skip
    stdin = sys.stdin.buffer if "-" in (args.path, args.file) else None
    import _signal  # type: ignore[import-not-found]  # signal's C module (signal builds three enums at import)

    _signal.signal(_signal.SIGTERM, _interrupt)  # a terminated build cleans up as an interrupted one
    ctx.out.flush()
    try:
        result = build(ctx.engine(), opts, stdin=stdin, pull=_puller(ctx, args.quiet), progress=_progress(args, ctx))
    except _Terminated:
        ctx.out.flush()
        _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
        os.kill(os.getpid(), _signal.SIGTERM)
        raise  # (not reached)
    except StrataError as e:
        from strata.build.state import BuildError

        if not isinstance(e, BuildError):  # the daemon's error in the build's stream: the CLI exits 1
            e.exit_code = 1  # (a step container's user not found is 125 for ``run``)
        raise
    if args.quiet:
        ctx.out.write(f"{result.image_id}\n")
    else:
        ctx.out.write(f"Successfully built {result.image_id.hex[:12]}\n")
        for tag in result.tags:
            ctx.out.write(f"Successfully tagged {tag}\n")
    if args.iidfile:  # after the daemon's lines, as Docker's CLI writes it
        ctx.out.flush()
        _write_iidfile(args.iidfile, str(result.image_id))
    return 0


def _go_os_error(op: str, path: str, e: OSError) -> StrataError:
    """Go's ``*PathError`` text: ``open PATH: no such file or directory``."""
    text = e.strerror or str(e)
    return StrataError(f"{op} {path}: {text[:1].lower()}{text[1:]}")


def _remove_iidfile(path: str) -> None:
    """Docker's CLI removes an old ID file first (a failed build leaves none)."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise StrataError(f"Removing image ID file: {_go_os_error('remove', path, e)}") from None


def _write_iidfile(path: str, image_id: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(image_id)
    except OSError as e:
        raise _go_os_error("open", path, e) from None


def _check_words(args: argparse.Namespace) -> None:
    """What Docker's CLI checks of build's words before it sends anything: each ``-t`` a reference
    (its vendored parser's words), each ``--build-arg`` a variable with a name; an old ``--iidfile`` removed."""
    if args.tag:
        from strata.errors import InvalidReference
        from strata.reference import ERR_UPPERCASE, parse_normalized_named

        for tag in args.tag:
            try:
                parse_normalized_named(tag)
            except InvalidReference as e:
                raise _flag_error("-t, --tag", tag, ERR_UPPERCASE if "must be lowercase" in str(e) else str(e)) from None
    for item in args.build_arg:
        if item.partition("=")[0] == "":
            raise _flag_error("--build-arg", item, f"invalid environment variable: {item}")
    if args.iidfile:
        _remove_iidfile(args.iidfile)
