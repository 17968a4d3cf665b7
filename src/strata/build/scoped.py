"""Paths resolved inside a root directory by the kernel: ``openat2(RESOLVE_IN_ROOT)`` makes ``/``,
``..`` and every symlink stay below the root (a build context, a container's rootfs), so nothing
a Dockerfile names or a context holds can lead the builder outside it."""

from __future__ import annotations

import errno
import os
import stat

from strata.archive.dirs import open_in_root

__all__ = ["mkdir_all", "open_in_root", "stat_in_root"]

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
