"""Registry commands: ``login``, ``logout``, ``pull``, ``push``, ``search``, ``copy``, ``manifest inspect``.

Output lines, errors and exit codes follow Docker 20.10's CLI (see shared/reference/docker/). Pull and
push are ``copy`` between a registry (``strata.transports.registry``) and the local store; progress
is printed line by line, or as live bars when stdout is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import signal
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from strata.digest import Digest
from strata.distribution.client import RegistryClient
from strata.distribution.credentials import (
    Credentials,
    config_path,
    erase_credentials,
    get_credentials,
    server_key,
    store_credentials,
)
from strata.distribution.hosts import DOCKER_HUB, HostsConfig, normalize_host
from strata.distribution.search import filter_results, parse_filters, search, split_term
from strata.errors import (
    Denied,
    ImageNotFound,
    ManifestUnknown,
    NameUnknown,
    NotFound,
    StrataError,
    Unauthorized,
    UsageError,
)
from strata.image.api import Image
from strata.reference import Reference, parse_normalized_named
from strata.spec import Platform
from strata.transports.base import NO_PROGRESS, ImageSink, Progress, ProgressEvent, WriteResult
from strata.transports.registry import BlobRecord, PushMetadata, RegistrySink, registry_image

if TYPE_CHECKING:
    from strata.cli.main import Context
    from strata.distribution.copyall import Place
    from strata.engine import Engine

__all__ = ["ProgressPrinter", "register"]

_BAR_STATUSES = {"Downloading", "Pushing", "Extracting"}


def _int_env(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, "")))
    except ValueError:
        return default


MAX_DOWNLOADS = _int_env("STRATA_MAX_CONCURRENT_DOWNLOADS", 3)
MAX_UPLOADS = _int_env("STRATA_MAX_CONCURRENT_UPLOADS", 5)


# ------------------------------------------------------------------------------------ progress


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}"


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
            text += f" [{arrow:<{width}}]  {_human(ev.current)}/{_human(ev.total)}"
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


def _hosts() -> HostsConfig:
    return HostsConfig.load()


_LIVE_CLIENTS: weakref.WeakSet[RegistryClient] = weakref.WeakSet()


def _client(registry: str, *, for_push: bool = False, creds: Credentials | None = None) -> RegistryClient:
    client = RegistryClient(
        registry,
        creds if creds is not None else get_credentials(registry),
        config=_hosts(),
        for_push=for_push,
    )
    _LIVE_CLIENTS.add(client)
    return client


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C aborts every transfer at once (worker threads would otherwise finish their downloads
    before the interrupt gets out), then interrupts as usual: nothing is committed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: object) -> None:
        for client in list(_LIVE_CLIENTS):
            client.cancel()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _metadata(engine: Engine) -> PushMetadata:
    return PushMetadata(Path(engine.root) / "distribution" / "v2metadata")


def _resolve_local(engine: Engine, name: str) -> Digest | None:
    try:
        return engine.resolve_image(name)
    except ImageNotFound:
        return None


def _pull_error(e: StrataError, ref: Reference, shown: str) -> StrataError:
    if isinstance(e, ManifestUnknown | NameUnknown) or (isinstance(e, NotFound) and "manifest" in str(e)):
        return NotFound(f"manifest for {shown} not found: {e}")
    if isinstance(e, Unauthorized | Denied) and ref.domain == DOCKER_HUB:
        return Denied(
            f"pull access denied for {ref.familiar}, repository does not exist or may require "
            f"'docker login': {e}"
        )
    return e


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
            _check_login(server, stored)
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
    creds = Credentials(username, password)
    identity_token = _check_login(server, creds)
    if identity_token:  # the token server gave a refresh token: keep it, not the password (as Docker)
        creds = Credentials(username, identity_token=identity_token)
    if store_credentials(server, creds):
        # Docker 20.10's client prints this on stderr (checked against Debian's docker.io), then a blank line
        print(
            f"WARNING! Your password will be stored unencrypted in {config_path()}.\n"
            "Configure a credential helper to remove this warning. See\n"
            "https://docs.docker.com/engine/reference/commandline/login/#credentials-store\n",
            file=ctx.err,
        )
    print("Login Succeeded", file=ctx.out)
    return 0


def _check_login(server: str, creds: Credentials) -> str:
    """Ping the registry with ``creds``; the identity (refresh) token its token server issued, if any."""
    with _client(server, creds=creds) as client:
        try:
            client.ping()
        except Unauthorized as e:
            raise Unauthorized(f'Get "{client.endpoint.base_url}/v2/": {e}', status=e.status, errors=e.errors) from None
        return client.auth.refresh_token


def cmd_logout(args: argparse.Namespace, ctx: Context) -> int:
    server = normalize_host(args.server) if args.server else DOCKER_HUB
    shown = server_key(server)
    if not get_credentials(server) and not erase_credentials(server):
        print(f"Not logged in to {shown}", file=ctx.out)
        return 0
    print(f"Removing login credentials for {shown}", file=ctx.out)
    erase_credentials(server)
    return 0


# ------------------------------------------------------------------------------------ pull


def _pull_one(
    engine: Engine,
    client: RegistryClient,
    ref: Reference,
    printer: ProgressPrinter,
    platform: Platform | None,
) -> tuple[Digest, Digest, bool]:
    """Pull one tag or digest; returns (image ID, top-level digest, whether something changed)."""
    from strata.transports.store import StoreSink

    reference = str(ref.digest) if ref.digest else (ref.tag or "latest")
    shown = ref.familiar_string()
    before = _resolve_local(engine, ref.string())
    try:
        image = registry_image(client, ref.path, reference, platform=platform, progress=printer)
    except StrataError as e:
        raise _pull_error(e, ref, shown) from None
    if not printer.quiet:  # Docker announces the pull once the manifest is known (not for an unknown tag)
        printer.message(f"{ref.digest or ref.tag}: Pulling from {ref.path}")
    tags = [ref] if ref.digest is None else []
    refs = [*tags, ref.without_tag().with_digest(image.top_digest)]
    known = image.image_id()
    if _resolve_local(engine, str(known)) == known:
        # Docker: an image already in the store is not pulled again (no layer lines); only tagged
        for r in refs:
            engine.tag(known, r)
        return known, image.top_digest, before != known
    try:
        image.config()
    except StrataError as e:
        raise _pull_error(e, ref, shown) from None
    meta = _metadata(engine)
    sink: ImageSink = StoreSink(
        engine,
        concurrency=MAX_DOWNLOADS,
        known_alias=lambda blob, diff_id: any(r.digest == str(blob) for r in meta.lookup(diff_id)),
    )
    result = sink.write(image, refs, printer)
    for desc, diff_id in zip(image.manifest().layers, image.config().diff_ids, strict=False):
        try:
            meta.add(diff_id, BlobRecord(str(desc.digest), desc.media_type, desc.size, client.registry, ref.path))
        except OSError:
            break
    return result.image_id, image.top_digest, before != result.image_id


def cmd_pull(args: argparse.Namespace, ctx: Context) -> int:
    with _interruptible():
        return _cmd_pull(args, ctx)


def _cmd_pull(args: argparse.Namespace, ctx: Context) -> int:
    ref = parse_normalized_named(args.name)
    platform = Platform.parse(args.platform) if args.platform else None
    printer = ProgressPrinter(ctx.out, quiet=args.quiet)
    if args.all_tags and not ref.is_name_only:
        raise UsageError("tag can't be used with --all-tags/-a")
    if ref.is_name_only and not args.all_tags:
        if not args.quiet:
            print("Using default tag: latest", file=ctx.out)
        ref = ref.with_tag("latest")
    engine = ctx.engine()
    with _client(ref.domain) as client:
        if args.all_tags:
            if not args.quiet:
                print(f"Pulling repository {ref.repository}", file=ctx.out)
            tags = client.tags(ref.path)
            changed = False
            for tag in tags:
                one = ref.with_tag(tag)
                _, top, did = _pull_one(engine, client, one, printer, platform)
                changed |= did
                if not args.quiet:
                    printer.message(f"Digest: {top}")
            if not args.quiet:
                status = "Downloaded newer image for" if changed else "Image is up to date for"
                printer.message(f"Status: {status} {ref.familiar}")
            print(ref.repository, file=ctx.out)
            return 0
        _, top, changed = _pull_one(engine, client, ref, printer, platform)
    if not args.quiet:
        printer.message(f"Digest: {top}")
        status = "Downloaded newer image for" if changed else "Image is up to date for"
        printer.message(f"Status: {status} {ref.familiar_string()}")
    print(ref.string(), file=ctx.out)
    return 0


# ------------------------------------------------------------------------------------ push


def _local_tags(engine: Engine, ref: Reference) -> list[Reference]:
    out: list[Reference] = []
    for summary in engine.summaries():
        for r in summary.refs:
            if r.repository == ref.repository and r.tag:
                out.append(r)
    return sorted(set(out), key=lambda r: r.tag or "")


def _push_one(engine: Engine, client: RegistryClient, ref: Reference, printer: ProgressPrinter) -> tuple[Digest, int]:
    with engine.writing():  # held like a writer: a concurrent rmi's collection cannot delete blobs mid-push
        image_id = _resolve_local(engine, ref.string())
        if image_id is None:
            raise ImageNotFound(ref.familiar_string())
        image = engine.image(image_id)
        sink = RegistrySink(client, ref.path, concurrency=MAX_UPLOADS, metadata=_metadata(engine))
        result = sink.write(image, [ref], printer)
    assert result.manifest_digest is not None
    return result.manifest_digest, result.manifest_size


def cmd_push(args: argparse.Namespace, ctx: Context) -> int:
    with _interruptible():
        return _cmd_push(args, ctx)


def _cmd_push(args: argparse.Namespace, ctx: Context) -> int:
    ref = parse_normalized_named(args.name)
    printer = ProgressPrinter(ctx.out, quiet=args.quiet)
    if args.all_tags and not ref.is_name_only:
        raise UsageError("tag can't be used with --all-tags/-a")
    engine = ctx.engine()
    if ref.is_name_only and not args.all_tags:
        if not args.quiet:
            print("Using default tag: latest", file=ctx.out)
        ref = ref.with_tag("latest")
    refs = _local_tags(engine, ref) if args.all_tags else [ref]
    if args.all_tags and not refs:
        raise StrataError(f"An image does not exist locally with the tag: {ref.familiar}")
    for r in refs:
        if _resolve_local(engine, r.string()) is None:
            raise StrataError(f"An image does not exist locally with the tag: {r.familiar}")
    if not args.quiet:
        print(f"The push refers to repository [{ref.repository}]", file=ctx.out)
    with _client(ref.domain, for_push=True) as client:
        for r in refs:
            digest, size = _push_one(engine, client, r, printer)
            image_id = _resolve_local(engine, r.string())
            if image_id is not None:  # Docker records the pushed manifest as a RepoDigest
                engine.tag(image_id, r.without_tag().with_digest(digest))
            if not args.quiet:
                printer.message(f"{r.tag}: digest: {digest} size: {size}")
    if args.quiet:
        for r in refs:
            print(r.string(), file=ctx.out)
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
    doc = json.loads(res.raw)
    if args.verbose:
        doc = {
            "Ref": ref.string(),
            "Descriptor": {"mediaType": res.media_type, "digest": str(res.digest), "size": len(res.raw)},
            "Raw": doc,
        }
    ctx.out.write(json.dumps(doc, indent="\t") + "\n")
    return 0


# ------------------------------------------------------------------------------------ copy


def _split_transport(name: str) -> tuple[str, str]:
    for prefix in ("docker://", "docker-archive:", "oci-archive:", "oci:", "strata:", "containers-storage:"):
        if name.startswith(prefix):
            return prefix.rstrip(":/"), name[len(prefix) :]
    raise UsageError(f'Invalid image name "{name}": unknown transport (use docker://, docker-archive:, oci:, oci-archive:, strata:)')


def _path_and_ref(spec: str) -> tuple[Path, str | None]:
    """``/path/x.tar:name:tag`` → (path, "name:tag"); the path is everything before the first colon."""
    path, sep, ref = spec.partition(":")
    return Path(path), (ref or None) if sep else None


def _source(name: str, ctx: Context, stack: contextlib.ExitStack, platform: Platform | None) -> tuple[Image, list[Reference]]:
    kind, rest = _split_transport(name)
    if kind == "docker":
        ref = parse_normalized_named(rest.lstrip("/"))
        ref = ref.with_tag("latest") if ref.is_name_only else ref
        client = stack.enter_context(_client(ref.domain))
        reference = str(ref.digest) if ref.digest else (ref.tag or "latest")
        try:
            return registry_image(client, ref.path, reference, platform=platform), [ref]
        except StrataError as e:
            raise _pull_error(e, ref, ref.familiar_string()) from None
    if kind in ("strata", "containers-storage"):
        engine = ctx.engine()
        image_id = engine.resolve_image(rest)
        return engine.image(image_id), []
    path, ref_name = _path_and_ref(rest)
    root = path
    if kind in ("docker-archive", "oci-archive"):
        from strata.transports.tarball import unpack_archive

        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="strata-copy-")))
        with open(path, "rb") as f:
            unpack_archive(f, tmp)
        root = tmp
    if kind in ("oci", "oci-archive"):
        from strata.transports.oci_layout import layout_images

        images = layout_images(root, ref_name=ref_name, platform=platform)
    else:
        from strata.transports.docker_archive import archive_images

        images = archive_images(root)
        if ref_name:
            want = parse_normalized_named(ref_name)
            want = want.with_tag("latest") if want.is_name_only else want
            images = [(img, tags) for img, tags in images if want in tags]
    if not images:
        raise ImageNotFound(name)
    if len(images) > 1:
        raise UsageError(f"{name} holds {len(images)} images: name one")
    return images[0]


def _sink(name: str, ctx: Context, stack: contextlib.ExitStack, src_tags: list[Reference]) -> tuple[ImageSink, list[Reference]]:
    kind, rest = _split_transport(name)
    if kind == "docker":
        ref = parse_normalized_named(rest.lstrip("/"))
        ref = ref.with_tag("latest") if ref.is_name_only else ref
        client = stack.enter_context(_client(ref.domain, for_push=True))
        meta = None
        if ctx.root is not None or os.environ.get("STRATA_ROOT"):
            meta = _metadata(ctx.engine())
        return RegistrySink(client, ref.path, concurrency=MAX_UPLOADS, metadata=meta), [ref]
    if kind in ("strata", "containers-storage"):
        from strata.transports.store import StoreSink

        store_tags = [parse_normalized_named(rest).tag_name_only()] if rest else src_tags
        return StoreSink(ctx.engine(), concurrency=MAX_DOWNLOADS), store_tags
    path, ref_name = _path_and_ref(rest)
    tags = src_tags
    if ref_name and kind in ("docker-archive",):
        tags = [parse_normalized_named(ref_name).tag_name_only()]
    if kind == "oci":
        from strata.transports.oci_layout import LayoutSink

        return LayoutSink(path, ref_name), tags
    if kind == "docker-archive":
        return _ArchiveFileSink(path, stack), tags
    return _OciArchiveSink(path, ref_name, stack), tags


class _ArchiveFileSink:
    """docker-archive: stream into ``path`` through a temp file renamed at the end."""

    def __init__(self, path: Path, stack: contextlib.ExitStack) -> None:
        self.path = path
        self.stack = stack

    def write(self, image: Image, tags: list[Reference], progress: Progress = NO_PROGRESS) -> WriteResult:
        from strata.transports.docker_archive import ArchiveWriter

        tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                writer = ArchiveWriter(f)
                result = writer.write(image, tags, progress)
                writer.close()
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        return result


class _OciArchiveSink:
    """oci-archive: an OCI layout in a temp dir, tarred into ``path`` at the end."""

    def __init__(self, path: Path, ref_name: str | None, stack: contextlib.ExitStack) -> None:
        self.path, self.ref_name, self.stack = path, ref_name, stack

    def write(self, image: Image, tags: list[Reference], progress: Progress = NO_PROGRESS) -> WriteResult:
        from strata.transports.oci_layout import LayoutSink

        tmp_dir = Path(self.stack.enter_context(tempfile.TemporaryDirectory(prefix="strata-oci-")))
        result = LayoutSink(tmp_dir, self.ref_name).write(image, tags, progress)
        _tar_dir(tmp_dir, self.path)
        return result


def _tar_dir(src: Path, path: Path) -> None:
    """Tar the OCI layout ``src`` into ``path`` (temp file, fsync, rename)."""
    import tarfile

    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for p in sorted(src.rglob("*")):
                    tar.add(p, arcname=p.relative_to(src).as_posix(), recursive=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _raw_place(name: str, stack: contextlib.ExitStack, *, dest: bool) -> tuple[Place, Callable[[], None]] | None:
    """A place holding raw manifests and blobs for ``copy --all`` (registry, oci:, oci-archive:), with
    what to do once the copy is complete; None for transports holding one image (docker-archive:, the store)."""
    from strata.distribution.copyall import LayoutPlace, RegistryPlace

    kind, rest = _split_transport(name)
    if kind == "docker":
        ref = parse_normalized_named(rest.lstrip("/"))
        ref = ref.with_tag("latest") if ref.is_name_only else ref
        client = stack.enter_context(_client(ref.domain, for_push=dest))
        if dest:
            client.want_push(ref.path)
        reference = str(ref.digest) if ref.digest else (ref.tag or "latest")
        return RegistryPlace(client, ref.path, reference), lambda: None
    if kind not in ("oci", "oci-archive"):
        return None
    path, ref_name = _path_and_ref(rest)
    if kind == "oci":
        return LayoutPlace(path, ref_name), lambda: None
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="strata-copy-")))
    if dest:
        return LayoutPlace(tmp, ref_name), lambda: _tar_dir(tmp, path)
    from strata.transports.tarball import unpack_archive

    with open(path, "rb") as f:
        unpack_archive(f, tmp)
    return LayoutPlace(tmp, ref_name), lambda: None


def _copy_list(args: argparse.Namespace, ctx: Context, stack: contextlib.ExitStack, printer: ProgressPrinter) -> bool:
    """``copy --all`` of an index: every image in it, digests unchanged. False when the source is one image."""
    from strata.distribution.copyall import copy_all, is_index

    src = _raw_place(args.src, stack, dest=False)
    if src is None:
        return False
    top = src[0].top()
    if not is_index(*top):
        return False
    dst = _raw_place(args.dst, stack, dest=True)
    if dst is None:  # as skopeo: docker-archive (and a store) hold one image per name
        kind = _split_transport(args.dst)[0]
        raise StrataError(
            f'copying multiple images: destination transport "{kind}" does not support copying multiple images as a group'
        )
    copy_all(src[0], dst[0], message=(lambda _: None) if args.quiet else printer.message, concurrency=MAX_DOWNLOADS, top=top)
    dst[1]()
    return True


def cmd_copy(args: argparse.Namespace, ctx: Context) -> int:
    with _interruptible():
        return _cmd_copy(args, ctx)


def _cmd_copy(args: argparse.Namespace, ctx: Context) -> int:
    platform = Platform.parse(args.platform) if args.platform else None
    printer = ProgressPrinter(ctx.out, quiet=args.quiet)
    with contextlib.ExitStack() as stack:
        if args.all and _copy_list(args, ctx, stack, printer):
            return 0
        image, src_tags = _source(args.src, ctx, stack, platform)
        sink, tags = _sink(args.dst, ctx, stack, src_tags)
        if not args.quiet:
            printer.message("Getting image source signatures")
        sink.write(image, tags, printer)
        if not args.quiet:
            printer.message("Writing manifest to image destination")
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
