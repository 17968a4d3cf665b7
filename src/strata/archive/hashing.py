"""Streams that hash and count what passes through them, and the result type of layer operations."""

from __future__ import annotations

import hashlib

from strata.archive.compression import Compression, Readable, Writable
from strata.digest import Digest, HashingReader

__all__ = ["HashReader", "HashWriter", "LayerInfo"]


class LayerInfo:
    """What streaming a layer learned.

    ``diff_id``/``size``: sha256 and length of the uncompressed tar stream (the image config's
    ``rootfs.diff_ids`` entry). ``digest``/``compressed_size``: of the bytes as given or written (the
    blob), equal to ``diff_id``/``size`` when uncompressed. ``compression``: as detected or written.
    """

    # a frozen record written out (not a dataclass: a build's commit loads no dataclasses, inspect, ast)
    __slots__ = ("diff_id", "size", "digest", "compressed_size", "compression")  # noqa: RUF023 - fields' order
    diff_id: Digest
    size: int
    digest: Digest
    compressed_size: int
    compression: Compression

    def __init__(self, diff_id: Digest, size: int, digest: Digest, compressed_size: int,
                 compression: Compression = Compression.NONE) -> None:
        for name, value in zip(self.__slots__, (diff_id, size, digest, compressed_size, compression), strict=True):
            object.__setattr__(self, name, value)

    def _fields(self) -> tuple[object, ...]:
        return (self.diff_id, self.size, self.digest, self.compressed_size, self.compression)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        return self._fields() == other._fields() if type(other) is LayerInfo else NotImplemented

    def __hash__(self) -> int:
        return hash(self._fields())

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return LayerInfo, self._fields()

    def __repr__(self) -> str:
        return (f"LayerInfo(diff_id={self.diff_id!r}, size={self.size!r}, digest={self.digest!r}, "
                f"compressed_size={self.compressed_size!r}, compression={self.compression!r})")


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
