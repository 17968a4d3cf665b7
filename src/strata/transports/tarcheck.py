"""An image archive's tar stream read as Docker 20.10's ``load`` reads it: what is not a known compression
is taken as a plain tar (archive.DecompressStream), and the stream is held to Go's ``archive/tar`` rules
as it passes -- a header block with a bad checksum is ``archive/tar: invalid tar header``, a stream that
ends inside a header or a member's data is ``unexpected EOF`` (Python's tarfile ends quietly at a cut
header), both in the daemon's ``Error processing tar file(exit status 1): …`` words. An end at a block
boundary (end-of-archive blocks or not) or inside a member's padding is the archive's end, as in Go."""

from __future__ import annotations

from strata.archive.compression import PrefixedReader, Readable, looks_like_tar, open_decompressed
from strata.errors import InvalidArchive

__all__ = ["GoTarCheck", "docker_tar_stream"]

_BLOCK = 512
_NO_DATA = frozenset(b"123456")  # Go's isHeaderOnlyType: links, devices, directories, fifos
_PREFIX = "Error processing tar file(exit status 1): "


def docker_tar_stream(stream: Readable) -> GoTarCheck:
    """``stream`` decompressed (gzip, bzip2, xz, zstd) or as it is, checked as Go's tar reader would."""
    head = b""
    while len(head) < _BLOCK and (data := stream.read(_BLOCK - len(head))):
        head += data
    try:
        plain: Readable = open_decompressed(PrefixedReader(head, stream), require_tar=True)
    except InvalidArchive as e:
        if not str(e).startswith("unsupported compression or not a tar archive"):
            raise  # a compression Docker has not either (lz4, 7z …)
        plain = PrefixedReader(head, stream)
    return GoTarCheck(plain)


def _size(block: bytes) -> int:
    """The header's size field: octal, or GNU base-256 (a set high bit)."""
    field = block[124:136]
    if field[0] & 0x80:
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.rstrip(b"\x00 ").lstrip(b" ") or b"0"
    try:
        return int(text, 8)
    except ValueError:
        raise InvalidArchive(_PREFIX + "archive/tar: invalid tar header") from None


class GoTarCheck:
    """A reader passing ``stream`` through while walking its tar blocks (see the module's text)."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self._header = b""  # the header block read so far
        self._skip = 0  # data and padding bytes still to come
        self._padding = 0  # how many of them are padding
        self._zeros = 0  # end-of-archive blocks seen
        self._done = False
        self._pending = b""  # read ahead (the block after a first zero block), not yet given out
        self.ended = False  # the stream ended where Go's reader ends an archive (a block boundary, padding)

    def read(self, n: int = -1, /) -> bytes:
        if self._pending:
            data = self._pending if n < 0 else self._pending[:n]
            self._pending = self._pending[len(data):]
            return data
        data = self._stream.read(n)
        if not self._done:
            if data:
                self._walk(data)
            elif self._skip > self._padding or self._header:
                raise InvalidArchive(_PREFIX + "unexpected EOF")
            else:
                self.ended = True
            if self._zeros == 1 and not self._done:  # tarfile stops at one zero block, Go reads the next
                self._second_block()
        return data

    def _second_block(self) -> None:
        more = b""
        while len(self._header) + len(more) < _BLOCK and (chunk := self._stream.read(_BLOCK - len(self._header) - len(more))):
            more += chunk
        self._pending += more
        if len(self._header) + len(more) < _BLOCK:
            if self._header or more:
                raise InvalidArchive(_PREFIX + "unexpected EOF")
            self.ended = True
            return
        self._walk(more)

    def _walk(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._done:
            if self._skip:
                step = min(self._skip, len(view))
                self._skip -= step
                self._padding = min(self._padding, self._skip)
                view = view[step:]
                continue
            step = min(_BLOCK - len(self._header), len(view))
            self._header += bytes(view[:step])
            view = view[step:]
            if len(self._header) == _BLOCK:
                self._end_header(self._header)
                self._header = b""

    def _end_header(self, block: bytes) -> None:
        if block.count(0) == _BLOCK:
            self._zeros += 1
            self._done = self._zeros == 2
            return
        if self._zeros or not looks_like_tar(block):  # Go: a zero block must be followed by another
            raise InvalidArchive(_PREFIX + "archive/tar: invalid tar header")
        size = 0 if block[156] in _NO_DATA else _size(block)
        self._skip = -(-size // _BLOCK) * _BLOCK
        self._padding = self._skip - size
