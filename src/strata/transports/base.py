"""The contract every transport implements: a *source* gives images (and, for layouts and registries,
the raw documents of an index); a *sink* takes them through a few verbs that ``strata.copier`` drives.

Sink verbs, in the order the copy engine calls them (containers/image's ``ImageDestination``,
go-containerregistry's ``remote.Write``)::

    begin(image)                    once per copy (image is None for an index): locks, scopes, dirs
    reuse_blob(layer)               the sink has the blob already (or can mount it): no transfer
    put_blob(layer)                 stream one layer in (``concurrency`` at once); verified by the sink
    put_config(image)               the configuration blob
    put_manifest(image, blobs)      the manifest as this sink keeps it (stored, not yet named)
    put_index(raw, media_type)      an index or manifest list, by digest (``supports_index`` sinks only)
    commit(tags)                    names the last document put: tags, an index.json entry, a store record
    abort()                         after a failure: nothing the copy started becomes visible

A sink says how Docker words its progress (``wording``) and how many blobs it takes at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from strata.digest import Digest
from strata.image.api import Image, Layer
from strata.image.spec import Descriptor, Manifest, Platform
from strata.reference import Reference

__all__ = [
    "MADE_LOCALLY",
    "MAX_INDEX_DEPTH",
    "NO_PROGRESS",
    "BlobInfo",
    "ImageSink",
    "ImageSource",
    "IndexSource",
    "Progress",
    "ProgressEvent",
    "Wording",
    "WriteResult",
]

# Set in ``SimpleImage.extra`` for a stored image that has no manifest of its own (imported, committed):
# a registry gets it as Docker pushes such an image, schema 2 with ``tar.gzip`` layers.
MADE_LOCALLY = "strata.made-locally"


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One line of Docker-style progress: ``<short id>: <status>`` (id is empty for whole-operation
    lines such as ``Digest: …``). ``current``/``total`` carry byte counts for progress bars."""

    id: str
    status: str
    current: int = 0
    total: int = 0


Progress = Callable[[ProgressEvent], None]


def NO_PROGRESS(_: ProgressEvent) -> None:
    return None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a copy made: the image ID (for an index: the index digest) and the top document as stored."""

    image_id: Digest
    manifest_digest: Digest | None = None
    manifest_size: int = 0


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """A blob as the sink holds it. ``diff_id`` is set when the sink learnt the layer's content digest
    (the engine checks it against the configuration); ``status`` words a reuse (``Mounted from a/b``);
    ``handle`` is the sink's own record of it."""

    descriptor: Descriptor
    diff_id: Digest | None = None
    status: str = ""
    handle: object = None


@dataclass(frozen=True, slots=True)
class Wording:
    """Docker's words for one direction of a copy. Layer lines are ``<id>: <status>`` where the id is
    the short blob digest or (``by_diff_id``) the short diff ID; an empty word is not said."""

    announce: str = ""  # an id-less line per blob before anything happens ("Copying blob {digest}")
    preparing: str = ""  # for every layer, top layer first, before anything happens (push)
    reused: str = "Already exists"  # a reuse the sink words itself (``Mounted from x``) keeps its words
    reuse_lines: bool = True  # False: reuses are not said at all (skopeo's lines)
    start: str = ""  # a transfer begins
    transfer: str = ""  # byte progress while it runs (bars on a terminal)
    stored: tuple[str, ...] = ()  # a transfer ended
    committed: str = ""  # after the commit, for every transferred layer
    by_diff_id: bool = False
    config_line: str = ""  # id-less, once the layers are in ("Copying config {digest}")
    manifest_line: str = ""  # id-less, before the manifest is written


MAX_INDEX_DEPTH = 16  # indexes nested deeper than this are refused (a clear error, never a RecursionError)


class ImageSink(Protocol):
    """Takes images through the verbs above; see the module docstring for the order."""

    wording: Wording
    concurrency: int  # blobs put at once
    reuse_concurrency: int  # reuse checks at once (1 where the check is a local, single-threaded lookup)
    supports_index: bool

    def begin(self, image: Image | None = None) -> None: ...
    def reuse_blob(self, layer: Layer) -> BlobInfo | None: ...
    def put_blob(self, layer: Layer) -> BlobInfo: ...
    def put_config(self, image: Image) -> None: ...
    def put_manifest(self, image: Image, blobs: list[BlobInfo], *, child: bool = False) -> Manifest: ...
    def put_index(self, raw: bytes, media_type: str, *, child: bool = False) -> Digest: ...
    def commit(self, tags: list[Reference]) -> WriteResult: ...
    def abort(self) -> None: ...


class ImageSource(Protocol):
    """Gives the image a reference names (choosing ``platform`` from an index) and the names it carries."""

    def image(self, platform: Platform | None = None) -> Image: ...
    def tags(self) -> list[Reference]: ...


class IndexSource(ImageSource, Protocol):
    """A source holding raw documents by digest (registry, OCI layout): what ``copy --all`` reads."""

    def top(self) -> tuple[bytes, str]:
        """The named document (raw bytes, media type)."""
        ...

    def manifest(self, desc: Descriptor) -> bytes:
        """A document by digest, verified against it."""
        ...

    def image_of(self, manifest: Manifest) -> Image: ...
