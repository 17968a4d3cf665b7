"""Walking into a directory tree without ever following a symlink: openat-style, one component at a time.

``DirWalker(root_fd)`` opens (and optionally creates) directories below a root directory file
descriptor with ``O_NOFOLLOW | O_DIRECTORY``, so no path component can be a symlink that leads
elsewhere, and no ``..`` is ever resolved (names come from ``split_member_name``). Recently used
directory descriptors are cached: tar members arrive grouped by directory.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections import OrderedDict

from strata.archive.names import join_name
from strata.errors import InvalidArchive

__all__ = ["DirWalker", "remove_entry"]

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
        shutil.rmtree(name, dir_fd=parent_fd)
        return True
    os.unlink(name, dir_fd=parent_fd)
    return False
