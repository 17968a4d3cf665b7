"""Named transports, as skopeo spells them: ``docker://host/repo:tag``, ``docker-archive:/x.tar[:name:tag]``,
``oci:/dir[:ref]``, ``oci-archive:/x.tar[:ref]`` and ``strata:name`` (the local store; also
``containers-storage:``). ``open_source``/``open_sink`` turn a name into a source or sink of the one
copy contract; what they open (registry clients, staging directories, archive files) belongs to the
``ExitStack`` they are given, and an archive file is only renamed into place when the stack closes
without an error."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from strata.errors import StrataError, UsageError
from strata.reference import Reference, parse_normalized_named
from strata.transports.base import ImageSink, ImageSource, IndexSource

if TYPE_CHECKING:
    from strata.distribution.client import RegistryClient
    from strata.engine import Engine
    from strata.transports.registry import PushMetadata

__all__ = [
    "TRANSPORTS",
    "TransportContext",
    "open_index_source",
    "open_sink",
    "open_source",
    "refuse_lists",
    "source_tags",
    "split_name",
]

TRANSPORTS = ("docker://", "docker-archive:", "oci-archive:", "oci:", "strata:", "containers-storage:")


class _Finishing(Protocol):
    def close(self) -> None: ...
    def discard(self) -> None: ...


@dataclass
class TransportContext:
    """What opening a transport needs: the local store (opened on first use), registry clients
    (``client(registry, for_push)``), where push metadata lives (None: not recorded), concurrency."""

    engine: Callable[[], Engine]
    client: Callable[[str, bool], RegistryClient]
    metadata: Callable[[], PushMetadata | None]
    downloads: int = 3
    uploads: int = 5


def split_name(name: str) -> tuple[str, str]:
    """``docker://x`` → (``docker``, ``x``); an unknown transport is a usage error."""
    for prefix in TRANSPORTS:
        if name.startswith(prefix):
            return prefix.rstrip(":/"), name[len(prefix) :]
    raise UsageError(
        f'Invalid image name "{name}": unknown transport (use docker://, docker-archive:, oci:, oci-archive:, strata:)'
    )


def _path_and_ref(spec: str) -> tuple[Path, str | None]:
    """``/path/x.tar:name:tag`` → (path, "name:tag"); the path is everything before the first colon."""
    path, sep, ref = spec.partition(":")
    return Path(path), (ref or None) if sep else None


def _docker_ref(rest: str) -> Reference:
    ref = parse_normalized_named(rest.lstrip("/"))
    return ref.with_tag("latest") if ref.is_name_only else ref


def _unpacked(path: Path, stack: contextlib.ExitStack) -> Path:
    from strata.transports.tarball import unpack_archive

    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="strata-copy-")))
    with open(path, "rb") as f:
        unpack_archive(f, tmp)
    return tmp


def open_index_source(name: str, ctx: TransportContext, stack: contextlib.ExitStack) -> IndexSource | None:
    """A source of raw documents for ``copy --all`` (registry, oci:, oci-archive:); None for the
    transports that hold single images (docker-archive:, the store)."""
    kind, rest = split_name(name)
    if kind == "docker":
        from strata.transports.registry import RegistrySource

        ref = _docker_ref(rest)
        client = stack.enter_context(ctx.client(ref.domain, False))
        return RegistrySource(client, ref.path, str(ref.digest) if ref.digest else (ref.tag or "latest"))
    if kind not in ("oci", "oci-archive"):
        return None
    from strata.transports.oci_layout import LayoutSource

    path, ref_name = _path_and_ref(rest)
    return LayoutSource(_unpacked(path, stack) if kind == "oci-archive" else path, ref_name)


def open_source(name: str, ctx: TransportContext, stack: contextlib.ExitStack) -> ImageSource:
    """The source a transport name means."""
    kind, rest = split_name(name)
    if kind in ("strata", "containers-storage"):
        from strata.transports.store import StoreSource

        return StoreSource(ctx.engine(), rest)
    if kind == "docker-archive":
        from strata.transports.docker_archive import ArchiveSource

        path, ref_name = _path_and_ref(rest)
        return ArchiveSource(_unpacked(path, stack), ref_name, shown=name)
    source = open_index_source(name, ctx, stack)
    assert source is not None
    return source


def source_tags(name: str) -> list[Reference]:
    """The names a source reference itself gives (``docker://x:1`` → ``x:1``)."""
    kind, rest = split_name(name)
    return [_docker_ref(rest)] if kind == "docker" else []


def _finish_on_exit(stack: contextlib.ExitStack, sink: _Finishing) -> None:
    def finish(exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            sink.close()
        else:
            sink.discard()

    stack.push(finish)


def open_sink(
    name: str, ctx: TransportContext, stack: contextlib.ExitStack, src_tags: list[Reference]
) -> tuple[ImageSink, list[Reference]]:
    """The sink a transport name means, and the names the copy gets there."""
    kind, rest = split_name(name)
    if kind == "docker":
        from strata.transports.registry import RegistrySink

        ref = _docker_ref(rest)
        client = stack.enter_context(ctx.client(ref.domain, True))
        return RegistrySink(client, ref.path, concurrency=ctx.uploads, metadata=ctx.metadata()), [ref]
    if kind in ("strata", "containers-storage"):
        from strata.transports.store import StoreSink

        tags = [parse_normalized_named(rest).tag_name_only()] if rest else src_tags
        return StoreSink(ctx.engine(), concurrency=ctx.downloads), tags
    path, ref_name = _path_and_ref(rest)
    if kind == "oci":
        from strata.transports.oci_layout import LayoutSink

        return LayoutSink(path, ref_name, concurrency=ctx.downloads), src_tags
    if kind == "oci-archive":
        from strata.transports.oci_layout import OciArchiveSink

        staging = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="strata-oci-")))
        oci = OciArchiveSink(path, staging, ref_name)
        _finish_on_exit(stack, oci)
        return oci, src_tags
    from strata.transports.docker_archive import ArchiveFileSink

    tags = [parse_normalized_named(ref_name).tag_name_only()] if ref_name else src_tags
    archive = ArchiveFileSink(path)
    _finish_on_exit(stack, archive)
    return archive, tags


def refuse_lists(name: str) -> StrataError:
    """skopeo's error for ``copy --all`` of an index into a transport that holds single images."""
    kind, _ = split_name(name)
    return StrataError(
        f'copying multiple images: destination transport "{kind}" does not support copying multiple images as a group'
    )
