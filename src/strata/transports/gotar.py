"""Tar members as Docker's ``pkg/archive`` writes them through Go's ``archive/tar`` (the outer
``docker save`` archive): USTAR headers with the file-type bits in the mode (``0100644``, ``040755``,
``0120777``), uid/gid 0 as ``root``/``root``, whole-second mtimes, devmajor/minor written as zero;
a PAX header (``<dir>/PaxHeaders.0/<name>``) only for a size or mtime USTAR cannot hold; the end is
two zero blocks without padding to a 10 KiB record."""

from __future__ import annotations

import posixpath
import tarfile
from typing import IO, Any, BinaryIO

from strata.transports.tarball import TarWriter

__all__ = ["DIR_MODE", "FILE_MODE", "LINK_MODE", "GoTarWriter", "go_header"]

FILE_MODE = 0o100644
DIR_MODE = 0o40755
LINK_MODE = 0o120777
_BLOCK = tarfile.BLOCKSIZE
_MAX11 = 0o77777777777  # what an 11-digit octal field holds


def _octal(value: int, width: int) -> bytes:
    """Go's ``formatOctal``: zero-padded digits and a NUL; a value that does not fit is written as 0."""
    if value < 0 or value >= 8 ** (width - 1):
        value = 0
    return f"{value:0{width - 1}o}".encode() + b"\0"


def _text(value: str, width: int) -> bytes:
    raw = value.encode("ascii", "replace")[:width]
    return raw + b"\0" * (width - len(raw))


def _block(fields: list[bytes], ustar_ids: bool) -> bytes:
    """Join name..linkname and the USTAR tail, then Go's checksum (6 digits, NUL, space)."""
    head = b"".join(fields)
    ids = (_text("root", 32) * 2 + _octal(0, 8) * 2) if ustar_ids else b"\0" * 80
    block = head[:148] + b" " * 8 + head[156:] + b"ustar\x0000" + ids
    block += b"\0" * (_BLOCK - len(block))
    chksum = sum(block)
    return block[:148] + f"{chksum:06o}".encode() + b"\0 " + block[156:]


def _v7(name: str, kind: bytes, mode: int, size: int, mtime: int, link: str) -> list[bytes]:
    return [
        _text(name, 100), _octal(mode, 8), _octal(0, 8), _octal(0, 8), _octal(size, 12),
        _octal(mtime, 12), b" " * 8, kind, _text(link, 100),
    ]  # fmt: skip


def _pax(name: str, records: dict[str, str]) -> bytes:
    """Go's extended header: records sorted by key, each ``<len> key=value\\n`` counting itself."""
    data = b""
    for key in sorted(records):
        body = f" {key}={records[key]}\n"
        n = len(body) + 1
        while len(str(n)) + len(body) != n:
            n += 1
        data += f"{n}{body}".encode()
    head, tail = posixpath.split(name)
    pax_name = posixpath.join(head, "PaxHeaders.0", tail)[:100].rstrip("/")
    header = _block(_v7(pax_name, tarfile.XHDTYPE, 0, len(data), 0, ""), ustar_ids=False)
    return header + data + b"\0" * (-len(data) % _BLOCK)


def go_header(name: str, kind: bytes, mode: int, size: int, mtime: int, link: str = "") -> bytes:
    """The header block(s) Go's tar writer emits for one member of Docker's save archive."""
    records = {}
    if size > _MAX11:
        records["size"] = str(size)
    if mtime < 0 or mtime > _MAX11:
        records["mtime"] = str(mtime)
    prefix = _pax(name, records) if records else b""
    return prefix + _block(_v7(name, kind, mode, size, mtime, link), ustar_ids=True)


class GoTarWriter(TarWriter):
    """Streams members with :func:`go_header` headers; file data is copied kernel-side when it can be."""

    def __init__(self, out: IO[bytes] | BinaryIO) -> None:
        super().__init__(out, mtime=0)

    def add_dir(self, name: str, mtime: int) -> None:
        self._write(go_header(name.rstrip("/") + "/", tarfile.DIRTYPE, DIR_MODE, 0, mtime))

    def add_link(self, name: str, target: str, mtime: int) -> None:
        self._write(go_header(name, tarfile.SYMTYPE, LINK_MODE, 0, mtime, target))

    def add_file(self, name: str, data: bytes, mtime: int) -> None:
        self._write(go_header(name, tarfile.REGTYPE, FILE_MODE, len(data), mtime))
        self._write(data)
        self._pad(len(data))

    def add_file_stream(self, name: str, stream: Any, size: int, mtime: int) -> None:
        """``size`` bytes of ``stream`` as a file; a short stream is an error."""
        self._write(go_header(name, tarfile.REGTYPE, FILE_MODE, size, mtime))
        self._body(name, stream, size)

    def close(self) -> None:
        self._write(b"\0" * (_BLOCK * 2))
        self.out.flush()
