"""The local store as a sink: pull and load write through ``StoreSink``.

Layer blobs are ingested (verified against their digest and the config's diff IDs) outside any
transaction, up to ``concurrency`` at once; the config, manifest, image record and tags then become
visible in one transaction, so an interrupted write shows nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from strata.digest import Digest
from strata.errors import DigestMismatch, InvalidArchive
from strata.image.api import Image, Layer
from strata.reference import Reference
from strata.store.blobs import LayerBlob
from strata.transports.base import NO_PROGRESS, Progress, ProgressEvent, WriteResult

if TYPE_CHECKING:
    from strata.engine import Engine

__all__ = ["StoreSink"]


class StoreSink:
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
        self.concurrency = concurrency
        self.record_manifest = record_manifest
        self.known_alias = known_alias
        self._existed: set[Digest] = set()

    def _stored(self, layer: Layer, diff_id: Digest) -> LayerBlob | None:
        """The store's copy of a layer: the same blob, or the same content under another blob digest
        when that is safe to know (uncompressed source, or a blob we pushed or pulled before)."""
        digest = layer.digest()
        known = self.engine.known_layer(digest)
        if known is None and (digest == diff_id or (self.known_alias and self.known_alias(digest, diff_id))):
            for blob, _, _ in self.engine.blob_layers(diff_id):
                known = self.engine.known_layer(blob)
                if known is not None:
                    break
        return known

    def _fetch_layer(self, layer: Layer, diff_id: Digest, progress: Progress) -> LayerBlob:
        digest = layer.digest()
        progress(ProgressEvent(digest.short, "Pulling fs layer"))
        with layer.compressed() as stream:
            lay = self.engine.ingest_layer(stream, digest, diff_id)
        progress(ProgressEvent(digest.short, "Verifying Checksum"))
        progress(ProgressEvent(digest.short, "Download complete"))
        return lay

    def write(self, image: Image, tags: list[Reference], progress: Progress = NO_PROGRESS) -> WriteResult:
        config = image.config()
        layers = image.layers()
        diff_ids = config.diff_ids
        if len(diff_ids) != len(layers):
            raise InvalidArchive(
                f"image has {len(layers)} layers but its configuration lists {len(diff_ids)} diff IDs"
            )
        lock = threading.Lock()

        def safe(ev: ProgressEvent) -> None:
            with lock:
                progress(ev)

        with self.engine.writing():
            found = [self._stored(lay, d) for lay, d in zip(layers, diff_ids, strict=True)]
            for lay, have in zip(layers, found, strict=True):
                if have is not None:
                    self._existed.add(lay.digest())
                    safe(ProgressEvent(lay.digest().short, "Already exists"))
            todo = [(i, lay, d) for i, (lay, d, have) in enumerate(zip(layers, diff_ids, found, strict=True)) if have is None]
            if self.concurrency > 1 and len(todo) > 1:
                with ThreadPoolExecutor(self.concurrency) as pool:
                    futures = {i: pool.submit(self._fetch_layer, lay, d, safe) for i, lay, d in todo}
                    for i, fut in futures.items():
                        found[i] = fut.result()
            else:
                for i, lay, d in todo:
                    found[i] = self._fetch_layer(lay, d, safe)
            stored = [f for f in found if f is not None]
            for blob, want in zip(stored, diff_ids, strict=True):
                if blob.diff_id != want:
                    raise DigestMismatch(f"layer {blob.digest} has diff ID {blob.diff_id}, configuration says {want}")
            raw_manifest = image.raw_manifest() if self.record_manifest else None
            image_id = self.engine.commit_image(image.raw_config(), stored, manifest_raw=raw_manifest, refs=tags)
        for blob, layer in zip(stored, layers, strict=True):
            if layer.digest() not in self._existed:
                safe(ProgressEvent(blob.digest.short, "Pull complete"))
        manifest_digest = image.digest() if raw_manifest is not None else None
        return WriteResult(image_id, manifest_digest, len(raw_manifest or b""))
