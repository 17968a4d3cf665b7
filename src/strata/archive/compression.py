"""Compression of layer streams: detection by magic bytes, streaming decompression, deterministic compression.

Reading::

    reader = open_decompressed(stream)      # gzip, bzip2, xz, zstd or plain tar
    reader.compression                       # Compression.GZIP, ...
    reader.read(n)                           # decompressed bytes, bounded memory

Every decompressor is driven by hand (``decompressobj``-style objects fed bounded chunks) so that

- concatenated streams (multi-member gzip, several zstd frames, ...) are read to the end,
- a stream that ends before its end-of-stream marker raises ``InvalidArchive`` (zstandard's own
  ``stream_reader`` silently returns a short result on truncation),
- zero padding after a complete stream is tolerated, any other trailing data is an error.

Writing: ``compressor(kind, out, level)`` returns a writer whose output depends only on the input bytes,
the kind, the level and the library in use (isal when installed, else zlib): gzip headers carry mtime 0,
no file name and no extra fields, so recompressing the same tar gives the same blob, bit for bit.
"""

from __future__ import annotations

import bz2
import enum
import lzma
import types
import zlib

from strata.digest import Readable, ReaderBase
from strata.errors import InvalidArchive

# zstandard (with platform) is loaded by the zstd reader and writer only: a plain or gzip tar (every
# layer a build commits) needs neither; typing's protocols matter to the type checker only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

_gzip_impl: types.ModuleType
try:  # ISA-L: several times faster than zlib for gzip
    from isal import isal_zlib as _gzip_impl

    _GZIP_ERRORS: tuple[type[BaseException], ...] = (_gzip_impl.error, zlib.error)
    _GZIP_DEFAULT_LEVEL = 2
    _GZIP_MAX_LEVEL = 3
except ImportError:  # pragma: no cover - isal is a declared dependency
    _gzip_impl = zlib
    _GZIP_ERRORS = (zlib.error,)
    _GZIP_DEFAULT_LEVEL = 6
    _GZIP_MAX_LEVEL = 9

__all__ = [
    "CompressWriter",
    "Compression",
    "DecompressReader",
    "PrefixedReader",
    "Readable",
    "Writable",
    "compressor",
    "detect_compression",
    "looks_like_tar",
    "open_decompressed",
]

IN_CHUNK = 64 * 1024  # compressed bytes fed to a decompressor at once
ZSTD_IN_CHUNK = 8 * 1024  # zstd output per call is unbounded: keep its input small
DEFAULT_OUT = 1 << 20


if TYPE_CHECKING:

    class Writable(Protocol):
        def write(self, data: bytes, /) -> int | None: ...

    class _Inflater(Protocol):
        eof: bool

        def step(self, data: bytes, limit: int) -> bytes:
            """Feed ``data`` (only when not ``pending()``) and return at most ``limit`` bytes."""

        def pending(self) -> bool:
            """More output may come without new input."""

        def leftover(self) -> bytes:
            """Input after the end of the stream (valid once ``eof`` and not ``pending()``)."""

    class _Deflater(Protocol):
        def compress(self, data: bytes, /) -> bytes: ...

        def flush(self) -> bytes: ...

else:  # at run time the name stands for "any object with write()"
    Writable = object


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    ZSTD = "zstd"

    @property
    def extension(self) -> str:
        return {"none": "", "gzip": ".gz", "bzip2": ".bz2", "xz": ".xz", "zstd": ".zst"}[self.value]


_MAGICS: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b\x08", Compression.GZIP),
    (b"BZh", Compression.BZIP2),
    (b"\xfd7zXZ\x00", Compression.XZ),
    (b"\x28\xb5\x2f\xfd", Compression.ZSTD),
)
_UNSUPPORTED: tuple[tuple[bytes, str], ...] = (
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x1f\x9d", "compress (.Z)"),
    (b"\x1f\xa0", "compress (.Z)"),
    (b"LZIP", "lzip"),
    (b"\x89LZO", "lzop"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"PK\x03\x04", "zip"),
    (b"\x5d\x00\x00", "lzma"),
)
_HEAD = 512


def looks_like_tar(head: bytes) -> bool:
    """True for the start of a tar stream: a header with a valid checksum, or end-of-archive zeros."""
    if len(head) < _HEAD:
        return False
    block = head[:_HEAD]
    if block.count(0) == _HEAD:
        return True
    field = block[148:156].rstrip(b"\x00 ")
    try:
        stored = int(field or b"-1", 8)
    except ValueError:
        return False
    total = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    signed = total - 2 * sum(b for b in block if b >= 0x80)  # some old tars used signed chars
    return stored in (total, signed)


def detect_compression(head: bytes) -> Compression | None:
    """The compression named by the first bytes of a stream; ``NONE`` for a tar; ``None`` if unknown."""
    for magic, kind in _MAGICS:
        if head.startswith(magic):
            return kind
    if looks_like_tar(head):
        return Compression.NONE
    return None


def _unsupported_message(head: bytes) -> str:
    for magic, name in _UNSUPPORTED:
        if head.startswith(magic):
            return f"unsupported compression: {name}"
    if not head:
        return "unsupported compression or not a tar archive: empty input"
    return "unsupported compression or not a tar archive: unrecognised data at offset 0"


class PrefixedReader(ReaderBase):
    """Replays ``prefix`` and then continues with ``stream``: a peeked-at stream made whole again."""

    def __init__(self, prefix: bytes, stream: Readable) -> None:
        self._prefix = prefix
        self._stream = stream

    def read(self, n: int = -1, /) -> bytes:
        if self._prefix:
            if n < 0:
                data, self._prefix = self._prefix + self._stream.read(), b""
                return data
            data, self._prefix = self._prefix[:n], self._prefix[n:]
            return data
        return self._stream.read(n)


def _read_exactly(stream: Readable, n: int) -> bytes:
    parts: list[bytes] = []
    got = 0
    while got < n:
        data = stream.read(n - got)
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


# --- decompression -------------------------------------------------------------------------------


class _ZlibInflater:
    def __init__(self) -> None:
        self._d = _gzip_impl.decompressobj(wbits=31)
        self._tail = b""
        self._full = False
        self.eof = False

    def step(self, data: bytes, limit: int) -> bytes:
        src = self._tail + data if self._tail else data
        out: bytes = self._d.decompress(src, limit)
        self._tail = self._d.unconsumed_tail
        self._full = len(out) >= limit
        self.eof = bool(self._d.eof)
        return out

    def pending(self) -> bool:
        return (bool(self._tail) or self._full) and not self.eof

    def leftover(self) -> bytes:
        return bytes(self._d.unused_data) + self._tail


class _BufferedInflater:
    """bz2 / lzma decompressors: they keep unconsumed input themselves (``needs_input``)."""

    def __init__(self, d: bz2.BZ2Decompressor | lzma.LZMADecompressor) -> None:
        self._d = d
        self.eof = False

    def step(self, data: bytes, limit: int) -> bytes:
        out = self._d.decompress(data, limit)
        self.eof = self._d.eof
        return out

    def pending(self) -> bool:
        return not self.eof and not self._d.needs_input

    def leftover(self) -> bytes:
        return self._d.unused_data


class _ZstdInflater:
    """zstd's ``decompressobj`` returns all output of its input at once: feed it small slices."""

    def __init__(self) -> None:
        import zstandard

        self._d = zstandard.ZstdDecompressor().decompressobj()
        self._out = b""
        self._queue = b""
        self.eof = False

    def step(self, data: bytes, limit: int) -> bytes:
        self._queue += data
        if not self._out and self._queue and not self.eof:
            feed, self._queue = self._queue[:ZSTD_IN_CHUNK], self._queue[ZSTD_IN_CHUNK:]
            self._out = self._d.decompress(feed)
            if self._d.eof:
                self.eof = True
                self._queue = bytes(self._d.unused_data) + self._queue
        out, self._out = self._out[:limit], self._out[limit:]
        return out

    def pending(self) -> bool:
        return bool(self._out) or (bool(self._queue) and not self.eof)

    def leftover(self) -> bytes:
        return self._queue


def _new_inflater(kind: Compression) -> _Inflater:
    if kind is Compression.GZIP:
        return _ZlibInflater()
    if kind is Compression.BZIP2:
        return _BufferedInflater(bz2.BZ2Decompressor())
    if kind is Compression.XZ:
        return _BufferedInflater(lzma.LZMADecompressor(format=lzma.FORMAT_XZ))
    return _ZstdInflater()


_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (
    *_GZIP_ERRORS,
    OSError,
    EOFError,
    ValueError,
    lzma.LZMAError,
)


def _decompress_errors(kind: Compression) -> tuple[type[BaseException], ...]:
    """What a decompressor of ``kind`` raises on bad data (zstandard's errors: only its own reader loads it)."""
    if kind is not Compression.ZSTD:
        return _DECOMPRESS_ERRORS
    import zstandard

    return (*_DECOMPRESS_ERRORS, zstandard.ZstdError)


class DecompressReader(ReaderBase):
    """A streaming reader of the decompressed bytes of ``stream``; never buffers a whole blob."""

    def __init__(self, stream: Readable, kind: Compression) -> None:
        self.compression = kind
        self._src = stream
        self._inflater: _Inflater | None = None if kind is Compression.NONE else _new_inflater(kind)
        self._next_in = b""  # input read past the end of one member, for the next one
        self._done = kind is Compression.NONE
        self._errors = _decompress_errors(kind)

    def read(self, n: int | None = -1, /) -> bytes:
        if self.compression is Compression.NONE:
            return self._src.read(-1 if n is None else n)
        if n is None or n < 0:
            return self._read_all()
        if n == 0:
            return b""
        try:
            return self._read_some(n)
        except InvalidArchive:
            raise
        except self._errors as e:
            raise InvalidArchive(f"invalid {self.compression.value} data: {e}") from e

    def _read_all(self) -> bytes:
        parts = []
        while chunk := self.read(DEFAULT_OUT):
            parts.append(chunk)
        return b"".join(parts)

    def _read_some(self, n: int) -> bytes:
        while not self._done:
            inflater = self._inflater
            assert inflater is not None
            if inflater.pending():
                out = inflater.step(b"", n)
            elif inflater.eof:
                self._next_member(inflater.leftover())
                continue
            else:
                chunk, self._next_in = self._next_in or self._src.read(IN_CHUNK), b""
                if not chunk:
                    raise InvalidArchive(f"unexpected EOF: {self.compression.value} stream is truncated")
                out = inflater.step(chunk, n)
            if out:
                return out
        return b""

    def _next_member(self, leftover: bytes) -> None:
        """After a complete stream: skip zero padding; more data starts another member/frame."""
        data = leftover.lstrip(b"\x00")
        while not data:
            chunk = self._src.read(IN_CHUNK)
            if not chunk:
                self._done = True
                return
            data = chunk.lstrip(b"\x00")
        self._inflater = _new_inflater(self.compression)
        self._next_in = data


def open_decompressed(stream: Readable, *, require_tar: bool = True) -> DecompressReader:
    """Detect the compression of ``stream`` from its first bytes and return a decompressing reader.

    With ``require_tar`` (the default) uncompressed input must look like a tar stream, so that an
    unknown compression is reported as such rather than as a broken tar header.
    Raises ``InvalidArchive("unsupported compression ...")`` for anything else.
    """
    head = _read_exactly(stream, _HEAD)
    kind = detect_compression(head)
    if kind is None and not require_tar:
        kind = Compression.NONE
    if kind is None:
        raise InvalidArchive(_unsupported_message(head))
    return DecompressReader(PrefixedReader(head, stream), kind)


# --- compression ---------------------------------------------------------------------------------


class _ZstdDeflater:
    def __init__(self, level: int) -> None:
        import zstandard

        self._c = zstandard.ZstdCompressor(level=level, write_checksum=True).compressobj()

    def compress(self, data: bytes, /) -> bytes:
        out: bytes = self._c.compress(data)
        return out

    def flush(self) -> bytes:
        out: bytes = self._c.flush()
        return out


class _Identity:
    def compress(self, data: bytes, /) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def _new_deflater(kind: Compression, level: int | None) -> _Deflater:
    if kind is Compression.GZIP:
        lvl = _GZIP_DEFAULT_LEVEL if level is None else max(0, min(level, _GZIP_MAX_LEVEL))
        deflater: _Deflater = _gzip_impl.compressobj(lvl, _gzip_impl.DEFLATED, 31)
        return deflater
    if kind is Compression.ZSTD:
        return _ZstdDeflater(3 if level is None else level)
    if kind is Compression.BZIP2:
        return bz2.BZ2Compressor(9 if level is None else level)
    if kind is Compression.XZ:
        return lzma.LZMACompressor(preset=6 if level is None else level)
    return _Identity()


class CompressWriter:
    """Writes compressed bytes to ``out``; ``close()`` ends the stream but leaves ``out`` open.

    Also counts and optionally hashes nothing: wrap ``out`` to learn the blob digest.
    """

    def __init__(self, kind: Compression, out: Writable, level: int | None = None) -> None:
        self.compression = kind
        self._out = out
        self._c = _new_deflater(kind, level)
        self._closed = False
        self.bytes_in = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview, /) -> int:
        if self._closed:
            raise ValueError("write to a closed CompressWriter")
        raw = bytes(data)
        self.bytes_in += len(raw)
        out = self._c.compress(raw)
        if out:
            self._out.write(out)
        return len(raw)

    def flush(self) -> None:
        """Nothing to do: compressed output is pushed as it is produced (sync flushes would cost ratio)."""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            tail = self._c.flush()
            if tail:
                self._out.write(tail)

    def __enter__(self) -> CompressWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def compressor(kind: Compression, out: Writable, level: int | None = None) -> CompressWriter:
    """A writer compressing into ``out`` with ``kind`` at ``level`` (the library default if ``None``).

    gzip uses ISA-L (levels 0-3, default 2) when available, else zlib (1-9, default 6); output is
    deterministic for a given library: mtime 0, no name, no comment.
    """
    return CompressWriter(kind, out, level)
