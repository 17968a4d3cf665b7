"""``build(engine, options)``: a Dockerfile and its context to an image in the local store."""

from __future__ import annotations

import os
import sys

from strata.build.builder import Builder, Puller
from strata.build.context import BuildContext
from strata.build.platforms import check_platform, target_image
from strata.build.progress import ClassicProgress, Progress
from strata.build.sendsize import downloading_line, sending_line
from strata.build.state import BuildOptions
from strata.build.steps import Runner
from strata.build.summemo import SumMemo
from strata.build.watchdog import reap_orphans
from strata.container.records import ContainerStore
from strata.digest import Digest
from strata.dockerfile import parse
from strata.errors import StrataError
from strata.reference import parse_tag_target
from strata.store.root import plain_path

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import IO, Any, TextIO

    from strata.engine import Engine

__all__ = ["BuildResult", "build"]


class BuildResult:
    def __init__(self, image_id: Digest, tags: list[str]) -> None:
        self.image_id = image_id
        self.tags = tags


def _open_context(
    engine: Engine, opts: BuildOptions, stdin: IO[bytes] | None
) -> tuple[BuildContext, str | None]:
    """The context and the Dockerfile's name inside it (None when it comes from elsewhere)."""
    if opts.context == "-":
        if stdin is None:
            raise StrataError("no build context on stdin")
        if opts.dockerfile == "-":
            raise StrataError("invalid argument: can't use stdin for both build context and dockerfile")
        return _stdin_context(engine, opts, stdin)
    if opts.context.startswith(("http://", "https://")):  # read as the CLI reads stdin (``stdin``: the body)
        return _stdin_context(engine, opts, stdin)
    root = plain_path(opts.context)  # str paths, written as pathlib writes them: a cached rebuild loads no pathlib
    inside, found = _dockerfile_inside(root, opts.dockerfile)
    ctx = BuildContext.from_dir(root, inside)
    ctx.memo = SumMemo.for_context(engine.root_dir, root)
    return ctx, found


def _stdin_context(engine: Engine, opts: BuildOptions, stdin: Any) -> tuple[BuildContext, str | None]:
    """``build -``: a context tar, or a Dockerfile alone (then the context holds only it; ``-f`` unused)."""
    import io

    from strata.build.sendsize import HEAD_SIZE, is_archive, stdin_dockerfile

    head = b""
    while len(head) < HEAD_SIZE and (chunk := stdin.read(HEAD_SIZE - len(head))):
        head += chunk
    if not is_archive(head):
        tar, size = stdin_dockerfile(head + stdin.read())
        if isinstance(stdin, _Counting):  # what the CLI sends: the tar it made
            stdin.count = size
            if stdin.gzipped is not None:
                stdin.gzipped = _Made(tar)
        return BuildContext.from_tar(io.BytesIO(tar), engine.store.tmp, "Dockerfile"), "Dockerfile"
    name = opts.dockerfile or "Dockerfile"
    return BuildContext.from_tar(_Prefixed(head, stdin), engine.store.tmp, name), name


class _Made:
    """The ``--compress`` size of a context the CLI made (a Dockerfile from stdin)."""

    def __init__(self, tar: bytes) -> None:
        self.tar = tar

    def size(self) -> int:
        from strata.compat.goflate import gzip_size

        return gzip_size([self.tar])


class _Prefixed:
    """A stream whose first bytes were read already (stdin's head, looked at)."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self.head, self.rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if not self.head:
            return bytes(self.rest.read(n))
        if n < 0:
            data, self.head = self.head + bytes(self.rest.read()), b""
            return data
        data, self.head = self.head[:n], self.head[n:]
        return data

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)


def _absolute(path: str) -> str:
    """``str(pathlib.Path(path).absolute())``: joined to the working directory, ``..`` kept."""
    return plain_path(path if path.startswith("/") else os.path.join(os.getcwd(), path))


def _dockerfile_inside(root: str, dockerfile: str | None) -> tuple[str | None, str | None]:
    """The Dockerfile's path in a context directory for its ignore file, and the name to read
    (pathlib's ``relative_to``: the Dockerfile's parts must begin with the context's)."""
    if dockerfile in (None, "-"):
        return ("Dockerfile" if dockerfile is None else None), "Dockerfile"
    parts = [p for p in _absolute(dockerfile).split("/") if p]
    base = [p for p in _absolute(root).split("/") if p]
    if parts[: len(base)] != base:
        return None, None
    inside = "/".join(parts[len(base):]) or "."
    return inside, inside


class _Counting:
    """A stream that counts what is read from it (the size of a context tar from stdin; ``gzipped``:
    its ``--compress`` size counted too)."""

    def __init__(self, stream: IO[bytes], compress: bool = False) -> None:
        self.stream, self.count, self.read_bytes = stream, 0, 0  # count: what is sent; read_bytes: what came
        self.gzipped: Any = None
        if compress:
            from strata.build.sendtar import StreamGzipSize

            self.gzipped = StreamGzipSize()

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.count += len(data)
        self.read_bytes += len(data)
        if self.gzipped is not None:
            self.gzipped.write(data)
        return data

    def sent(self) -> int:
        return int(self.gzipped.size()) if self.gzipped is not None else self.count

    def readinto(self, buf: Any) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)


def _send_size(ctx: BuildContext, opts: BuildOptions, name: str | None, text: str) -> int:
    """What Docker's CLI sends: the context, and a Dockerfile from elsewhere added to it."""
    forced = [n for n in (None if opts.dockerfile == "-" else name, ".dockerignore") if n]
    added = None if name is not None and opts.dockerfile != "-" else text.encode(errors="surrogateescape")
    return ctx.send_size(forced, added, compress=opts.compress)


def _download(url: str) -> Any:
    """A context tarball over http(s), streamed (Docker's remote tar context)."""
    import urllib.error
    import urllib.request

    try:
        return urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, OSError) as e:
        raise StrataError(f"unable to prepare context: unable to download remote context {url}: {e}") from None


def _no_dockerfile(opts: BuildOptions, where: str) -> StrataError:
    if opts.context == "-" or opts.context.startswith(("http://", "https://")):
        return StrataError(f"Cannot locate specified Dockerfile: {where}")
    return StrataError(
        f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat {where}: no such file or directory"
    )


def _dockerfile_text(ctx: BuildContext, opts: BuildOptions, name: str | None, stdin: IO[bytes] | None) -> str:
    if opts.dockerfile == "-":
        if stdin is None:
            raise StrataError("no Dockerfile on stdin")
        return stdin.read().decode(errors="replace")
    if name is None:  # a Dockerfile outside a directory context
        path = opts.dockerfile or "Dockerfile"
        try:
            with open(path, errors="replace") as f:  # Path.read_text's reading
                return f.read()
        except FileNotFoundError:
            raise _no_dockerfile(opts, _absolute(path)) from None
        except IsADirectoryError:  # Go's read of a directory
            raise StrataError(f"read {path}: is a directory") from None
    data = ctx.read_file(name)
    if data is None:
        in_dir = opts.context not in ("-",) and not opts.context.startswith(("http://", "https://"))
        raise _no_dockerfile(opts, f"{_absolute(opts.context)}/{name}" if in_dir else name)
    return data.decode(errors="replace")


def _check_daemon_options(opts: BuildOptions) -> None:
    """What Docker's daemon refuses of a build's options once the context came (Linux: no security
    options for a build, no isolation but the default)."""
    if opts.security_opt:
        raise StrataError("The daemon on this platform does not support setting security options on build")
    if opts.isolation and opts.isolation.lower() != "default":
        raise StrataError(f'Unsupported isolation: "{opts.isolation}"')


def build(
    engine: Engine,
    opts: BuildOptions,
    *,
    out: TextIO | None = None,
    stdin: IO[bytes] | None = None,
    run_output: tuple[int | None, int | None] = (None, None),
    pull: Puller | None = None,
    progress: Progress | None = None,
) -> BuildResult:
    """Build ``opts``' Dockerfile; step lines go to ``out``, RUN output to the ``run_output`` fds
    (or all of it to ``progress``). Tags are set only when the whole build succeeded."""
    tags = [parse_tag_target(t) for t in opts.tags]
    if progress is None:
        progress = ClassicProgress(out or sys.stdout, *run_output, quiet=opts.quiet)
    url = opts.context.startswith(("http://", "https://"))
    counted = _Counting(stdin, opts.compress) if stdin is not None and opts.context == "-" else None
    if url:  # Docker's CLI downloads it, then sends what came
        counted = _Counting(_download(opts.context), opts.compress)
    source: Any = counted or stdin
    error: str | None = "interrupted"
    try:
        ctx, name = _open_context(engine, opts, source)
        store = ContainerStore(engine.root_dir)
        try:
            reap_orphans(store)
            text = _dockerfile_text(ctx, opts, name, stdin)
            if url and counted is not None:
                length = getattr(counted.stream, "headers", {}).get("Content-Length") or ""
                total = int(length) if length.isdigit() else -1
                progress.line(-1, downloading_line(opts.context, total, counted.read_bytes))
            progress.line(-1, sending_line(counted.sent() if counted else _send_size(ctx, opts, name, text)))
            if not text:  # the daemon's name for it: its path in the context, or the one the CLI gave it
                shown = name if name is not None and opts.dockerfile != "-" else f".dockerfile.{os.urandom(10).hex()}"
                raise StrataError(f"the Dockerfile ({shown}) cannot be empty")
            _check_daemon_options(opts)
            if opts.platform:
                opts.platform = check_platform(opts.platform)  # the daemon's check, after the context came
            dockerfile = parse(text)
            if dockerfile.warnings:  # after what the parser refuses, before the first step (stderr's marks)
                from strata.build.precheck import check_instructions

                check_instructions(dockerfile.instructions)
                progress.output(-1, "stderr", "\n".join(dockerfile.warnings).encode() + b"\n")
            builder = Builder(engine, Runner(engine, store, opts.network), opts, progress, pull)
            image_id = target_image(engine, builder.build(dockerfile, ctx), opts.platform)
        finally:
            store.close()
            ctx.close()
        error = None
    except StrataError as e:
        error = str(e)
        raise
    finally:
        progress.close(error)
    for ref in tags:
        engine.tag(image_id, ref)
    return BuildResult(image_id, [ref.familiar_string() for ref in tags])
