"""Paths resolved inside a root directory by the kernel: ``openat2(RESOLVE_IN_ROOT)`` makes ``/``,
``..`` and every symlink stay below the root (a build context, a container's rootfs), so nothing
a Dockerfile names or a context holds can lead the builder outside it."""

from __future__ import annotations

import ctypes
import errno
import os
import stat

from strata.errors import StrataError

__all__ = ["mkdir_all", "open_in_root", "stat_in_root"]

_SYS_OPENAT2 = 437  # the same number on every Linux architecture
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH, mode: int = 0) -> int:
    """A descriptor of ``path`` resolved as if ``root_fd`` were ``/``; raises OSError."""
    rel = path.lstrip("/") or "."
    how = _OpenHow(flags | os.O_CLOEXEC, mode, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(_SYS_OPENAT2, root_fd, rel.encode(), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        err = ctypes.get_errno()
        if err == errno.ENOSYS:
            raise StrataError("the kernel has no openat2(2): strata build needs Linux 5.6 or later")
        raise OSError(err, os.strerror(err), path)
    return int(fd)


def stat_in_root(root_fd: int, path: str, *, follow: bool = True) -> os.stat_result | None:
    """``stat`` (or ``lstat`` of the last component) below the root; None when missing."""
    try:
        fd = open_in_root(root_fd, path, os.O_PATH | (0 if follow else os.O_NOFOLLOW))
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def mkdir_all(
    root_fd: int, path: str, mode: int = 0o755, owner: tuple[int, int] = (0, 0)
) -> tuple[int, bool]:
    """Open directory ``path`` below the root, creating missing ones (``owner``, ``mode``);
    returns the descriptor and whether the last one was created."""
    parts = [p for p in path.split("/") if p and p != "."]
    fd = open_in_root(root_fd, "/", os.O_RDONLY | os.O_DIRECTORY)
    created = False
    for i, name in enumerate(parts):
        try:
            nxt = open_in_root(root_fd, "/".join(parts[: i + 1]), os.O_RDONLY | os.O_DIRECTORY)
            created = False
        except FileNotFoundError:
            try:
                os.mkdir(name, mode, dir_fd=fd)
                os.chown(name, *owner, dir_fd=fd, follow_symlinks=False)
                nxt = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                os.fchmod(nxt, mode)
                created = True
            except BaseException:
                os.close(fd)
                raise
        os.close(fd)
        fd = nxt
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
    return fd, created
