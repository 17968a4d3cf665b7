"""The store's directory layout, its locks, and atomic file writing.

Layout under the root::

    strata.db                 SQLite (WAL): images, tags, digests, layers, blobs
    blobs/sha256/<hex>        content-addressed blobs (configs, manifests, layer blobs)
    layers/<diff-id hex>/     unpacked layers, overlayfs-ready (made on first use)
    tmp/                      private staging area; anything here is garbage after a crash
    lock                      flock: shared while writing, exclusive while deleting files
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from strata.digest import Digest
from strata.errors import StoreError

__all__ = ["StoreRoot", "default_root", "fsync_dir"]


def default_root() -> Path:
    env = os.environ.get("STRATA_ROOT")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/strata")
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "strata"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StoreRoot:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            for sub in ("blobs/sha256", "layers", "tmp"):
                (path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the image store at {path}: {e.strerror}") from None
        self.db_path = path / "strata.db"
        self.tmp = path / "tmp"

    def blob_path(self, digest: Digest) -> Path:
        return self.path / "blobs" / digest.algorithm / digest.hex

    def layer_dir(self, diff_id: Digest) -> Path:
        return self.path / "layers" / diff_id.hex

    @contextlib.contextmanager
    def lock(self, exclusive: bool, blocking: bool = True) -> Iterator[bool]:
        """Shared lock for writers, exclusive for deleters. Yields False if non-blocking and busy."""
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            flags = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            if not blocking:
                flags |= fcntl.LOCK_NB
            try:
                fcntl.flock(fd, flags)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def temp_file(self) -> Iterator[tuple[IO[bytes], Path]]:
        """A temp file in tmp/; removed unless the caller renamed it away."""
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                yield f, path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def temp_dir(self, prefix: str = "dir-") -> Path:
        return Path(tempfile.mkdtemp(dir=self.tmp, prefix=prefix))

    def publish_file(self, tmp_path: Path, final: Path) -> None:
        """fsync + rename into place (content-addressed, so an existing file is already right)."""
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
        for entry in self.tmp.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
