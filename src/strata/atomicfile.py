"""Atomic file writes: a temp file next to the target, fsync, rename over the target, fsync the directory.

A reader sees the old file or the whole new one, never a part; a crash leaves at most a stray
``.tmp-*`` file beside the target (the registry's filesystem driver hides such names from listings).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["TMP_PREFIX", "fsync_dir", "open_atomic", "write_bytes_atomic"]

TMP_PREFIX = ".tmp-"


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or a new entry in directory ``path`` durable (filesystems without directory
    fsync are accepted as they are)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


@contextmanager
def open_atomic(path: str | os.PathLike[str], mode: int = 0o644) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` (with permissions ``mode``) when the block ends.

    An exception inside the block, or a failing flush, fsync or rename, removes the temp file and
    leaves ``path`` as it was. The parent directory must exist.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f"{TMP_PREFIX}{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(target.parent)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically (see ``open_atomic``)."""
    with open_atomic(path, mode) as f:
        f.write(data)
