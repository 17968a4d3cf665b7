"""``cp`` sees a container's volumes and bind mounts as the container does: for the copy, each one is
bind-mounted onto its mount point in the container's root filesystem (in strata's own mount namespace,
as Docker's daemon mounts them on the container's ``BaseFS``), and unmounted afterwards.

A mount point is resolved inside the container's root (``openat2(RESOLVE_IN_ROOT)``) and the bind
mount is made onto the descriptor that resolution returned, so a symlink a container plants in place
of a mount point can only move the mount elsewhere inside the container's own tree.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from strata.archive.dirs import open_in_root
from strata.container.rootfs import mount, umount
from strata.errors import StrataError, os_error_text

__all__ = ["volumes_mounted"]

MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000


def _bind(root_fd: int, resolved: str, source: str, rw: bool) -> int | None:
    """Bind ``source`` onto ``resolved`` in the root; the descriptor of the new mount (to unmount it)."""
    try:
        target = open_in_root(root_fd, resolved, os.O_PATH)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None  # no mount point in this tree (a container not started yet): nothing to show
        raise
    try:
        src = os.open(source, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        os.close(target)
        return None
    try:
        mount(f"/proc/self/fd/{src}", f"/proc/self/fd/{target}", "", MS_BIND | MS_REC)
    finally:
        os.close(src)
        os.close(target)
    top = open_in_root(root_fd, resolved, os.O_PATH)
    if not rw:
        mount("", f"/proc/self/fd/{top}", "", MS_BIND | MS_REMOUNT | MS_RDONLY)
    return top


@contextmanager
def volumes_mounted(root_fd: int, points: list[dict[str, Any]], resolve: Callable[[str], str]) -> Iterator[None]:
    """Every bind and volume mount point of the container mounted in its root for the copy."""
    done: list[int] = []
    try:
        for point in sorted(points, key=lambda p: str(p.get("Destination", "")).rstrip("/").count("/")):
            if point.get("Type") not in ("bind", "volume") or point.get("_device") or not point.get("Source"):
                continue
            try:
                fd = _bind(root_fd, resolve(str(point["Destination"])), str(point["Source"]), bool(point.get("RW", True)))
            except OSError as e:
                raise StrataError(f"error mounting {point['Destination']} for the copy: {os_error_text(e)}") from None
            if fd is not None:
                done.append(fd)
        yield
    finally:
        for fd in reversed(done):
            try:
                umount(f"/proc/self/fd/{fd}", lazy=True)
            except OSError:
                pass
            os.close(fd)
