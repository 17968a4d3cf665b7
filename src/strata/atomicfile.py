"""Atomic file writes: a temp file next to the target, fsync, rename over the target, fsync the directory.

A reader sees the old file or the whole new one, never a part; a crash leaves at most a stray
``.tmp-*`` file beside the target (the registry's filesystem driver hides such names from listings).

``not_durable()``: inside it (this thread or task only), the writes stay atomic for readers but skip
their fsyncs: for the records of a short-lived container removed right after (a build's step
container), which a crash may lose without losing anything.

``dir_fsyncs_at_end()``: inside it (this thread or task only), ``fsync_dir`` only notes its directory;
each noted directory is fsynced once as the block ends (without an error): renames into several
directories are then made durable by one journal commit, before the caller records anything.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

TYPE_CHECKING = False  # not typing's: importing typing costs a cached build's start-up
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["TMP_PREFIX", "copy_to_file", "dir_fsyncs_at_end", "fsync_dir", "not_durable", "open_atomic", "write_bytes_atomic"]

TMP_PREFIX = ".tmp-"

_DURABLE: ContextVar[bool] = ContextVar("strata_atomicfile_durable", default=True)
_DEFERRED: ContextVar[list[str] | None] = ContextVar("strata_atomicfile_deferred", default=None)


@contextmanager
def not_durable() -> Iterator[None]:
    """Atomic writes in this block (this context only: other threads are not affected) skip fsync."""
    token = _DURABLE.set(False)
    try:
        yield
    finally:
        _DURABLE.reset(token)


@contextmanager
def dir_fsyncs_at_end() -> Iterator[None]:
    """``fsync_dir`` calls in this block (this context only) happen once per directory as it ends."""
    noted: list[str] = []
    token = _DEFERRED.set(noted)
    try:
        yield
    finally:
        _DEFERRED.reset(token)
    for path in noted:  # not after an error: nothing is recorded then (the block's renames are of
        _fsync_dir(path)  # content-addressed, complete files and directories)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or a new entry in directory ``path`` durable (filesystems without directory
    fsync are accepted as they are); nothing inside ``not_durable()``; at its end inside
    ``dir_fsyncs_at_end()``."""
    if not _DURABLE.get():
        return
    noted = _DEFERRED.get()
    if noted is not None:
        if os.fspath(path) not in noted:
            noted.append(os.fspath(path))
        return
    _fsync_dir(path)


def _fsync_dir(path: str | os.PathLike[str]) -> None:
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
    import tempfile  # when a file is written (reading commands never load it)
    from pathlib import Path  # here: a cached rebuild writes no file and loads no pathlib

    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f"{TMP_PREFIX}{target.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if _DURABLE.get():
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


def _go_dir(path: str) -> str:
    """Go's ``filepath.Dir``: everything before the last slash, cleaned (``.`` when there is none)."""
    import posixpath

    head = posixpath.normpath(path[: path.rfind("/") + 1] or ".")
    return "/" + head.lstrip("/") if head.startswith("//") else head


def _go_temp(directory: str, prefix: str) -> tuple[str, int]:
    """Go's ``os.CreateTemp(directory, prefix)``: ``dir/prefix<random uint32>``, mode 0600, O_EXCL."""
    import secrets

    joined = directory if directory.endswith("/") else directory + "/"
    while True:
        name = f"{joined}{prefix}{secrets.randbelow(1 << 32)}"
        try:
            return name, os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue


def copy_to_file(outfile: str, write: Callable[[BinaryIO], object]) -> None:
    """The Docker CLI's ``CopyToFile`` (``save -o``, ``export -o``): ``write`` fills a temp file beside
    ``outfile`` (``.docker_temp_<n>``, mode 0600), made durable, then renamed to it. As Go's ``os.Rename``
    an existing directory is refused: FileExistsError, its text ``rename <tmp> <outfile>: file exists``.
    The temp file is removed on any failure."""
    tmp, fd = _go_temp(_go_dir(outfile), ".docker_temp_")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # durable before it has the name: a crash leaves no partial archive
        if os.path.isdir(outfile) and not os.path.islink(outfile):  # Go: Lstat(newname).IsDir()
            raise FileExistsError(errno.EEXIST, f"rename {tmp} {outfile}: file exists")
        os.replace(tmp, outfile)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(os.path.dirname(os.path.abspath(outfile)))
