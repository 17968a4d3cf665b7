"""Deterministic tar writing: ``TarWriter`` (member by member) and ``write_tar_from_dir`` (a whole tree).

The bytes depend only on the tree: entries sorted by name (bytes order, parents first), PAX format
(plain ustar headers unless a field needs a PAX record, as Go's ``archive/tar`` that Docker uses),
mtimes truncated to whole seconds, uid/gid kept, empty user/group names, no atime/ctime, and the
archive ends with two zero blocks and no record padding (as Docker's layer tars).
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Callable

from strata.archive.compression import Compression, Readable, Writable, compressor
from strata.archive.hashing import HashWriter, LayerInfo
from strata.archive.names import OPAQUE_MARKER, WHITEOUT_PREFIX
from strata.archive.tarheader import header
from strata.archive.tarsink import TarSink
from strata.errors import StoreError

TYPE_CHECKING = False  # not typing's: importing typing costs a cold build's start-up
if TYPE_CHECKING:
    from typing import Final

__all__ = ["TarWriter", "write_tar_from_dir"]

BLOCK: Final = 512
COPY_CHUNK: Final = 1 << 20
_XATTR_PAX = "SCHILY.xattr."
_KEPT_XATTR_PREFIXES = ("user.", "security.capability")
_SKIPPED_XATTR_PREFIXES = ("user.overlay.", "user.fuseoverlayfs.")
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_OPEN_PATH = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_REOPEN = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK  # through /proc/self/fd: the very inode fstat'ed


class TarWriter:
    """Writes tar members to ``out`` in PAX format; ``close()`` writes the end-of-archive blocks
    (and does not close ``out``)."""

    def __init__(self, out: Writable, on_member: Callable[[tarfile.TarInfo], None] | None = None) -> None:
        self._out = out
        self._closed = False
        self._on_member = on_member  # told each member before it is written (it may raise to stop)

    def add(self, info: tarfile.TarInfo, data: Readable | None = None) -> None:
        """Write ``info``'s header, then exactly ``info.size`` bytes read from ``data``."""
        if self._on_member is not None:
            self._on_member(info)
        self._out.write(header(info))
        if info.isreg() and info.size:
            if data is None:
                raise ValueError(f"no data for tar member {info.name!r} of {info.size} bytes")
            self._copy(data, info.size, info.name)

    def add_file(self, info: tarfile.TarInfo, fd: int) -> None:
        """Write ``info``'s header, then exactly ``info.size`` bytes read from the file ``fd``."""
        if self._on_member is not None:
            self._on_member(info)
        self._out.write(header(info))
        if info.size:
            if isinstance(self._out, TarSink):
                self._out.copy_file(fd, info.size, info.name)
            else:
                with open(fd, "rb", buffering=0, closefd=False) as f:
                    self._copy(f, info.size, info.name)
                return
            self._pad(info.size)

    def add_bytes(self, name: str, data: bytes, *, mode: int = 0o644, mtime: int = 0) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), mode, mtime
        self._out.write(header(info))
        if data:
            self._out.write(data)
            self._pad(len(data))

    def add_dir(self, name: str, *, mode: int = 0o755, mtime: int = 0) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, mtime
        self.add(info)

    def add_symlink(self, name: str, target: str, *, mtime: int = 0) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, mtime
        self.add(info)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._out.write(bytes(2 * BLOCK))

    def _copy(self, data: Readable, size: int, name: str) -> None:
        left = size
        while left:
            chunk = data.read(min(COPY_CHUNK, left))
            if not chunk:
                raise StoreError(f"{name}: file shrank while it was being archived")
            self._out.write(chunk)
            left -= len(chunk)
        self._pad(size)

    def _pad(self, size: int) -> None:
        rest = size % BLOCK
        if rest:
            self._out.write(bytes(BLOCK - rest))

    def __enter__(self) -> TarWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()


def write_tar_from_dir(
    src_dir: str | os.PathLike[str],
    out_stream: Writable,
    *,
    from_overlay_upper: bool = False,
    compression: Compression = Compression.NONE,
    level: int | None = None,
    on_member: Callable[[tarfile.TarInfo], None] | None = None,
    own_file: bool = False,
    writeback: bool = False,
) -> LayerInfo:
    """Write the tree below ``src_dir`` (not the root itself) as a deterministic tar.

    Hardlinks within the tree (same inode) become hardlink members to the first name in order.
    Sockets are skipped. With ``from_overlay_upper`` the overlayfs upper-dir conventions become OCI
    whiteouts: a character device 0/0 ``x`` -> empty file ``.wh.x``; a directory with the
    ``trusted.overlay.opaque``/``user.overlay.opaque`` xattr ``y`` -> the directory plus
    ``dir/.wh..wh..opq``. Upper dirs with ``redirect_dir`` or ``metacopy`` entries are refused
    (mount overlays with ``redirect_dir=off,metacopy=off``).

    ``on_member(info)`` is called with each member before it is written (a caller's checks and counts).
    With ``compression`` the tar is compressed on the way to ``out_stream``. Returns the DiffID and
    size of the tar and the digest and size of what was written, all computed while streaming.
    ``own_file``: ``out_stream`` is a regular file of strata's own that nothing else writes or
    truncates (a blob in the store's tmp/): large files are copied into it in the kernel and hashed
    from it (``archive.tarsink``), and ``out_stream`` is left positioned at the tar's end;
    ``writeback`` then starts the writeback of the tar and of the large files read at once.
    """
    if compression is not Compression.NONE:
        blob = HashWriter(out_stream)
        sink = compressor(compression, blob, level)
        tar_bytes = TarSink(sink)
        _write_tree(src_dir, tar_bytes, from_overlay_upper, on_member)
        sink.close()
        return LayerInfo(diff_id=tar_bytes.digest, size=tar_bytes.size, digest=blob.digest,
                         compressed_size=blob.size, compression=compression)  # fmt: skip
    fd = _own_fd(out_stream) if own_file else None
    plain = TarSink(out_stream, fd, writeback=writeback)
    _write_tree(src_dir, plain, from_overlay_upper, on_member)
    if fd is not None:
        out_stream.seek(os.lseek(fd, 0, os.SEEK_CUR))  # type: ignore[attr-defined]  # (own_file: a file)
    return LayerInfo(diff_id=plain.digest, size=plain.size, digest=plain.digest, compressed_size=plain.size)


def _write_tree(
    src_dir: str | os.PathLike[str], sink: TarSink, from_upper: bool, on_member: Callable[[tarfile.TarInfo], None] | None
) -> None:
    root_fd = os.open(os.fspath(src_dir), _OPEN_DIR)
    try:
        writer = TarWriter(sink, on_member)
        _Walker(writer, from_upper).walk(root_fd, "")
        writer.close()
        sink.close()
    except BaseException:
        sink.abort()
        raise
    finally:
        os.close(root_fd)


def _own_fd(out: Writable) -> int | None:
    """The descriptor of ``out`` (flushed) when it is a regular file, else None."""
    fileno = getattr(out, "fileno", None)
    if fileno is None:
        return None
    try:
        fd = fileno()
    except (OSError, ValueError):  # io.BytesIO's: io.UnsupportedOperation
        return None
    if not isinstance(fd, int) or not stat.S_ISREG(os.fstat(fd).st_mode):
        return None
    out.flush()  # type: ignore[attr-defined]
    return fd


_FILE, _DIR, _OTHER = 1, 2, 3
_FUSE_OPAQUE_NAMES = frozenset({".wh..wh..opq", ".wh..opq"})


class _Walker:
    def __init__(self, writer: TarWriter, from_upper: bool) -> None:
        self.writer = writer
        self.from_upper = from_upper
        self.links: dict[tuple[int, int], str] = {}

    def walk(self, dir_fd: int, prefix: str) -> None:
        for name, kind in _sorted_entries(dir_fd):
            if self.from_upper and name in _FUSE_OPAQUE_NAMES:
                continue  # fuse-overlayfs's markers next to its opaque xattr (the marker comes from that)
            path = prefix + name
            # a file or directory (as the listing says) is opened and fstat'ed: one stat for it
            if kind == _FILE and self._file(dir_fd, name, path):
                continue
            if kind == _DIR and self._directory(dir_fd, name, path):
                continue
            try:  # anything else, or what changed its type since the listing
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we walked
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                if not self._directory(dir_fd, name, path):
                    raise StoreError(f"{path}: changed type while it was being archived")
            elif stat.S_ISREG(mode):
                if not self._file(dir_fd, name, path):
                    raise StoreError(f"{path}: changed type while it was being archived")
            elif stat.S_ISSOCK(mode):
                continue
            elif self.from_upper and stat.S_ISCHR(mode) and st.st_rdev == 0:
                self._emit(_whiteout_info(prefix + WHITEOUT_PREFIX + name, st))
            else:
                self._special(dir_fd, name, path, st)

    def _directory(self, dir_fd: int, name: str, path: str) -> bool:
        """The directory and what it holds; False if ``name`` is no longer a directory."""
        try:
            fd = os.open(name, _OPEN_DIR, dir_fd=dir_fd)
        except FileNotFoundError:
            return True  # removed while we walked
        except OSError as e:
            if e.errno in (errno.ENOTDIR, errno.ELOOP):
                return False
            raise
        try:
            st = os.fstat(fd)
            info = _info(path, st, tarfile.DIRTYPE)
            names, xattrs = _read_xattrs(fd)
            opaque = False
            if self.from_upper:
                opaque = _is_opaque(fd, path, names)
            _add_xattrs(info, xattrs)
            self.writer.add(info)
            if opaque:
                self._emit(_whiteout_info(f"{path}/{OPAQUE_MARKER}", st))
            self.walk(fd, path + "/")
        finally:
            os.close(fd)
        return True

    def _file(self, dir_fd: int, name: str, path: str) -> bool:
        """The file (or a hard link to its first name); False if ``name`` is no longer a regular file
        (a symlink, a FIFO, a device swapped in: never opened for reading, which could act on it)."""
        try:
            pfd = os.open(name, _OPEN_PATH, dir_fd=dir_fd)
        except FileNotFoundError:
            return True  # removed while we walked
        try:
            st = os.fstat(pfd)
            if not stat.S_ISREG(st.st_mode):
                return False
            if self._as_hardlink(path, st):
                return True
            fd = _reopen(pfd, dir_fd, name, path, st)
        finally:
            os.close(pfd)
        try:
            names, xattrs = _read_xattrs(fd)
            if self.from_upper:
                _refuse_overlay_features(path, names, directory=False)
            info = _info(path, st, tarfile.REGTYPE)
            info.size = st.st_size
            _add_xattrs(info, xattrs)
            self.writer.add_file(info, fd)
        finally:
            os.close(fd)
        return True

    def _special(self, dir_fd: int, name: str, path: str, st: os.stat_result) -> None:
        if self._as_hardlink(path, st):
            return
        mode = st.st_mode
        if stat.S_ISLNK(mode):
            info = _info(path, st, tarfile.SYMTYPE)
            info.linkname = os.readlink(name, dir_fd=dir_fd)
        elif stat.S_ISFIFO(mode):
            info = _info(path, st, tarfile.FIFOTYPE)
        else:
            info = _info(path, st, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        self.writer.add(info)

    def _as_hardlink(self, path: str, st: os.stat_result) -> bool:
        if st.st_nlink < 2:
            return False
        key = (st.st_dev, st.st_ino)
        first = self.links.get(key)
        if first is None:
            self.links[key] = path
            return False
        info = _info(path, st, tarfile.LNKTYPE)
        info.linkname = first
        self.writer.add(info)
        return True

    def _emit(self, info: tarfile.TarInfo) -> None:
        self.writer.add(info)


def _reopen(pfd: int, dir_fd: int, name: str, path: str, st: os.stat_result) -> int:
    """The regular file ``pfd`` (an ``O_PATH`` descriptor) opened for reading: through its
    ``/proc/self/fd`` link (that inode, whatever the name now is); without /proc, by name again,
    refused unless it is still that regular file."""
    try:
        return os.open(f"/proc/self/fd/{pfd}", _REOPEN)
    except FileNotFoundError:
        pass
    fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(now.st_mode):
        os.close(fd)
        raise StoreError(f"{path}: changed type while it was being archived")
    return fd


def _sorted_entries(dir_fd: int) -> list[tuple[str, int]]:
    """The directory's names in bytes order, each with its type as the listing says (``_FILE``,
    ``_DIR`` or ``_OTHER``; the listing's type costs no stat, unless the filesystem leaves it unknown)."""
    entries = []
    with os.scandir(dir_fd) as it:
        for e in it:
            kind = _FILE if e.is_file(follow_symlinks=False) else _DIR if e.is_dir(follow_symlinks=False) else _OTHER
            entries.append((e.name, kind))
    entries.sort(key=lambda item: os.fsencode(item[0]))
    return entries


def _info(path: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    return info


def _whiteout_info(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size = tarfile.REGTYPE, 0o600, 0
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = int(st.st_mtime)
    return info


def _read_xattrs(fd: int) -> tuple[list[str], dict[str, bytes]]:
    """The names of the file's xattrs, and the values of those a layer keeps."""
    try:
        names = os.listxattr(fd)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
            return [], {}
        raise
    out: dict[str, bytes] = {}
    for key in sorted(names):
        if key.startswith(_KEPT_XATTR_PREFIXES) and not key.startswith(_SKIPPED_XATTR_PREFIXES):
            try:
                out[key] = os.getxattr(fd, key)
            except OSError as e:
                if e.errno != errno.ENODATA:
                    raise
    return names, out


def _add_xattrs(info: tarfile.TarInfo, xattrs: dict[str, bytes]) -> None:
    if xattrs:
        info.pax_headers = {
            _XATTR_PAX + key: value.decode("utf-8", "surrogateescape") for key, value in xattrs.items()
        }


def _getxattr(fd: int, key: str) -> bytes | None:
    try:
        return os.getxattr(fd, key)
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            return None
        raise


_OPAQUE_KEYS = tuple(f"{p}opaque" for p in ("trusted.overlay.", "user.overlay.", "user.fuseoverlayfs."))


def _is_opaque(fd: int, path: str, names: list[str]) -> bool:
    """``names``: the directory's xattrs as listed (only those are read: as root the listing shows
    ``trusted.*`` too, and without privilege reading those fails as they are not shown)."""
    _refuse_overlay_features(path, names, directory=True)
    return any(key in names and _getxattr(fd, key) == b"y" for key in _OPAQUE_KEYS)


def _refuse_overlay_features(path: str, names: list[str], *, directory: bool) -> None:
    key = "redirect" if directory else "metacopy"
    for prefix in ("trusted.overlay.", "user.overlay."):
        if prefix + key in names:
            raise StoreError(
                f"{path}: overlayfs {key} entry in the upper directory; mount overlays with "
                "redirect_dir=off,metacopy=off to make layers from them"
            )
