"""fuse-overlayfs marks every directory it makes opaque (``user.fuseoverlayfs.opaque``, plus marker files),
the kernel's overlay only one made where the layers below showed something (removed, then made again:
over a whiteout in the upper dir). A layer made from fuse-overlayfs's upper dir would carry a
``.wh..wh..opq`` in every new directory, which Docker's (and a rootless build on the kernel's overlay)
does not; ``drop_new_dir_marks`` takes fuse-overlayfs's mark from the directories the kernel would not
have marked, before the upper dir is written as a layer. Only those: nothing below shows there, so the
mark changed nothing a container saw. Directory fds all the way, never a path a container could swap."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

__all__ = ["FUSE_OPAQUE_XATTR", "drop_new_dir_marks"]

FUSE_OPAQUE_XATTR = "user.fuseoverlayfs.opaque"
_KERNEL_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

Parts = tuple[str, ...]


def _marked(fd: int, names: tuple[str, ...]) -> bool:
    for name in names:
        try:
            if os.getxattr(fd, name) in (b"y", b"x"):
                return True
        except OSError as e:
            if e.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                raise
    return False


def drop_new_dir_marks(upper_fd: int, in_lowers: Callable[[Parts], bool]) -> int:
    """Remove fuse-overlayfs's opaque xattr from every directory of the upper dir ``upper_fd`` that the
    layers below do not show (``in_lowers(parts)``: the merged lower view has that path; nothing is
    looked up below a directory that is opaque itself); the number of marks removed."""
    return _walk(upper_fd, (), in_lowers, below=True)


def _walk(dir_fd: int, parts: Parts, in_lowers: Callable[[Parts], bool], *, below: bool) -> int:
    dropped = 0
    with os.scandir(dir_fd) as entries:
        names = sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
    for name in names:
        try:
            fd = os.open(name, _OPEN_DIR, dir_fd=dir_fd)
        except (FileNotFoundError, NotADirectoryError):
            continue  # gone or swapped meanwhile: nothing of ours to mark
        try:
            sub = (*parts, name)
            shown = below and in_lowers(sub)
            opaque = _marked(fd, _KERNEL_OPAQUE_XATTRS)
            if _marked(fd, (FUSE_OPAQUE_XATTR,)):
                if shown:
                    opaque = True
                else:
                    os.removexattr(fd, FUSE_OPAQUE_XATTR)
                    dropped += 1
            dropped += _walk(fd, sub, in_lowers, below=shown and not opaque)
        finally:
            os.close(fd)
    return dropped
