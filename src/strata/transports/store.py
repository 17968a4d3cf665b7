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

    def _put_layer(self, layer: Layer, diff_id: Digest, progress: Progress) -> LayerBlob:
        digest = layer.digest()
        short = digest.short
        known = self.engine.known_layer(digest)
        if known is None and (digest == diff_id or (self.known_alias and self.known_alias(digest, diff_id))):
            # an uncompressed layer: any stored blob of the same content will do
            for blob, _, _ in self.engine.blob_layers(diff_id):
                known = self.engine.known_layer(blob)
                if known is not None:
                    break
        if known is not None:
            self._existed.add(digest)
            progress(ProgressEvent(short, "Already exists"))
            return known
        progress(ProgressEvent(short, "Pulling fs layer"))
        with layer.compressed() as stream:
            lay = self.engine.ingest_layer(stream, digest, diff_id)
        progress(ProgressEvent(short, "Verifying Checksum"))
        progress(ProgressEvent(short, "Download complete"))
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
            if self.concurrency > 1 and len(layers) > 1:
                with ThreadPoolExecutor(self.concurrency) as pool:
                    futures = [pool.submit(self._put_layer, lay, d, safe) for lay, d in zip(layers, diff_ids, strict=True)]
                    stored = [f.result() for f in futures]
            else:
                stored = [self._put_layer(lay, d, safe) for lay, d in zip(layers, diff_ids, strict=True)]
            for lay, want in zip(stored, diff_ids, strict=True):
                if lay.diff_id != want:
                    raise DigestMismatch(f"layer {lay.digest} has diff ID {lay.diff_id}, configuration says {want}")
            raw_manifest = image.raw_manifest() if self.record_manifest else None
            image_id = self.engine.commit_image(image.raw_config(), stored, manifest_raw=raw_manifest, refs=tags)
        for lay, layer in zip(stored, layers, strict=True):
            if layer.digest() not in self._existed:
                safe(ProgressEvent(lay.digest.short, "Pull complete"))
        manifest_digest = image.digest() if raw_manifest is not None else None
        return WriteResult(image_id, manifest_digest, len(raw_manifest or b""))
