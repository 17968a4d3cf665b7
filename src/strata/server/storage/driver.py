"""The storage-driver interface: distribution's verbs over a path-keyed blob filesystem.

Paths are absolute, slash-separated and match ``^(/[A-Za-z0-9._-]+)+$`` with no ``.``/``..``
component; every driver checks them with :func:`check_path`. Drivers are synchronous: the
filesystem one is fast enough to call from the event loop, remote ones are run in a thread by callers.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from strata.errors import NotFound, StoreError

__all__ = [
    "FileInfo",
    "FileWriter",
    "InvalidOffset",
    "InvalidPath",
    "PathNotFound",
    "StorageDriver",
    "StorageError",
    "check_path",
]

_PATH_RE = re.compile(r"^(/[A-Za-z0-9._-]+)+$")


class StorageError(StoreError):
    """A storage driver failure."""


class PathNotFound(StorageError, NotFound):
    def __init__(self, path: str) -> None:
        super().__init__(f"path not found: {path}")
        self.path = path


class InvalidPath(StorageError):
    def __init__(self, path: str) -> None:
        super().__init__(f"invalid path: {path!r}")
        self.path = path


class InvalidOffset(StorageError):
    def __init__(self, path: str, offset: int) -> None:
        super().__init__(f"invalid offset {offset} for {path}")
        self.path = path
        self.offset = offset


def check_path(path: str) -> str:
    """Return ``path`` if drivers accept it, else raise ``InvalidPath``."""
    if path == "/":
        return path
    if not _PATH_RE.match(path) or any(p in (".", "..") for p in path.split("/")):
        raise InvalidPath(path)
    return path


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: str
    size: int
    mtime: float
    is_dir: bool


class FileWriter(ABC):
    """Writes a file in place; ``commit`` makes the bytes durable, ``cancel`` removes them."""

    @property
    @abstractmethod
    def size(self) -> int: ...

    @abstractmethod
    def write(self, data: bytes) -> int: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def cancel(self) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def truncate(self, size: int) -> None:
        """Drop everything after ``size`` bytes (rolls back a failed append)."""

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StorageDriver(ABC):
    name: str = "abstract"

    @abstractmethod
    def get_content(self, path: str) -> bytes: ...

    @abstractmethod
    def put_content(self, path: str, data: bytes) -> None:
        """Store ``data`` at ``path`` atomically (readers see old or new, never a part)."""

    @abstractmethod
    def reader(self, path: str, offset: int = 0) -> BinaryIO: ...

    @abstractmethod
    def writer(self, path: str, append: bool = False) -> FileWriter: ...

    @abstractmethod
    def stat(self, path: str) -> FileInfo: ...

    @abstractmethod
    def list(self, path: str) -> list[str]:
        """Full paths of the direct children of directory ``path``."""

    @abstractmethod
    def move(self, src: str, dst: str) -> None:
        """Atomically move ``src`` to ``dst``, replacing it."""

    @abstractmethod
    def delete(self, path: str) -> None:
        """Delete a file or a whole directory tree."""

    @abstractmethod
    def touch(self, path: str) -> None:
        """Set the modification time of ``path`` to now (GC's grace period counts from it)."""

    def move_and_touch(self, src: str, dst: str) -> None:
        """``move``, then ``touch`` of ``dst`` (a driver may do both at once)."""
        self.move(src, dst)
        self.touch(dst)

    def walk(self, path: str) -> Iterator[FileInfo]:
        """Every file and directory below ``path``, depth first, parents before children."""
        for child in sorted(self.list(path)):
            try:
                info = self.stat(child)
            except PathNotFound:
                continue
            yield info
            if info.is_dir:
                yield from self.walk(child)

    def local_path(self, path: str) -> str | None:
        """A local filesystem path for ``path`` if the driver has one (for sendfile)."""
        return None

    def redirect_url(self, path: str) -> str | None:
        """A URL clients may fetch ``path`` from directly, if the backend offers one."""
        return None
