"""Streams that hash and count what passes through them, and the result type of layer operations."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from strata.archive.compression import Compression, Readable, Writable
from strata.digest import Digest, HashingReader

__all__ = ["HashReader", "HashWriter", "LayerInfo"]


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """What streaming a layer learned.

    ``diff_id``/``size``: sha256 and length of the uncompressed tar stream (the image config's
    ``rootfs.diff_ids`` entry). ``digest``/``compressed_size``: of the bytes as given or written (the
    blob), equal to ``diff_id``/``size`` when uncompressed. ``compression``: as detected or written.
    """

    diff_id: Digest
    size: int
    digest: Digest
    compressed_size: int
    compression: Compression = Compression.NONE


class HashReader(HashingReader):
    """Reads through ``stream``, hashing (sha256) and counting every byte returned (and copying it
    to ``tee`` if given); ``hashing = False`` only counts."""

    def __init__(self, stream: Readable, *, tee: Writable | None = None) -> None:
        super().__init__(stream, tee=tee)


class HashWriter:
    """Writes through to ``out`` (which may be ``None`` to only measure), hashing and counting."""

    def __init__(self, out: Writable | None) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        self._hash.update(data)
        n = len(data)
        self.size += n
        if self._out is not None:
            self._out.write(bytes(data) if not isinstance(data, bytes) else data)
        return n

    def flush(self) -> None:
        pass

    @property
    def digest(self) -> Digest:
        return Digest("sha256", self._hash.hexdigest())
