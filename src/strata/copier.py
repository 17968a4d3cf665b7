"""The copier: the one copy engine behind pull, push, save, load and copy: an image (or a whole index) from a source
into a sink (``strata.transports.base``).

The loop is here, once: reuse checks (``Already exists``, ``Layer already exists``, cross-repository
mounts), blob transfers ``sink.concurrency`` at once, progress events in the sink's wording, the
check of every layer's diff ID against the configuration, and the commit order (blobs, config,
manifest, then ``commit`` names it; ``abort`` on any failure, so nothing half-copied is visible).

``copy_index`` is the same loop over an index (``copy --all``): every child once (a digest met again
is not copied again), children before the index naming them, nesting bounded by ``MAX_INDEX_DEPTH``;
documents are copied byte for byte, so every digest is kept. Its lines are skopeo's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import BinaryIO, TypeVar

from strata.digest import Digest, ReaderBase, digest_bytes
from strata.errors import DigestMismatch, InvalidArchive
from strata.image.api import Image, Layer
from strata.image.spec import Index, Manifest, parse_manifest_or_index
from strata.reference import Reference
from strata.transports.base import (
    MAX_INDEX_DEPTH,
    NO_PROGRESS,
    BlobInfo,
    ImageSink,
    IndexSource,
    Progress,
    ProgressEvent,
    Wording,
    WriteResult,
)

__all__ = ["SKOPEO_WORDING", "copy_image", "copy_index"]

SKOPEO_WORDING = Wording(
    announce="Copying blob {digest}",
    reuse_lines=False,
    config_line="Copying config {digest}",
    manifest_line="Writing manifest to image destination",
)

_T = TypeVar("_T")
_R = TypeVar("_R")


def _locked(progress: Progress) -> Progress:
    lock = threading.Lock()

    def say(ev: ProgressEvent) -> None:
        with lock:
            progress(ev)

    return say


def _map(workers: int, fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``fn`` over ``items`` in order, ``workers`` at once; the first failure cancels what has not started."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    pool = ThreadPoolExecutor(min(workers, len(items)))
    try:
        futures = [pool.submit(fn, item) for item in items]
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Counter(ReaderBase):
    def __init__(self, stream: BinaryIO, on_read: Callable[[int], None]) -> None:
        self._stream, self._on_read, self._done = stream, on_read, 0

    def read(self, n: int = -1, /) -> bytes:
        data = self._stream.read(n)
        if data:
            self._done += len(data)
            self._on_read(self._done)
        return data


class _CountedLayer:
    """A layer whose streams report how far they have been read (the transfer's byte progress)."""

    def __init__(self, layer: Layer, on_read: Callable[[int], None]) -> None:
        self.layer, self.on_read = layer, on_read

    def digest(self) -> Digest:
        return self.layer.digest()

    def diff_id(self) -> Digest:
        return self.layer.diff_id()

    def size(self) -> int:
        return self.layer.size()

    def media_type(self) -> str:
        return self.layer.media_type()

    @contextmanager
    def _counted(self, opened: AbstractContextManager[BinaryIO]) -> Iterator[BinaryIO]:
        with opened as stream:
            yield _Counter(stream, self.on_read)  # type: ignore[misc]

    def compressed(self) -> AbstractContextManager[BinaryIO]:
        return self._counted(self.layer.compressed())

    def uncompressed(self) -> AbstractContextManager[BinaryIO]:
        return self._counted(self.layer.uncompressed())


class _ImageCopy:
    """The blobs, config and manifest of one image into a sink that ``begin`` has opened."""

    def __init__(self, image: Image, sink: ImageSink, say: Progress, wording: Wording) -> None:
        self.image, self.sink, self.say, self.w = image, sink, say, wording
        self.layers = image.layers()
        self.diff_ids = image.config().diff_ids
        if len(self.diff_ids) != len(self.layers):
            raise InvalidArchive(
                f"image has {len(self.layers)} layers but its configuration lists {len(self.diff_ids)} diff IDs"
            )
        self.transferred: list[int] = []

    def _id(self, i: int) -> str:
        return (self.diff_ids[i] if self.w.by_diff_id else self.layers[i].digest()).short

    def _line(self, i: int, status: str, current: int = 0, total: int = 0) -> None:
        if status:
            self.say(ProgressEvent(self._id(i), status, current, total))

    def _put(self, i: int) -> BlobInfo:
        layer = self.layers[i]
        self._line(i, self.w.start)
        if self.w.transfer:
            total = layer.size()
            layer = _CountedLayer(layer, lambda n: self._line(i, self.w.transfer, n, total))
        info = self.sink.put_blob(layer)
        for status in self.w.stored:
            self._line(i, status)
        return info

    def run(self, *, child: bool = False) -> Manifest:
        n = len(self.layers)
        for layer in self.layers:
            if self.w.announce:
                self.say(ProgressEvent("", self.w.announce.format(digest=layer.digest())))
        for i in reversed(range(n)):
            self._line(i, self.w.preparing)
        found = _map(self.sink.reuse_concurrency, self.sink.reuse_blob, self.layers)
        for i, info in enumerate(found):
            if info is not None and self.w.reuse_lines:
                self._line(i, info.status or self.w.reused)
        self.transferred = [i for i in range(n) if found[i] is None]
        for i, info in zip(self.transferred, _map(self.sink.concurrency, self._put, self.transferred), strict=True):
            found[i] = info
        blobs = [info for info in found if info is not None]
        for info, want in zip(blobs, self.diff_ids, strict=True):
            if info.diff_id is not None and info.diff_id != want:
                raise DigestMismatch(
                    f"layer {info.descriptor.digest} has diff ID {info.diff_id}, configuration says {want}"
                )
        if self.w.config_line:
            self.say(ProgressEvent("", self.w.config_line.format(digest=self.image.image_id())))
        self.sink.put_config(self.image)
        if self.w.manifest_line:
            self.say(ProgressEvent("", self.w.manifest_line))
        return self.sink.put_manifest(self.image, blobs, child=child)

    def committed(self) -> None:
        for i in self.transferred:
            self._line(i, self.w.committed)


def copy_image(
    image: Image,
    sink: ImageSink,
    tags: list[Reference] | None = None,
    progress: Progress = NO_PROGRESS,
) -> WriteResult:
    """Copy ``image`` into ``sink`` and name it ``tags``: every blob the sink lacks, the config, the
    manifest, then the commit; on error the sink aborts and nothing new is visible."""
    say = _locked(progress)
    sink.begin(image)
    try:
        job = _ImageCopy(image, sink, say, sink.wording)
        job.run()
        result = sink.commit(list(tags or []))
    except BaseException:
        sink.abort()
        raise
    job.committed()
    return result


class _IndexCopy:
    def __init__(self, source: IndexSource, sink: ImageSink, say: Progress) -> None:
        self.source, self.sink, self.say = source, sink, say
        self.seen: set[Digest] = set()
        self.images = 0

    def _message(self, text: str) -> None:
        self.say(ProgressEvent("", text))

    def document(self, raw: bytes, media_type: str, *, depth: int, child: bool) -> Digest:
        doc = parse_manifest_or_index(raw, media_type)
        if isinstance(doc, Manifest):
            self._message("Getting image source signatures")
            manifest = _ImageCopy(self.source.image_of(doc), self.sink, self.say, SKOPEO_WORDING).run(child=child)
            self._message("Storing signatures")
            self.images += 1
            return manifest.digest
        return self._index(raw, doc, depth=depth, child=child)

    def _index(self, raw: bytes, doc: Index, *, depth: int, child: bool) -> Digest:
        if depth >= MAX_INDEX_DEPTH:
            raise InvalidArchive(f"invalid image index: nested more than {MAX_INDEX_DEPTH} levels deep")
        self._message("Getting image list signatures")
        n = len(doc.manifests)
        self._message(f"Copying {n} of {n} images in list")
        for i, desc in enumerate(doc.manifests, 1):
            self._message(f"Copying image {desc.digest} ({i}/{n})")
            if desc.digest in self.seen:
                continue  # a DAG: what two indexes share is copied once
            self.seen.add(desc.digest)
            self.document(self.source.manifest(desc), desc.media_type, depth=depth + 1, child=True)
        self._message("Writing manifest list to image destination")
        digest = self.sink.put_index(raw, doc.media_type, child=child)
        self._message("Storing list signatures")
        return digest


def copy_index(
    source: IndexSource,
    sink: ImageSink,
    tags: list[Reference] | None = None,
    progress: Progress = NO_PROGRESS,
    *,
    top: tuple[bytes, str] | None = None,
) -> WriteResult:
    """Copy ``source``'s top document (``top`` if already read) and everything it names, digests unchanged."""
    raw, media_type = top or source.top()
    say = _locked(progress)
    sink.begin()
    try:
        digest = _IndexCopy(source, sink, say).document(raw, media_type, depth=0, child=False)
        if digest != digest_bytes(raw, digest.algorithm):
            raise DigestMismatch(f"destination stored the copy under {digest}, not {digest_bytes(raw)}")
        return sink.commit(list(tags or []))
    except BaseException:
        sink.abort()
        raise

