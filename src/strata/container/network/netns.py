"""Named network namespaces: a file under the store bind-mounted onto a new namespace, the way
``ip netns add`` keeps one alive without a process in it. runc joins it through the spec's path."""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

from strata.errors import StrataError, os_error_text

__all__ = ["create_netns", "remove_netns"]

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)  # libc is loaded already: no ldconfig run to find it


def create_netns(path: Path) -> None:
    """A new, empty network namespace kept alive by a bind mount at ``path`` (created here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(path):  # a leftover of a crash: not in use, or its container would own it
        remove_netns(path)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child enters a new netns and pins it; the mount lives in our mount namespace
        code = 0
        try:
            os.close(r)
            if _libc.unshare(CLONE_NEWNET) != 0 or _libc.mount(b"/proc/self/ns/net", str(path).encode(), None, MS_BIND, None) != 0:
                code = ctypes.get_errno() or errno.EPERM
            os.write(w, str(code).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        answer = os.read(r, 16)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    code = int(answer or b"1")
    if code:
        path.unlink(missing_ok=True)
        raise StrataError(f"failed to create network namespace {path}: {os_error_text(OSError(code, os.strerror(code)))}")


def remove_netns(path: Path) -> None:
    """Unmount and delete a namespace file; a missing one is fine."""
    if _libc.umount2(str(path).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise StrataError(f"failed to remove network namespace {path}: {os_error_text(OSError(err, os.strerror(err)))}")
    try:
        path.unlink()
    except FileNotFoundError:
        pass
