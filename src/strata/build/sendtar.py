"""``build --compress``: the context tar Docker's CLI sends, byte for byte (Go's archive/tar as Docker's
pkg/archive fills it: owner 0:0 but the names of the file's own owner (the CLI's host looks them up),
the mode with its file type bits, mtime in whole seconds,
USTAR headers with the prefix split, PAX records when a name, a link or an xattr needs them; entries in
``filepath.Walk`` order, a file's further hard links as links, two zero blocks at the end), gzipped by
Go's default level (``compat.goflate``): the size the ``Sending build context`` line then shows.

Its bytes are made (never held: chunks) only to be counted; past ``EXACT_LIMIT`` bytes of tar that pure
Python compressor would cost too long, and zlib's level 6 stands in (a close size, not Docker's)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from strata.build.scoped import open_in_root

__all__ = ["EXACT_LIMIT", "StreamGzipSize", "compressed_size", "dockerfile_tar", "tar_chunks"]

EXACT_LIMIT = 1 << 20  # about a second a hundred kilobytes at worst (text, short matches)
_BLOCK = 512
_KINDS = {stat.S_IFREG: b"0", stat.S_IFLNK: b"2", stat.S_IFCHR: b"3", stat.S_IFBLK: b"4", stat.S_IFDIR: b"5",
          stat.S_IFIFO: b"6"}  # fmt: skip


def compressed_size(entries: list[tuple[str, os.stat_result, str]], root_fd: int, tar_bytes: int,
                    added: bytes | None = None) -> int:  # fmt: skip
    """The gzip size of the context tar (``tar_bytes``: its size, from ``build.sendsize``)."""
    chunks = tar_chunks(entries, root_fd, added)
    if tar_bytes <= EXACT_LIMIT:
        from strata.compat.goflate import gzip_size

        return gzip_size(chunks)
    import zlib

    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    return 10 + sum(len(z.compress(c)) for c in chunks) + len(z.flush()) + 8


def tar_chunks(entries: list[tuple[str, os.stat_result, str]], root_fd: int, added: bytes | None = None) -> Iterator[bytes]:
    """The tar's bytes: ``entries`` (path, lstat, link target) in ``filepath.Walk`` order; ``added``: a
    Dockerfile from elsewhere the CLI puts in as ``.dockerfile.`` (a name of its own: Docker's is random)."""
    seen: dict[tuple[int, int], str] = {}
    for rel, st, link in sorted(entries, key=lambda e: e[0].split("/")):
        kind = stat.S_IFMT(st.st_mode)
        if kind not in _KINDS:
            continue  # a socket: Docker's CLI leaves it out
        name = rel + "/" if kind == stat.S_IFDIR else rel
        if kind == stat.S_IFREG and st.st_nlink > 1:
            ident = (st.st_dev, st.st_ino)
            if ident in seen:
                yield _header(name, st, b"1", seen[ident], 0)
                continue
            seen[ident] = rel
        size = st.st_size if kind == stat.S_IFREG else 0
        yield _header(name, st, _KINDS[kind], link, size, _capability(root_fd, rel, kind))
        if size:
            yield from _content(root_fd, rel, size)
    if added is not None:
        st = os.stat_result((0o100600, 0, 0, 1, 0, 0, len(added), 0, 0, 0))
        yield _header(".dockerfile.00000000000000000000", st, b"0", "", len(added))
        yield added + bytes(-len(added) % _BLOCK)
    yield bytes(2 * _BLOCK)


def _content(root_fd: int, rel: str, size: int) -> Iterator[bytes]:
    fd = open_in_root(root_fd, rel, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        left = size
        while left > 0 and (chunk := f.read(min(left, 1 << 20))):
            left -= len(chunk)
            yield chunk
    yield bytes(left + (-size % _BLOCK))  # a file that shrank meanwhile: what Go's writer pads


def _capability(root_fd: int, rel: str, kind: int) -> bytes | None:
    if kind == stat.S_IFLNK:
        return None
    try:
        fd = open_in_root(root_fd, rel, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return os.getxattr(fd, "security.capability")
    except OSError:
        return None
    finally:
        os.close(fd)


def _mode(st: os.stat_result) -> int:
    kind = stat.S_IFMT(st.st_mode)
    return (st.st_mode & 0o7777) | (kind if kind in _KINDS else 0)


def _octal(value: int, width: int) -> bytes:
    """Go's formatOctal: zero-padded, a NUL after (0 when it does not fit)."""
    digits = f"{value:o}" if 0 <= value < 8 ** (width - 1) else "0"
    return digits.rjust(width - 1, "0").encode() + b"\0"


def _field(text: bytes, width: int) -> bytes:
    return text[:width].ljust(width, b"\0")


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """Go's splitUSTARPath: (prefix, name) split at the last ``/`` the prefix may end at; a name of
    100 bytes or fewer needs none."""
    if len(name) <= 100:
        return b"", name
    length = len(name)
    if length > 156:
        length = 156
    elif name[length - 1 : length] == b"/":
        length -= 1
    i = name.rfind(b"/", 0, length)
    if i <= 0 or len(name) - i - 1 > 100 or len(name) - i - 1 == 0 or i > 155:
        return None
    return name[:i], name[i + 1 :]


def _header(name: str, st: os.stat_result, flag: bytes, link: str, size: int, cap: bytes | None = None) -> bytes:
    raw = name.encode("utf-8", "surrogateescape")
    raw_link = link.encode("utf-8", "surrogateescape")
    records: list[tuple[str, bytes]] = []
    split = _split_ustar(raw) if raw.isascii() else None
    if split is None:
        records.append(("path", raw))
    if len(raw_link) > 100 or not raw_link.isascii():
        records.append(("linkpath", raw_link))
    if cap is not None:
        records.append(("SCHILY.xattr.security.capability", cap))
    mtime = int(st.st_mtime)
    dev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if flag in (b"3", b"4") else (0, 0)
    names = (_owner("u", st.st_uid), _owner("g", st.st_gid))
    if not records:
        assert split is not None
        return _block(split[1], split[0], flag, raw_link, _mode(st), size, mtime, dev, names)
    out = b""
    data = b"".join(_record(k, v) for k, v in sorted(records))
    cut = raw.rfind(b"/") + 1  # Go's path.Split, then path.Join(dir, "PaxHeaders.0", file)
    pax_name = b"/".join(p for p in (raw[:cut].rstrip(b"/"), b"PaxHeaders.0", raw[cut:]) if p)
    out += _block(_ascii(pax_name)[:100].rstrip(b"/"), b"", b"x", b"", 0, len(data), 0, None)
    out += data + bytes(-len(data) % _BLOCK)
    return out + _block(_ascii(raw), b"", flag, _ascii(raw_link), _mode(st), size, mtime, dev, names)


_NAMES: dict[tuple[str, int], bytes] = {}


def _owner(kind: str, ident: int) -> bytes:
    """Go's user/group lookup of an owner (none found: no name)."""
    known = _NAMES.get((kind, ident))
    if known is None:
        import grp
        import pwd

        try:
            text = pwd.getpwuid(ident).pw_name if kind == "u" else grp.getgrgid(ident).gr_name
        except (KeyError, OverflowError):
            text = ""
        known = _NAMES[(kind, ident)] = text.encode("utf-8", "surrogateescape")
    return known


def _ascii(raw: bytes) -> bytes:
    return bytes(b for b in raw if b < 0x80)


def _record(key: str, value: bytes) -> bytes:
    body = b" " + key.encode() + b"=" + value + b"\n"
    n = len(body) + len(str(len(body)))
    if len(str(n)) != len(str(len(body))):
        n += 1
    return str(n).encode() + body


def _block(name: bytes, prefix: bytes, flag: bytes, link: bytes, mode: int, size: int, mtime: int,
           dev: tuple[int, int] | None, names: tuple[bytes, bytes] = (b"", b"")) -> bytes:  # fmt: skip
    """One header block; ``dev`` None: a PAX extended header's (Go's writeRawFile leaves them zero)."""
    octal_dev = b"".join(_octal(d, 8) for d in dev) if dev is not None else bytes(16)
    block = bytearray(
        _field(name, 100) + _octal(mode, 8) + _octal(0, 8) + _octal(0, 8) + _octal(size, 12) + _octal(mtime, 12)
        + b" " * 8 + flag + _field(link, 100) + b"ustar\x0000" + _field(names[0], 32) + _field(names[1], 32) + octal_dev + _field(prefix, 155)
        + bytes(12)
    )  # fmt: skip
    block[148:156] = f"{sum(block):06o}".encode() + b"\0 "
    return bytes(block)


class StreamGzipSize:
    """The ``--compress`` size of a context read from stdin (the CLI gzips what it reads, as it is):
    Go's up to ``EXACT_LIMIT`` bytes, zlib's past it."""

    def __init__(self) -> None:
        import zlib

        from strata.compat.goflate import GzipCounter

        self.exact: GzipCounter | None = GzipCounter()
        self.zlib = zlib.compressobj(6, zlib.DEFLATED, -15)
        self.read = self.zlib_bytes = 0

    def write(self, data: bytes) -> None:
        self.read += len(data)
        if self.exact is not None and self.read > EXACT_LIMIT:
            self.exact = None
        if self.exact is not None:
            self.exact.write(data)
        self.zlib_bytes += len(self.zlib.compress(data))

    def size(self) -> int:
        if self.exact is not None:
            return self.exact.close()
        return 10 + self.zlib_bytes + len(self.zlib.flush()) + 8


def dockerfile_tar(data: bytes) -> bytes:
    """The tar Docker's CLI makes of a Dockerfile read from stdin: the file it wrote (``Dockerfile``, 0644,
    its own owner, written now) alone, as ``archive.Tar`` packs it."""
    import time

    st = os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, os.getuid(), os.getgid(), len(data), 0, int(time.time()), 0))
    return _header("Dockerfile", st, b"0", "", len(data)) + data + bytes(-len(data) % _BLOCK + 2 * _BLOCK)
