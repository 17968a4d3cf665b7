"""The image model: ``Layer`` and ``Image`` protocols, and the plain implementations transports share.

A *source* (local store, registry, docker-archive, OCI layout) returns an ``Image``; a *sink* takes one
(``strata.transports.base.ImageSink``). Layers expose both forms of their content:

- ``compressed()``: the blob exactly as stored/transferred, whose sha256 is ``digest()``;
- ``uncompressed()``: the tar stream, whose sha256 is ``diff_id()``.

For an uncompressed blob both are the same stream and ``digest() == diff_id()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable

from strata.digest import Digest, HashingReader
from strata.image import mediatypes as mt
from strata.image.spec import Descriptor, ImageConfig, Manifest

__all__ = [
    "BlobLayer",
    "Image",
    "Layer",
    "Opener",
    "SimpleImage",
    "image_manifest",
]

Opener = Callable[[], AbstractContextManager[BinaryIO]]


@runtime_checkable
class Layer(Protocol):
    def digest(self) -> Digest: ...
    def diff_id(self) -> Digest: ...
    def size(self) -> int: ...
    def media_type(self) -> str: ...
    def compressed(self) -> AbstractContextManager[BinaryIO]: ...
    def uncompressed(self) -> AbstractContextManager[BinaryIO]: ...


@runtime_checkable
class Image(Protocol):
    def raw_manifest(self) -> bytes: ...
    def manifest(self) -> Manifest: ...
    def raw_config(self) -> bytes: ...
    def config(self) -> ImageConfig: ...
    def image_id(self) -> Digest: ...
    def digest(self) -> Digest: ...
    def layers(self) -> list[Layer]: ...


@dataclass
class BlobLayer:
    """A layer backed by an opener of its blob; ``diff_id`` is given or learnt by hashing the tar."""

    descriptor: Descriptor
    open_blob: Opener
    known_diff_id: Digest | None = None

    def digest(self) -> Digest:
        return self.descriptor.digest

    def size(self) -> int:
        return self.descriptor.size

    def media_type(self) -> str:
        return self.descriptor.media_type

    def is_compressed(self) -> bool:
        return self.known_diff_id is not None and self.known_diff_id != self.descriptor.digest

    def diff_id(self) -> Digest:
        if self.known_diff_id is None:
            with self.uncompressed() as f:
                r = HashingReader(f)
                r.drain()
                self.known_diff_id = r.digest
        return self.known_diff_id

    def compressed(self) -> AbstractContextManager[BinaryIO]:
        return self.open_blob()

    @contextmanager
    def _decompressed(self) -> Iterator[BinaryIO]:
        from strata.archive.compression import open_decompressed

        with self.open_blob() as raw:
            yield open_decompressed(raw)  # type: ignore[misc]

    def uncompressed(self) -> AbstractContextManager[BinaryIO]:
        if self.known_diff_id is not None and self.known_diff_id == self.descriptor.digest:
            return self.open_blob()
        return self._decompressed()


def image_manifest(config: ImageConfig, layers: list[Layer], media_type: str = mt.DOCKER_MANIFEST) -> Manifest:
    """A manifest describing ``config`` and ``layers`` as they are."""
    config_type = mt.DOCKER_CONFIG if media_type == mt.DOCKER_MANIFEST else mt.OCI_CONFIG
    cfg = Descriptor(config_type, config.image_id, len(config.raw))
    descs = [Descriptor(lay.media_type(), lay.digest(), lay.size()) for lay in layers]
    return Manifest.build(cfg, descs, media_type)


@dataclass
class SimpleImage:
    """An image from parts; the manifest is built from the layers when none is given."""

    config_obj: ImageConfig
    layer_list: list[Layer]
    manifest_obj: Manifest | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def manifest(self) -> Manifest:
        if self.manifest_obj is None:
            self.manifest_obj = image_manifest(self.config_obj, self.layer_list)
        return self.manifest_obj

    def raw_manifest(self) -> bytes:
        return self.manifest().raw

    def raw_config(self) -> bytes:
        return self.config_obj.raw

    def config(self) -> ImageConfig:
        return self.config_obj

    def image_id(self) -> Digest:
        return self.config_obj.image_id

    def digest(self) -> Digest:
        return self.manifest().digest

    def layers(self) -> list[Layer]:
        return list(self.layer_list)
