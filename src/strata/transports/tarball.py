"""Outer archives (``docker save`` / ``oci-archive`` tarballs): safe unpacking into a staging directory,
and streaming writing of a tar from named members."""

from __future__ import annotations

import os
import shutil
import tarfile
import time
from pathlib import Path
from typing import IO, Any, BinaryIO

from strata.digest import CHUNK
from strata.errors import InvalidArchive
from strata.transports.tarcheck import docker_tar_stream

__all__ = ["TarWriter", "tar_directory", "unpack_archive"]


def _safe_name(member: tarfile.TarInfo) -> str:
    """The member's name inside the archive; ``""`` for a root directory entry (``./``, as
    ``tar -C dir -cf x.tar .`` writes), which names nothing to create."""
    name = member.name
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts or (not parts and not member.isdir()):
        raise InvalidArchive(f"invalid archive: member {name!r} has an unsafe path")
    return "/".join(parts)


def unpack_archive(stream: IO[bytes] | BinaryIO, dest: Path) -> None:
    """Unpack an image archive (any compression) into ``dest``: directories, regular files and links
    (skopeo's docker-archive links its layer files). ``dest`` must be a fresh private directory.

    Nothing is ever written through a link: parent directories that are symlinks are refused, an entry
    is created with O_NOFOLLOW/O_EXCL after removing what was there, and hard links may only point at a
    file inside. At the end every symlink must resolve inside ``dest``, so reading the archive's files
    never leaves it (a symlink to ``.`` followed by ``../`` can point anywhere lexically inside)."""
    plain = docker_tar_stream(stream)  # Docker's load: anything else a tar, read by Go's rules
    root = Path(os.path.realpath(dest))
    try:
        with tarfile.open(fileobj=plain, mode="r|", bufsize=CHUNK) as tar:  # type: ignore[call-overload]
            for member in tar:
                name = _safe_name(member)
                if not name:
                    continue  # the archive's root directory: dest itself
                parent = _parent_dir(root, name)
                target = parent / name.rsplit("/", 1)[-1]
                if member.isdir():
                    if target.is_symlink() or (target.exists() and not target.is_dir()):
                        raise InvalidArchive(f"invalid archive: directory {member.name!r} would replace a file or link")
                    target.mkdir(exist_ok=True)
                    continue
                _clear(target, member.name)
                if member.issym() or member.islnk():
                    _link(root, name, target, member)
                    continue
                if not member.isreg():
                    raise InvalidArchive(f"invalid archive: member {member.name!r} is not a regular file")
                src = tar.extractfile(member)
                assert src is not None
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out, CHUNK)
                if out_size(target) != member.size:
                    raise InvalidArchive(f"invalid archive: member {member.name!r} is truncated")
    except (tarfile.TarError, EOFError) as e:
        if str(e) != "empty file" and not plain.ended:  # Go's reader: no block at all, or a cut padding, ends it
            raise InvalidArchive(f"invalid archive: {e}") from None
    _check_links(root)


def _parent_dir(root: Path, name: str) -> Path:
    """The directory ``name`` goes in, made as needed; a symlink on the way is refused."""
    cur = root
    for part in name.split("/")[:-1]:
        cur = cur / part
        if cur.is_symlink():
            raise InvalidArchive(f"invalid archive: member {name!r} is inside a symbolic link")
        if not cur.exists():
            cur.mkdir()
        elif not cur.is_dir():
            raise InvalidArchive(f"invalid archive: member {name!r} is inside a file")
    return cur


def _clear(target: Path, name: str) -> None:
    """Remove what an earlier member left at ``target`` (a later member replaces it, as tar does)."""
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        raise InvalidArchive(f"invalid archive: member {name!r} would replace a directory")


def _inside(root: Path, path: str) -> bool:
    real = os.path.realpath(path)
    return real == str(root) or real.startswith(str(root) + os.sep)


def _link(root: Path, name: str, path: Path, member: tarfile.TarInfo) -> None:
    """Links inside an archive (skopeo's docker-archive links layer.tar files) may only point inside it."""
    import posixpath

    base = "" if member.islnk() else posixpath.dirname(name)
    target = posixpath.normpath(posixpath.join(base, member.linkname))
    if member.linkname.startswith("/") or target == ".." or target.startswith("../"):
        raise InvalidArchive(f"invalid archive: link {member.name!r} points outside the archive")
    try:
        if member.islnk():
            source = root / target
            if not _inside(root, str(source)) or not source.is_file():
                raise InvalidArchive(f"invalid archive: hard link {member.name!r} points outside the archive")
            os.link(source, path, follow_symlinks=False)
        else:
            os.symlink(member.linkname, path)
    except OSError as e:
        raise InvalidArchive(f"invalid archive: link {member.name!r}: {e.strerror}") from None


def _check_links(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in (*dirnames, *filenames):
            path = os.path.join(dirpath, entry)
            if os.path.islink(path) and not _inside(root, path):
                rel = os.path.relpath(path, root)
                raise InvalidArchive(f"invalid archive: link {rel!r} points outside the archive")


def out_size(path: Path) -> int:
    return os.stat(path).st_size


class TarWriter:
    """Writes an uncompressed tar stream member by member (PAX headers, fixed mode and mtime).

    File members from real files are copied kernel-side (``copy_file_range``/``sendfile``) when the
    output is a real file descriptor too."""

    def __init__(self, out: IO[bytes] | BinaryIO, mtime: float | None = None) -> None:
        self.out = out
        self.mtime = time.time() if mtime is None else mtime
        self._dirs: set[str] = set()
        self._written = 0

    def _info(self, name: str, size: int, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.type = kind
        info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        info.mtime = int(self.mtime)
        return info

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self._written += len(data)

    def _header(self, info: tarfile.TarInfo) -> None:
        self._write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def _pad(self, size: int) -> None:
        rem = size % tarfile.BLOCKSIZE
        if rem:
            self._write(b"\0" * (tarfile.BLOCKSIZE - rem))

    def directory(self, name: str) -> None:
        if name not in self._dirs:
            self._dirs.add(name)
            self._header(self._info(name.rstrip("/") + "/", 0, tarfile.DIRTYPE))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._parents(name)
        self._header(self._info(name, len(data)))
        self._write(data)
        self._pad(len(data))

    def add_stream(self, name: str, stream: Any, size: int) -> None:
        """Add ``size`` bytes read from ``stream``; a short stream is an error."""
        self._parents(name)
        self._header(self._info(name, size))
        self._body(name, stream, size)

    def _body(self, name: str, stream: Any, size: int) -> None:
        """A member's ``size`` bytes of ``stream`` (kernel-side when it can be) and its padding."""
        left = size
        if not self._copy_kernel(stream, size):
            while left:
                chunk = stream.read(min(CHUNK, left))
                if not chunk:
                    raise InvalidArchive(f"{name}: unexpected end of data ({left} bytes missing)")
                self._write(chunk)
                left -= len(chunk)
        self._pad(size)

    def _copy_kernel(self, stream: Any, size: int) -> bool:
        try:
            src = stream.fileno()
            dst = self.out.fileno()
            if stream.tell() != 0:
                return False
        except (AttributeError, OSError, ValueError):
            return False
        self.out.flush()
        offset = 0
        while offset < size:
            try:
                n = os.copy_file_range(src, dst, size - offset, offset)
            except OSError:
                try:
                    n = os.sendfile(dst, src, offset, size - offset)
                except OSError:
                    if offset:
                        raise
                    return False  # nothing copied (an O_APPEND output: EINVAL): read and write instead
            if n == 0:
                raise InvalidArchive("unexpected end of data while copying a layer")
            offset += n
        self._written += size
        return True

    def _parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.directory("/".join(parts[:i]))

    def close(self) -> None:
        self._write(b"\0" * (tarfile.BLOCKSIZE * 2))
        rem = self._written % tarfile.RECORDSIZE
        if rem:
            self._write(b"\0" * (tarfile.RECORDSIZE - rem))
        self.out.flush()


def tar_directory(src: Path, path: Path) -> None:
    """Tar the tree ``src`` into ``path`` (temp file, fsync, rename): an OCI layout into an oci-archive."""
    from strata.atomicfile import open_atomic

    with open_atomic(path) as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(src.rglob("*")):
            tar.add(p, arcname=p.relative_to(src).as_posix(), recursive=False)
