"""The store's directory layout, its locks, and atomic file writing.

Layout under the root::

    strata.db                 SQLite (WAL): images, tags, digests, layers, blobs
    blobs/sha256/<hex>        content-addressed blobs (configs, manifests, layer blobs)
    layers/<diff-id hex>/     unpacked layers, overlayfs-ready (made on first use)
    tmp/                      private staging area; anything here is garbage after a crash
    lock                      flock: shared while writing, exclusive while deleting files

The store is private (as Docker's after CVE-2021-41091): the root and its top-level directories are
0710 (tmp/ 0700) and the databases 0600, so no other local user reads a container's environment or
runs a setuid file out of a layer. Opening a store tightens a store made with looser modes: the
root's own entries only, never a walk of the tree.
"""

from __future__ import annotations

import errno
import os
import stat

from strata.errors import StoreError
from strata.rootless import is_rootless

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager
    from pathlib import Path
    from typing import IO

    from strata.digest import Digest

__all__ = ["FILE_MODE", "StoreLock", "StoreRoot", "as_path", "default_root", "default_root_dir", "dir_mode",
           "plain_path", "secure_root"]

FILE_MODE = 0o600  # the databases and the lock
_PRIVATE_FILES = frozenset(
    [f"{db}{suffix}" for db in ("strata.db", "containers.db") for suffix in ("", "-wal", "-shm", "-journal")]
    + ["lock"]
)


def plain_path(path: str | os.PathLike[str]) -> str:
    """``str(pathlib.PurePosixPath(path))`` without pathlib: empty and ``.`` parts and a trailing slash
    dropped, a leading ``//`` kept (POSIX leaves its meaning to the system); ``..`` stays."""
    text = os.fspath(path)
    root = ""
    if text.startswith("/"):
        root = "//" if text.startswith("//") and not text.startswith("///") else "/"
    return root + "/".join(p for p in text.split("/") if p and p != ".") or "."


def as_path(text: str | os.PathLike[str]) -> Path:
    """``pathlib.Path(text)``, pathlib imported on first use: the listing commands work on plain ``str``
    paths (pathlib's import, with fnmatch, urllib.parse and ipaddress, costs them a sixth of their run)."""
    from pathlib import Path

    return Path(text)


def default_root_dir() -> str:
    """The store root when none is given: ``$STRATA_ROOT``, ``/var/lib/strata`` for root, else
    ``$XDG_DATA_HOME/strata`` (``~/.local/share/strata``)."""
    env = os.environ.get("STRATA_ROOT")
    if env:
        return plain_path(env)
    if os.geteuid() == 0:
        return "/var/lib/strata"
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return plain_path(os.path.join(data, "strata"))


def default_root() -> Path:
    return as_path(default_root_dir())


def dir_mode(name: str = "") -> int:
    """The mode of the store root (``name`` empty) or of its top-level directory ``name``: Docker's
    0710 (group root may pass through) for a root-owned store, else 0700; tmp/ always 0700."""
    return 0o700 if name == "tmp" or is_rootless() else 0o710


def _tighten(name: str | int, mode: int, root_fd: int | None = None) -> None:
    """Drop the permission bits of ``name`` (relative to ``root_fd``, never through a symlink; or a
    descriptor) that ``mode`` does not grant."""
    st = os.fstat(name) if isinstance(name, int) else os.stat(name, dir_fd=root_fd, follow_symlinks=False)
    current = stat.S_IMODE(st.st_mode)
    wanted = current & (mode | 0o7000)
    if stat.S_ISLNK(st.st_mode) or wanted == current:
        return
    try:
        os.chmod(name, wanted, dir_fd=root_fd)
    except OSError as e:  # a store on a read-only filesystem, or not ours: usable as it is
        if e.errno not in (errno.EPERM, errno.EROFS):
            raise


def secure_root(path: str | Path) -> None:
    """Make the store at ``path`` private: the root and each top-level directory lose what their
    mode grants beyond ``dir_mode``, the databases and the lock beyond 0600. Only the root's own
    entries are looked at (one directory listing), so every command can afford it."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _tighten(fd, dir_mode())
        with os.scandir(fd) as entries:
            names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for name, is_dir in names:
            try:
                if is_dir:
                    _tighten(name, dir_mode(name), fd)
                elif name in _PRIVATE_FILES:
                    _tighten(name, FILE_MODE, fd)
            except FileNotFoundError:
                continue  # removed meanwhile
    finally:
        os.close(fd)


class StoreLock:
    """``flock(2)`` on the store's lock file for the length of a ``with`` block (a class, not a
    contextlib generator: every command opens a store, and contextlib's import is not free)."""

    def __init__(self, path: str | Path, exclusive: bool, blocking: bool) -> None:
        self._path, self._exclusive, self._blocking = path, exclusive, blocking
        self._fd = -1

    def __enter__(self) -> bool:
        import fcntl  # here: commands that only read take no lock

        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        flags = fcntl.LOCK_EX if self._exclusive else fcntl.LOCK_SH
        if not self._blocking:
            flags |= fcntl.LOCK_NB
        try:
            fcntl.flock(self._fd, flags)
        except BlockingIOError:
            return False
        except BaseException:
            self.__exit__()
            raise
        return True

    def __exit__(self, *exc: object) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class StoreRoot:
    """The store's directory: ``dir`` (a ``str``, what the listing commands use) and, for everything
    else, ``path``, ``tmp``, ``blob_path`` and ``layer_dir`` as ``pathlib.Path`` (made on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.dir = text = plain_path(path)
        try:
            os.makedirs(text, mode=dir_mode(), exist_ok=True)
            for sub in ("blobs", "blobs/sha256", "layers", "tmp"):
                try:
                    os.mkdir(os.path.join(text, sub), dir_mode(sub))
                except OSError:  # as Path.mkdir(exist_ok=True): an existing directory is fine
                    if not os.path.isdir(os.path.join(text, sub)):
                        raise
            secure_root(text)
        except OSError as e:
            raise StoreError(f"cannot create the image store at {text}: {e.strerror}") from None
        self.db_file = os.path.join(text, "strata.db")

    @property
    def path(self) -> Path:
        return as_path(self.dir)

    @property
    def db_path(self) -> Path:
        return as_path(self.db_file)

    @property
    def tmp(self) -> Path:
        return as_path(os.path.join(self.dir, "tmp"))

    def blob_file(self, digest: Digest) -> str:
        return os.path.join(self.dir, "blobs", digest.algorithm, digest.hex)

    def read_blob(self, digest: Digest) -> bytes:
        """The blob's bytes (``FileNotFoundError`` when the store does not hold it)."""
        with open(self.blob_file(digest), "rb") as f:
            return f.read()

    def blob_path(self, digest: Digest) -> Path:
        return as_path(self.blob_file(digest))

    def layer_dir_name(self, diff_id: Digest) -> str:
        return os.path.join(self.dir, "layers", diff_id.hex)

    def layer_dir(self, diff_id: Digest) -> Path:
        return as_path(self.layer_dir_name(diff_id))

    def lock(self, exclusive: bool, blocking: bool = True) -> StoreLock:
        """Shared lock for writers, exclusive for deleters; ``as`` gives False if non-blocking and busy."""
        return StoreLock(os.path.join(self.dir, "lock"), exclusive, blocking)

    def temp_file(self) -> AbstractContextManager[tuple[IO[bytes], Path]]:
        """A temp file in tmp/; removed unless the caller renamed it away."""
        import contextlib  # here and below: commands that only read never stage files
        import tempfile

        @contextlib.contextmanager
        def staged() -> Iterator[tuple[IO[bytes], Path]]:
            fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
            path = as_path(name)
            try:
                with os.fdopen(fd, "wb") as f:
                    yield f, path
            finally:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

        return staged()

    def temp_dir(self, prefix: str = "dir-") -> Path:
        import tempfile
        return as_path(tempfile.mkdtemp(dir=self.tmp, prefix=prefix))

    def publish_file(self, tmp_path: Path, final: Path) -> None:
        """fsync + rename into place (content-addressed, so an existing file is already right)."""
        from strata.atomicfile import fsync_dir  # writing only: atomicfile loads tempfile and contextlib

        final.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, final)
        fsync_dir(final.parent)

    def clean_tmp(self) -> None:
        """Remove staging leftovers of dead processes (called under the exclusive lock)."""
        import shutil
        for entry in self.tmp.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                try:
                    entry.unlink()
                except FileNotFoundError:
                    pass
