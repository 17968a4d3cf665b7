"""The filesystem storage driver: every driver path lives under one root directory."""

from __future__ import annotations

import os
import shutil
import time
from typing import BinaryIO

from strata.atomicfile import TMP_PREFIX, write_bytes_atomic
from strata.server.storage.driver import (
    FileInfo,
    FileWriter,
    InvalidOffset,
    PathNotFound,
    StorageDriver,
    check_path,
)

__all__ = ["FilesystemDriver"]


class _FsWriter(FileWriter):
    def __init__(self, full: str, append: bool) -> None:
        self._full = full
        os.makedirs(os.path.dirname(full), exist_ok=True)
        self._f = open(full, "ab" if append else "wb")  # noqa: SIM115
        self._size = self._f.tell()
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    def write(self, data: bytes) -> int:
        n = self._f.write(data)
        self._size += n
        return n

    def truncate(self, size: int) -> None:
        self._f.flush()
        self._f.truncate(size)
        self._f.seek(size)
        self._size = size

    def commit(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def cancel(self) -> None:
        self.close()
        try:
            os.unlink(self._full)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._f.close()


class FilesystemDriver(StorageDriver):
    name = "filesystem"

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)

    def _full(self, path: str) -> str:
        check_path(path)
        return self.root + path if path != "/" else self.root

    def get_content(self, path: str) -> bytes:
        try:
            with open(self._full(path), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path)

    def put_content(self, path: str, data: bytes) -> None:
        full = self._full(path)
        parent = os.path.dirname(full)
        os.makedirs(parent, exist_ok=True)
        write_bytes_atomic(full, data, mode=0o600)

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        full = self._full(path)
        try:
            f = open(full, "rb")  # noqa: SIM115
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFound(path)
        size = os.fstat(f.fileno()).st_size
        if offset < 0 or offset > size:
            f.close()
            raise InvalidOffset(path, offset)
        f.seek(offset)
        return f

    def writer(self, path: str, append: bool = False) -> FileWriter:
        full = self._full(path)
        if append and not os.path.exists(full):
            raise PathNotFound(path)
        return _FsWriter(full, append)

    def stat(self, path: str) -> FileInfo:
        try:
            st = os.stat(self._full(path))
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path)
        is_dir = os.path.isdir(self._full(path))
        return FileInfo(path, 0 if is_dir else st.st_size, st.st_mtime, is_dir)

    def list(self, path: str) -> list[str]:
        full = self._full(path)
        try:
            names = os.listdir(full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path)
        base = "" if path == "/" else path
        return [f"{base}/{n}" for n in names if not n.startswith(TMP_PREFIX)]

    def move(self, src: str, dst: str) -> None:
        fsrc, fdst = self._full(src), self._full(dst)
        if not os.path.exists(fsrc):
            raise PathNotFound(src)
        os.makedirs(os.path.dirname(fdst), exist_ok=True)
        os.replace(fsrc, fdst)

    def delete(self, path: str) -> None:
        full = self._full(path)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full, ignore_errors=True)
            return
        try:
            os.unlink(full)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path)

    def touch(self, path: str) -> None:
        now = time.time()
        try:
            os.utime(self._full(path), (now, now))
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFound(path)

    def local_path(self, path: str) -> str | None:
        return self._full(path)
