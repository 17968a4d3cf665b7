"""Outer archives (``docker save`` / ``oci-archive`` tarballs): random access to members by name.

Nothing is extracted. ``OuterArchive.open(path_or_stream)`` indexes the tar once (headers only, data
is skipped with seeks) and then ``open_member(name)`` gives a reader over that member's bytes in
place, so a layer is read exactly once more, by whoever consumes it (``apply_layer``, a blob copy).

- An uncompressed archive file is used where it lies. A compressed archive (gzip, bzip2, xz,
  zstd) or a non-seekable stream (stdin) is first decompressed into an anonymous temporary file in
  ``spool_dir`` (deleted on ``close()``): the one copy random access needs.
- Member names follow the layer rules (no absolute names, no ``..``). Symlinks and hardlinks are
  resolved inside the archive (Docker 25+ ``save`` makes ``<id>/layer.tar`` a symlink into
  ``blobs/sha256``); a link leading outside the archive, a loop, or a device member is refused
  with ``InvalidArchive``. A name that occurs twice means its last occurrence, as for tar.
- Truncated or damaged archives are refused while indexing.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from typing import IO, BinaryIO, cast

from strata.archive.compression import Compression, Readable, open_decompressed
from strata.archive.names import join_name, split_member_name
from strata.archive.tarread import open_tar_file
from strata.errors import InvalidArchive

__all__ = ["MemberReader", "OuterArchive"]

MAX_LINK_DEPTH = 32
DEFAULT_READ_LIMIT = 64 << 20


@dataclass(frozen=True, slots=True)
class _File:
    offset: int
    size: int


class MemberReader(io.RawIOBase):
    """A read-only, seekable view of one member's bytes (``os.pread``: readers are independent)."""

    def __init__(self, fd: int, offset: int, size: int, name: str) -> None:
        super().__init__()
        self._fd = fd
        self._start = offset
        self._size = size
        self._pos = 0
        self.name = name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    @property
    def size(self) -> int:
        return self._size

    def read(self, n: int | None = -1, /) -> bytes:
        left = self._size - self._pos
        if n is None or n < 0 or n > left:
            n = left
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._start + self._pos)
        if not data:
            raise InvalidArchive(f"unexpected EOF: archive member {self.name!r} is truncated")
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)


class OuterArchive:
    """Members of an image archive tarball by name, without extracting it."""

    def __init__(self, fd: int, owned_file: IO[bytes] | None, compression: Compression) -> None:
        self._fd = fd
        self._owned = owned_file
        self.compression = compression
        self._files: dict[str, _File] = {}
        self._links: dict[str, tuple[str, bool]] = {}  # name -> (target name, is hardlink)
        self._dirs: set[str] = set()

    # --- opening --------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        source: str | os.PathLike[str] | Readable,
        *,
        spool_dir: str | os.PathLike[str] | None = None,
    ) -> OuterArchive:
        """Index the archive at ``source`` (a path or a readable binary stream)."""
        if isinstance(source, (str, os.PathLike)):
            f: IO[bytes] = open(source, "rb")  # noqa: SIM115 - owned by the archive, closed in close()
            try:
                archive = cls._from_file(f, spool_dir)
            except BaseException:
                f.close()
                raise
            if archive._owned is not f:
                f.close()
            return archive
        return cls._from_stream(source, spool_dir)

    @classmethod
    def _from_file(cls, f: IO[bytes], spool_dir: str | os.PathLike[str] | None) -> OuterArchive:
        reader = open_decompressed(cast(Readable, f))
        if reader.compression is Compression.NONE and f.seekable():
            archive = cls(f.fileno(), f, Compression.NONE)
        else:
            archive = cls._spool(reader, reader.compression, spool_dir)
        archive._index()
        return archive

    @classmethod
    def _from_stream(cls, stream: Readable, spool_dir: str | os.PathLike[str] | None) -> OuterArchive:
        reader = open_decompressed(stream)
        archive = cls._spool(reader, reader.compression, spool_dir)
        archive._index()
        return archive

    @classmethod
    def _spool(
        cls, reader: Readable, compression: Compression, spool_dir: str | os.PathLike[str] | None
    ) -> OuterArchive:
        tmp = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - owned by the archive
        try:
            shutil.copyfileobj(cast(BinaryIO, reader), tmp, 1 << 20)
            tmp.flush()
        except BaseException:
            tmp.close()
            raise
        return cls(tmp.fileno(), tmp, compression)

    def _index(self) -> None:
        f = os.fdopen(os.dup(self._fd), "rb")
        try:
            f.seek(0)
            with open_tar_file(f) as members:
                for member in members:
                    self._add(member)
        finally:
            f.close()

    def _add(self, m: tarfile.TarInfo) -> None:
        name = join_name(split_member_name(m.name))
        self._files.pop(name, None)
        self._links.pop(name, None)
        if m.isdir():
            self._dirs.add(name)
        elif m.isreg():
            if m.issparse():
                raise InvalidArchive(f"invalid archive: member {m.name!r} is a sparse file")
            self._files[name] = _File(m.offset_data, m.size)
        elif m.issym():
            base = posixpath.dirname(name)
            target = posixpath.normpath(posixpath.join(base, m.linkname))
            if m.linkname.startswith("/") or target == ".." or target.startswith("../"):
                raise InvalidArchive(
                    f"invalid archive: symlink {m.name!r} -> {m.linkname!r} points outside the archive"
                )
            self._links[name] = (target, False)
        elif m.islnk():
            target = join_name(split_member_name(m.linkname, what="hardlink target"))
            self._links[name] = (target, True)
        elif m.isfifo():
            pass
        else:
            raise InvalidArchive(f"invalid archive: member {m.name!r} is a device node")

    # --- access ---------------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Every file name (regular files and links to them), in sorted order."""
        return sorted(n for n in (*self._files, *self._links) if self._try_resolve(n) is not None)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._try_resolve(name) is not None

    def size(self, name: str) -> int:
        return self._resolve(name).size

    def open_member(self, name: str) -> MemberReader:
        """A reader of member ``name`` (links followed inside the archive)."""
        entry = self._resolve(name)
        return MemberReader(self._fd, entry.offset, entry.size, name)

    def read_bytes(self, name: str, *, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        """A small member (manifest.json, index.json, a config) as bytes; refuses more than ``limit``."""
        entry = self._resolve(name)
        if entry.size > limit:
            raise InvalidArchive(f"invalid archive: {name!r} is too large ({entry.size} bytes)")
        return self.open_member(name).read()

    def _try_resolve(self, name: str) -> _File | None:
        try:
            return self._resolve(name)
        except InvalidArchive:
            return None

    def _resolve(self, name: str) -> _File:
        try:
            key = join_name(split_member_name(name))
        except InvalidArchive:
            raise InvalidArchive(f"invalid archive: unsafe member name {name!r}") from None
        for _ in range(MAX_LINK_DEPTH):
            entry = self._files.get(key)
            if entry is not None:
                return entry
            link = self._links.get(key)
            if link is None:
                raise InvalidArchive(f"invalid archive: {name!r} is not in the archive")
            key = link[0]
        raise InvalidArchive(f"invalid archive: too many levels of links resolving {name!r}")

    # --- lifetime -------------------------------------------------------------------------------

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    def __enter__(self) -> OuterArchive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
