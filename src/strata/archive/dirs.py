"""Walking into a directory tree without ever following a symlink: openat-style, one component at a time.

``DirWalker(root_fd)`` opens (and optionally creates) directories below a root directory file
descriptor with ``O_NOFOLLOW | O_DIRECTORY``, so no path component can be a symlink that leads
elsewhere, and no ``..`` is ever resolved (names come from ``split_member_name``). Recently used
directory descriptors are cached: tar members arrive grouped by directory.

``walk_tree(root_fd)`` visits a whole tree the same way (depth first, names in byte order): every
entry is stat'ed relative to its parent's descriptor, and a directory is entered only through a
descriptor opened with ``O_NOFOLLOW | O_DIRECTORY`` whose ``fstat`` is what the walk reports, so a
tree that changes while it is walked (a running container swapping a directory for a symlink) can
change what is seen, never where the walk goes.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import stat
from collections import OrderedDict
from collections.abc import Iterator

from strata.archive.names import join_name
from strata.errors import InvalidArchive, StrataError

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = ["DirWalker", "Entry", "list_dir", "open_in_root", "read_in_root", "remove_entry", "walk_tree"]

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CACHE = 64


class DirWalker:
    """Opens directories below ``root_fd`` by component tuples; never follows symlinks.

    The descriptors it returns belong to its cache: use them at once and do not close them
    (``os.dup`` one to keep it across another call).
    """

    def __init__(self, root_fd: int, *, dir_mode: int = 0o755) -> None:
        self.root_fd = root_fd
        self.dir_mode = dir_mode
        self._cache: OrderedDict[tuple[str, ...], int] = OrderedDict()
        self.created: list[tuple[str, ...]] = []  # directories made implicitly, in order

    def open(self, parts: tuple[str, ...], *, create: bool, member: str) -> int | None:
        """The descriptor of directory ``parts``; ``None`` if missing (or not a directory, unless
        ``create``: then missing directories are made and a symlink or file in the way is refused
        with ``InvalidArchive`` naming ``member``)."""
        if not parts:
            return self.root_fd
        fd = self._cache.get(parts)
        if fd is not None:
            self._cache.move_to_end(parts)
            return fd
        depth = len(parts) - 1
        while depth > 0 and parts[:depth] not in self._cache:
            depth -= 1
        fd = self._cache[parts[:depth]] if depth else self.root_fd
        for i in range(depth, len(parts)):
            fd_next = self._open_child(fd, parts[: i + 1], create=create, member=member)
            if fd_next is None:
                return None
            self._remember(parts[: i + 1], fd_next)
            fd = fd_next
        return fd

    def _open_child(self, parent: int, parts: tuple[str, ...], *, create: bool, member: str) -> int | None:
        name = parts[-1]
        try:
            return os.open(name, _OPEN_DIR, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                return None
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            if not create:
                return None
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
            raise InvalidArchive(
                f"refusing {member!r}: path component {join_name(parts)!r} is {what}; "
                "nothing may be written through it"
            ) from None
        os.mkdir(name, self.dir_mode, dir_fd=parent)
        self.created.append(parts)
        return os.open(name, _OPEN_DIR, dir_fd=parent)

    def _remember(self, parts: tuple[str, ...], fd: int) -> None:
        self._cache[parts] = fd
        if len(self._cache) > _CACHE:
            _, old = self._cache.popitem(last=False)
            os.close(old)

    def forget(self) -> None:
        """Drop every cached descriptor (after removing or replacing a directory)."""
        for fd in self._cache.values():
            os.close(fd)
        self._cache.clear()

    def close(self) -> None:
        self.forget()


def remove_entry(parent_fd: int, name: str) -> bool:
    """Remove ``name`` (a whole tree if a directory, never following symlinks); True if it was a dir."""
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        import shutil  # loaded when a tree goes (not by every user of open_in_root)

        shutil.rmtree(name, dir_fd=parent_fd)
        return True
    os.unlink(name, dir_fd=parent_fd)
    return False


class Entry:
    """One entry of ``walk_tree``. ``parent_fd`` (and ``fd``, a directory's own descriptor) are valid
    until the walk moves on; use them with ``dir_fd=``/``src_dir_fd=`` and never close them."""

    __slots__ = ("fd", "names", "parent_fd", "parts", "st")

    def __init__(
        self, parts: tuple[str, ...], parent_fd: int, st: os.stat_result, fd: int | None = None,
        names: list[str] | None = None,
    ) -> None:  # fmt: skip
        self.parts = parts
        self.parent_fd = parent_fd
        self.st = st
        self.fd = fd  # set for directories: the walk enters them through this descriptor
        self.names: list[str] = names if names is not None else []  # a directory's children, in the order walked

    @property
    def name(self) -> str:
        return self.parts[-1]

    @property
    def rel(self) -> str:
        return "/".join(self.parts)


def _entry(parent_fd: int, parts: tuple[str, ...]) -> Entry | None:
    """The entry ``parts[-1]`` of ``parent_fd`` (a directory opened, never followed); None if gone."""
    name = parts[-1]
    for _ in range(3):  # it may change type between the stat and the open: look again
        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISDIR(st.st_mode):
            return Entry(parts, parent_fd, st)
        try:
            fd = os.open(name, _OPEN_DIR, dir_fd=parent_fd)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                raise
            continue
        try:
            return Entry(parts, parent_fd, os.fstat(fd), fd, list_dir(fd))
        except BaseException:
            os.close(fd)
            raise
    return None


def list_dir(fd: int) -> list[str]:
    """The names in directory ``fd``, in the order ``walk_tree`` visits them (bytes order)."""
    return sorted(os.listdir(fd), key=os.fsencode)


def walk_tree(root_fd: int, names: list[str] | None = None) -> Iterator[Entry]:
    """Every entry below ``root_fd`` (not the root itself), parents before children, never following
    a symlink; ``names`` are the root's children when the caller listed them already. Closing the
    iterator early closes every descriptor it opened."""
    first = list_dir(root_fd) if names is None else names
    stack: list[tuple[int, Iterator[str], tuple[str, ...]]] = [(root_fd, iter(first), ())]
    try:
        while stack:
            fd, pending, parts = stack[-1]
            name = next(pending, None)
            if name is None:
                stack.pop()
                if fd != root_fd:
                    os.close(fd)
                continue
            entry = _entry(fd, (*parts, name))
            if entry is None:
                continue
            if entry.fd is not None:
                stack.append((entry.fd, iter(entry.names), entry.parts))
            yield entry
    finally:
        for fd, _, _ in stack:
            if fd != root_fd:
                os.close(fd)


# --- openat2(RESOLVE_IN_ROOT): a path resolved by the kernel as if a directory were '/' ---------------

_SYS_OPENAT2 = 437  # the same number on every Linux architecture
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


@functools.cache
def _syscall() -> Any:
    """libc's syscall(2) wrapper, loaded once (each ``CDLL`` load costs ~0.5 ms)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc.syscall


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH, mode: int = 0) -> int:
    """A descriptor of ``path`` resolved as if ``root_fd`` were ``/``; raises OSError."""
    rel = path.lstrip("/") or "."
    how = _OpenHow(flags | os.O_CLOEXEC, mode, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    for _ in range(1000):  # EAGAIN: a ".." met while a mount or rename ran (anywhere): openat2(2) says retry
        fd = _syscall()(_SYS_OPENAT2, root_fd, rel.encode(), ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0 or ctypes.get_errno() != errno.EAGAIN:
            break
    if fd < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            raise StrataError("the kernel has no openat2(2): strata needs Linux 5.6 or later")
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def read_in_root(root: str | os.PathLike[str], path: str, limit: int = 4 << 20) -> bytes | None:
    """The content of a regular file ``path`` inside a tree a container controls, resolved in the root
    by the kernel, or None when it is missing or not a regular file; never blocks on a FIFO a container
    planted, never reads more than ``limit`` bytes."""
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fd = open_in_root(root_fd, path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            chunks: list[bytes] = []
            size = 0
            while size < limit:
                chunk = os.read(fd, min(1 << 16, limit - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        os.close(root_fd)
