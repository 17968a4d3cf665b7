"""The local store as a source (``StoreSource``: push, save) and a sink (``StoreSink``: pull, load).

Layer blobs are ingested (verified against their digest and diff ID) outside any transaction; the
config, manifest, image record and tags become visible in one transaction at ``commit``, so an
interrupted copy shows nothing. The sink holds the store like a writer from ``begin`` to the end."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from strata.digest import Digest
from strata.engine import Engine
from strata.errors import StrataError
from strata.image.api import Image, Layer, SimpleImage
from strata.image.spec import Descriptor, Manifest, Platform
from strata.reference import Reference
from strata.store.blobs import LayerBlob
from strata.transports.base import MADE_LOCALLY, BlobInfo, Wording, WriteResult

__all__ = ["PULL_WORDING", "StoreSink", "StoreSource", "stored_image"]

PULL_WORDING = Wording(
    reused="Already exists",
    start="Pulling fs layer",
    transfer="Downloading",
    stored=("Verifying Checksum", "Download complete"),
    committed="Pull complete",
)


def stored_image(engine: Engine, image_id: Digest) -> Image:
    """The stored image; one without a manifest of its own (imported, committed) is marked
    ``MADE_LOCALLY``, so a registry gets it as Docker pushes it."""
    image = engine.image(image_id)
    if isinstance(image, SimpleImage) and engine.record(image_id).manifest is None:
        image.extra[MADE_LOCALLY] = True
    return image


class StoreSource:
    """The stored image ``name`` (a reference or an ID)."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine, self.name = engine, name

    def image(self, platform: Platform | None = None) -> Image:
        return stored_image(self.engine, self.engine.resolve_image(self.name))

    def tags(self) -> list[Reference]:
        return []


def _info(lay: LayerBlob, media_type: str) -> BlobInfo:
    return BlobInfo(Descriptor(media_type, lay.digest, lay.size), lay.diff_id, handle=lay)


class StoreSink:
    """Writes images into ``engine``'s store, one ``begin``…``commit`` at a time."""

    wording = PULL_WORDING
    supports_index = False
    reuse_concurrency = 1  # the store's SQLite connection belongs to the calling thread

    def __init__(
        self,
        engine: Engine,
        *,
        concurrency: int = 3,
        record_manifest: bool = True,
        known_alias: Callable[[Digest, Digest], bool] | None = None,
    ) -> None:
        """``known_alias(blob, diff_id)`` tells whether ``blob`` is known (e.g. from an earlier push)
        to be a compressed form of the layer ``diff_id``: a stored layer then serves without a download."""
        self.engine = engine
        self.concurrency = max(1, concurrency)
        self.record_manifest = record_manifest
        self.known_alias = known_alias
        self._hold: contextlib.ExitStack | None = None
        self._pending: tuple[Image, list[LayerBlob]] | None = None

    def begin(self, image: Image | None = None) -> None:
        self._hold = contextlib.ExitStack()
        self._hold.enter_context(self.engine.writing())

    def reuse_blob(self, layer: Layer) -> BlobInfo | None:
        """The store's copy of a layer: the same blob, or the same content under another blob digest
        when that is safe to know (uncompressed source, or a blob we pushed or pulled before)."""
        digest, diff_id = layer.digest(), layer.diff_id()
        known = self.engine.known_layer(digest)
        if known is None and (digest == diff_id or (self.known_alias and self.known_alias(digest, diff_id))):
            for blob, _, _ in self.engine.blob_layers(diff_id):
                known = self.engine.known_layer(blob)
                if known is not None:
                    break
        return None if known is None else _info(known, layer.media_type())

    def put_blob(self, layer: Layer) -> BlobInfo:
        with layer.compressed() as stream:
            lay = self.engine.ingest_layer(stream, layer.digest(), layer.diff_id())
        return _info(lay, layer.media_type())

    def put_config(self, image: Image) -> None:
        return None  # written with the image record, in commit

    def put_manifest(self, image: Image, blobs: list[BlobInfo], *, child: bool = False) -> Manifest:
        if child:
            raise StrataError('copying multiple images: destination transport "strata" does not support copying multiple images as a group')
        layers = [b.handle for b in blobs if isinstance(b.handle, LayerBlob)]
        assert len(layers) == len(blobs), "blobs put elsewhere"
        self._pending = (image, layers)
        return image.manifest()

    def put_index(self, raw: bytes, media_type: str, *, child: bool = False) -> Digest:
        raise StrataError('copying multiple images: destination transport "strata" does not support copying multiple images as a group')

    def commit(self, tags: list[Reference]) -> WriteResult:
        assert self._pending is not None, "commit before put_manifest"
        image, layers = self._pending
        raw_manifest = image.raw_manifest() if self.record_manifest else None
        try:
            image_id = self.engine.commit_image(image.raw_config(), layers, manifest_raw=raw_manifest, refs=tags)
        finally:
            self._release()
        manifest_digest = image.digest() if raw_manifest is not None else None
        return WriteResult(image_id, manifest_digest, len(raw_manifest or b""))

    def abort(self) -> None:
        self._release()  # ingested blobs no record names are garbage for the next collection

    def _release(self) -> None:
        self._pending = None
        if self._hold is not None:
            self._hold.close()
            self._hold = None
