"""The tar side of ``cp``: a tree read into tar members through directory descriptors, members renamed
(Docker's ``RebaseArchiveEntries``), written as a tar stream, or extracted below a directory descriptor.

Both directions read and write only through descriptors: a directory is entered with
``O_NOFOLLOW | O_DIRECTORY`` (``archive.dirs.walk_tree``), a file is opened with ``O_NOFOLLOW``
relative to its parent's descriptor and must still be a regular file when ``fstat``-ed, and an
extracted member's parent is opened component by component without following a symlink
(``archive.dirs.DirWalker``). A tree that changes while it is copied (a container swapping a
directory for a symlink) can change what is copied, never where it is read from or written to.
"""

from __future__ import annotations

import errno
import functools
import grp
import os
import pwd
import stat
import tarfile
from collections.abc import Callable, Iterator
from typing import IO

from strata.archive.dirs import DirWalker, walk_tree
from strata.archive.names import join_name, split_member_name
from strata.archive.tarread import iter_members, open_tar_stream
from strata.archive.tarwriter import TarWriter
from strata.errors import InvalidArchive, StrataError

__all__ = ["Member", "Members", "Owner", "extract_members", "rebase", "tar_members", "tree_members", "write_members"]

Member = tuple[tarfile.TarInfo, "IO[bytes] | None"]
Members = Iterator[Member]

_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@functools.cache
def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


@functools.cache
def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def _info(name: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
    """A header as Go's ``tar.FileInfoHeader`` fills it (user and group names looked up on the host)."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname, info.gname = _user_name(st.st_uid), _group_name(st.st_gid)
    info.mtime = int(st.st_mtime)
    return info


class _Reader:
    """Turns entries of a tree into members; remembers inodes to write hard links."""

    def __init__(self) -> None:
        self.links: dict[tuple[int, int], str] = {}

    def member(self, parent_fd: int, name: str, st: os.stat_result, arcname: str) -> Member | None:
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            return _info(arcname, st, tarfile.DIRTYPE), None
        if stat.S_ISSOCK(mode):
            return None
        if st.st_nlink > 1:
            first = self.links.setdefault((st.st_dev, st.st_ino), arcname)
            if first != arcname:
                info = _info(arcname, st, tarfile.LNKTYPE)
                info.linkname = first
                return info, None
        if stat.S_ISREG(mode):
            return self._file(parent_fd, name, arcname)
        if stat.S_ISLNK(mode):
            info = _info(arcname, st, tarfile.SYMTYPE)
            info.linkname = os.readlink(name, dir_fd=parent_fd)
            return info, None
        if stat.S_ISFIFO(mode):
            return _info(arcname, st, tarfile.FIFOTYPE), None
        info = _info(arcname, st, tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE)
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        return info, None

    @staticmethod
    def _file(parent_fd: int, name: str, arcname: str) -> Member | None:
        try:
            fd = os.open(name, _OPEN_FILE, dir_fd=parent_fd)
        except FileNotFoundError:
            return None  # removed while we copied
        except OSError as e:
            if e.errno == errno.ELOOP:  # swapped for a symlink: never followed
                return None
            raise
        f = os.fdopen(fd, "rb", buffering=0)
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode):
            f.close()
            return None
        info = _info(arcname, fst, tarfile.REGTYPE)
        info.size = fst.st_size
        return info, f


def tree_members(parent_fd: int, name: str | None, arcname: str) -> Members:
    """Members for entry ``name`` of directory ``parent_fd`` (``None``: ``parent_fd`` itself) and,
    for a directory, everything below it, named ``arcname`` and ``arcname/...``. Symlinks are
    members, never followed."""
    reader = _Reader()
    if name is None:
        root_fd = os.dup(parent_fd)
        st = os.fstat(root_fd)
    else:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            member = reader.member(parent_fd, name, st, arcname)
            if member is not None:
                yield from _closing(member)
            return
        root_fd = os.open(name, _OPEN_DIR, dir_fd=parent_fd)
        st = os.fstat(root_fd)
    try:
        yield _info(arcname, st, tarfile.DIRTYPE), None
        prefix = arcname.rstrip("/") + "/"
        for entry in walk_tree(root_fd):
            member = reader.member(entry.parent_fd, entry.name, entry.st, prefix + entry.rel)
            if member is not None:
                yield from _closing(member)
    finally:
        os.close(root_fd)


def _closing(member: Member) -> Members:
    try:
        yield member
    finally:
        if member[1] is not None:
            member[1].close()


def rebase(members: Members, old: str, new: str) -> Members:
    """Docker's ``RebaseArchiveEntries``: the first ``old`` in each name (and hard link target)
    becomes ``new``."""
    if old == "/":
        old = ""
    for info, data in members:
        info.name = info.name.replace(old, new, 1)
        if info.type == tarfile.LNKTYPE:
            info.linkname = info.linkname.replace(old, new, 1)
        yield info, data


def write_members(members: Members, out: IO[bytes]) -> None:
    writer = TarWriter(out)
    for info, data in members:
        writer.add(info, data)
    writer.close()


class _Replayed:
    """``stream`` with the bytes already read from it put back in front."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self.head, self.stream = head, stream

    def read(self, size: int = -1) -> bytes:
        if not self.head:
            return self.stream.read(size)
        data, self.head = (self.head, b"") if size < 0 or size >= len(self.head) else (self.head[:size], self.head[size:])
        return data


def _first_block(stream: IO[bytes]) -> bytes:
    """The first 512 bytes, as Go's tar reader takes them: none is an empty archive (``b""``), fewer is
    ``unexpected EOF``, a block that is not a header (nor the zero block) ``archive/tar: invalid tar header``."""
    block = b""
    while len(block) < tarfile.BLOCKSIZE and (data := stream.read(tarfile.BLOCKSIZE - len(block))):
        block += data
    if block and len(block) < tarfile.BLOCKSIZE:
        raise InvalidArchive("unexpected EOF")
    if block.strip(b"\0"):
        try:
            tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            raise InvalidArchive("archive/tar: invalid tar header") from None
    return block


def tar_members(stream: IO[bytes]) -> Members:
    """The members of a tar read from ``stream`` (``cp - CTR:DIR``), with the Docker daemon's tolerance
    (Go's archive/tar): an empty stream, or one ending at a member boundary without the end-of-archive
    blocks, is a whole archive; a short one is ``unexpected EOF``."""
    head = _first_block(stream)
    if not head.strip(b"\0"):  # Go: a zero block, then the end or a second zero block; anything else is no tar
        if stream.read(tarfile.BLOCKSIZE).strip(b"\0"):
            raise InvalidArchive("archive/tar: invalid tar header")
        return
    try:
        with open_tar_stream(_Replayed(head, stream)) as tf:  # type: ignore[arg-type]
            for info in iter_members(tf):
                yield info, (tf.extractfile(info) if info.isreg() else None)
    except InvalidArchive as e:
        if "without an end-of-archive marker" in str(e):
            return
        raise InvalidArchive("unexpected EOF") if str(e).startswith("unexpected EOF") else e from None


Owner = Callable[[tarfile.TarInfo], "tuple[int, int] | None"]


def extract_members(members: Members, dest_fd: int, owner: Owner, shown: str) -> None:
    """Write ``members`` below directory ``dest_fd`` (``shown``: its path in Docker's errors) with
    Docker's untar rules (``NoOverwriteDirNonDir``: a directory never replaces a non-directory nor the
    reverse); ``owner(info)`` is the uid/gid to give an entry, or None to leave it to the caller's."""
    walker = DirWalker(dest_fd)
    dirs: list[tuple[tuple[str, ...], tarfile.TarInfo]] = []
    try:
        for info, data in members:
            parts = split_member_name(info.name)
            if not parts:
                dirs.append((parts, info))
                continue
            parent = walker.open(parts[:-1], create=True, member=info.name)
            assert parent is not None
            if _place(walker, parent, parts, info, data, owner, shown):
                dirs.append((parts, info))
        for parts, info in reversed(dirs):
            fd = walker.open(parts, create=False, member=info.name)
            if fd is not None:
                _meta_fd(fd, info, owner)
    finally:
        walker.close()


def _place(walker: DirWalker, parent: int, parts: tuple[str, ...], info: tarfile.TarInfo,
           data: IO[bytes] | None, owner: Owner, shown: str) -> bool:
    """Create one member in ``parent``; True for a directory (its metadata is set at the end)."""
    name = parts[-1]
    try:
        st: os.stat_result | None = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    is_dir = st is not None and stat.S_ISDIR(st.st_mode)
    path = shown.rstrip("/") + "/" + join_name(parts)
    if is_dir and not info.isdir():
        raise StrataError(f'cannot overwrite directory "{path}" with non-directory "{shown}"')
    if st is not None and not is_dir and info.isdir():
        raise StrataError(f'cannot overwrite non-directory "{path}" with directory "{shown}"')
    if info.isdir():
        if st is None:
            os.mkdir(name, 0o700, dir_fd=parent)
        return True
    if st is not None:
        os.unlink(name, dir_fd=parent)
    if info.isreg():
        _make_file(parent, name, info, data, owner)
        return False
    if info.issym():
        _check_symlink(shown, parts, info.linkname)
        os.symlink(info.linkname, name, dir_fd=parent)
    elif info.islnk():
        _make_link(walker, parent, name, info)
        return False
    elif info.isfifo():
        os.mkfifo(name, 0o600, dir_fd=parent)
    elif info.ischr() or info.isblk():
        kind = stat.S_IFCHR if info.ischr() else stat.S_IFBLK
        os.mknod(name, kind | 0o600, os.makedev(info.devmajor, info.devminor), dir_fd=parent)
    else:
        raise InvalidArchive(f"unhandled tar header type {info.type!r} for {info.name!r}")
    _meta_at(parent, name, info, owner)
    return False


def _check_symlink(shown: str, parts: tuple[str, ...], linkname: str) -> None:
    """Docker's untar refuses a symlink whose target, read from where it is made, leaves the
    extraction directory (``invalid symlink``; an absolute target is read below that directory)."""
    import posixpath

    top = posixpath.normpath(shown)
    path = posixpath.join(top, *parts)
    target = posixpath.normpath(posixpath.dirname(path) + "/" + linkname)
    if not target.startswith(top):  # Go's strings.HasPrefix, as Docker compares them
        raise StrataError(f'invalid symlink "{path}" -> "{linkname}"')


def _make_file(parent: int, name: str, info: tarfile.TarInfo, data: IO[bytes] | None, owner: Owner) -> None:
    fd = os.open(name, _CREATE, 0o600, dir_fd=parent)
    try:
        left = info.size
        while left > 0 and data is not None:
            chunk = data.read(min(left, 1 << 20))
            if not chunk:
                raise InvalidArchive(f"unexpected EOF in the data of {info.name!r}")
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
            left -= len(chunk)
        _meta_fd(fd, info, owner)
    finally:
        os.close(fd)


def _make_link(walker: DirWalker, parent: int, name: str, info: tarfile.TarInfo) -> None:
    target = split_member_name(info.linkname, what="hard link target")
    if not target:
        raise InvalidArchive(f"invalid hard link {info.name!r} -> {info.linkname!r}")
    src_parent = walker.open(target[:-1], create=False, member=info.name)
    if src_parent is None:
        raise InvalidArchive(f"hard link target {info.linkname!r} of {info.name!r} is missing")
    src_parent = os.dup(src_parent)
    try:
        os.link(target[-1], name, src_dir_fd=src_parent, dst_dir_fd=parent, follow_symlinks=False)
    finally:
        os.close(src_parent)


def _meta_fd(fd: int, info: tarfile.TarInfo, owner: Owner) -> None:
    ids = owner(info)
    if ids is not None:
        os.fchown(fd, *ids)
    os.fchmod(fd, info.mode & 0o7777)
    os.utime(fd, (info.mtime, info.mtime))


def _meta_at(parent: int, name: str, info: tarfile.TarInfo, owner: Owner) -> None:
    ids = owner(info)
    if ids is not None:
        os.chown(name, *ids, dir_fd=parent, follow_symlinks=False)
    if not info.issym():
        os.chmod(name, info.mode & 0o7777, dir_fd=parent)
    os.utime(name, (info.mtime, info.mtime), dir_fd=parent, follow_symlinks=False)
