"""``cp`` sees a container's volumes and bind mounts as the container does: for the copy, each one is
bind-mounted onto its mount point in the container's root filesystem, as Docker's daemon mounts them on
the container's ``BaseFS``, but in a private mount namespace of the copying process (``private_mounts``):
nothing it mounts is seen by any other process, and all of it goes away when the process ends.

A mount point is resolved inside the container's root (``openat2(RESOLVE_IN_ROOT)``) and the bind
mount (a detached tree, made read-only before it is attached when the mount is) is moved onto the
descriptor that resolution returned, so a symlink a container plants in place
of a mount point can only move the mount elsewhere inside the container's own tree, for this copy only.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from typing import Any

from strata.archive.dirs import open_in_root
from strata.container.rootfs import mount
from strata.errors import StrataError, os_error_text

__all__ = ["private_mounts", "volumes_mounted"]

MS_REC = 0x4000
MS_PRIVATE = 1 << 18
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442  # the same on every architecture
_OPEN_TREE_CLONE = 1
_AT_EMPTY_PATH = 0x1000
_AT_RECURSIVE = 0x8000
_MOUNT_ATTR_RDONLY = 0x1
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOVE_MOUNT_T_EMPTY_PATH = 0x40
CLONE_NEWNS = 0x00020000
_private = False


def private_mounts() -> None:
    """Move this process into its own mount namespace (once), with every mount private to it."""
    global _private
    if _private:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        err = ctypes.get_errno()
        raise StrataError(f"cannot make a private mount namespace for the copy: {os.strerror(err).lower()}")
    mount("none", "/", "", MS_REC | MS_PRIVATE)
    _private = True


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


def _syscall(number: int, *args: object) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    rc = int(libc.syscall(number, *args))
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return rc


def _attach_tree(src_fd: int, target_fd: int, rw: bool) -> None:
    """A recursive bind of ``src_fd``, made read-only while still detached when ``rw`` is False, then
    moved onto ``target_fd``: the mount is never writable where it should not be, and lands on exactly
    the directory (or file) the descriptor names."""
    tree = _syscall(_SYS_OPEN_TREE, src_fd, b"", _OPEN_TREE_CLONE | _AT_EMPTY_PATH | _AT_RECURSIVE | os.O_CLOEXEC)
    try:
        if not rw:
            attr = _MountAttr(_MOUNT_ATTR_RDONLY, 0, 0, 0)
            _syscall(_SYS_MOUNT_SETATTR, tree, b"", _AT_EMPTY_PATH | _AT_RECURSIVE, ctypes.byref(attr),
                     ctypes.sizeof(attr))
        _syscall(_SYS_MOVE_MOUNT, tree, b"", target_fd, b"", _MOVE_MOUNT_F_EMPTY_PATH | _MOVE_MOUNT_T_EMPTY_PATH)
    finally:
        os.close(tree)


def _bind(root_fd: int, resolved: str, source: str, rw: bool) -> bool:
    """Bind ``source`` onto ``resolved`` in the root (never onto the root itself); False when there is
    no such mount point."""
    try:
        target = open_in_root(root_fd, resolved, os.O_PATH)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return False  # no mount point in this tree (a container not started yet): nothing to show
        raise
    try:
        here, root = os.fstat(target), os.fstat(root_fd)
        if (here.st_dev, here.st_ino) == (root.st_dev, root.st_ino):
            return False
        try:
            src = os.open(source, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            _attach_tree(src, target, rw)
        finally:
            os.close(src)
    finally:
        os.close(target)
    return True


def volumes_mounted(root_fd: int, points: list[dict[str, Any]], resolve: Callable[[str], str]) -> None:
    """Every bind and volume mount point of the container mounted in its root, for this process only
    (call ``private_mounts`` first)."""
    for point in sorted(points, key=lambda p: str(p.get("Destination", "")).rstrip("/").count("/")):
        if point.get("Type") not in ("bind", "volume") or point.get("_device") or not point.get("Source"):
            continue
        try:
            _bind(root_fd, resolve(str(point["Destination"])), str(point["Source"]), bool(point.get("RW", True)))
        except OSError as e:
            raise StrataError(f"error mounting {point['Destination']} for the copy: {os_error_text(e)}") from None
