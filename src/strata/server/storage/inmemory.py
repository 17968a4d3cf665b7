"""The in-memory storage driver (tests, ephemeral registries)."""

from __future__ import annotations

import io
import threading
import time
from typing import BinaryIO

from strata.server.storage.driver import (
    FileInfo,
    FileWriter,
    InvalidOffset,
    PathNotFound,
    StorageDriver,
    check_path,
)

__all__ = ["InMemoryDriver"]


class _File:
    __slots__ = ("data", "mtime")

    def __init__(self) -> None:
        self.data = bytearray()
        self.mtime = time.time()


class _MemWriter(FileWriter):
    def __init__(self, driver: InMemoryDriver, path: str, f: _File) -> None:
        self._driver = driver
        self._path = path
        self._f = f

    @property
    def size(self) -> int:
        return len(self._f.data)

    def write(self, data: bytes) -> int:
        with self._driver.lock:
            self._f.data += data
            self._f.mtime = time.time()
        return len(data)

    def truncate(self, size: int) -> None:
        with self._driver.lock:
            del self._f.data[size:]

    def commit(self) -> None:
        pass

    def cancel(self) -> None:
        try:
            self._driver.delete(self._path)
        except PathNotFound:
            pass

    def close(self) -> None:
        pass


class InMemoryDriver(StorageDriver):
    name = "inmemory"

    def __init__(self) -> None:
        self.files: dict[str, _File] = {}
        self.lock = threading.RLock()

    def _parents_ok(self, path: str) -> None:
        # a file may not sit where a directory is needed
        parts = path.split("/")
        for i in range(2, len(parts)):
            if "/".join(parts[:i]) in self.files:
                raise PathNotFound(path)

    def get_content(self, path: str) -> bytes:
        check_path(path)
        with self.lock:
            f = self.files.get(path)
            if f is None:
                raise PathNotFound(path)
            return bytes(f.data)

    def put_content(self, path: str, data: bytes) -> None:
        check_path(path)
        with self.lock:
            self._parents_ok(path)
            f = _File()
            f.data += data
            self.files[path] = f

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        data = self.get_content(path)
        if offset < 0 or offset > len(data):
            raise InvalidOffset(path, offset)
        r = io.BytesIO(data)
        r.seek(offset)
        return r

    def writer(self, path: str, append: bool = False) -> FileWriter:
        check_path(path)
        with self.lock:
            f = self.files.get(path)
            if append and f is None:
                raise PathNotFound(path)
            if f is None or not append:
                self._parents_ok(path)
                f = _File()
                self.files[path] = f
            return _MemWriter(self, path, f)

    def _is_dir(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return any(k.startswith(prefix) for k in self.files)

    def stat(self, path: str) -> FileInfo:
        check_path(path)
        with self.lock:
            f = self.files.get(path)
            if f is not None:
                return FileInfo(path, len(f.data), f.mtime, False)
            prefix = path.rstrip("/") + "/"
            mtimes = [v.mtime for k, v in self.files.items() if k.startswith(prefix)]
            if path == "/":
                return FileInfo(path, 0, max(mtimes, default=0.0), True)
            if not mtimes:
                raise PathNotFound(path)
            return FileInfo(path, 0, max(mtimes), True)

    def list(self, path: str) -> list[str]:
        check_path(path)
        prefix = path.rstrip("/") + "/"
        with self.lock:
            if path in self.files:
                raise PathNotFound(path)
            children = {prefix + k[len(prefix) :].split("/", 1)[0] for k in self.files if k.startswith(prefix)}
        if not children and path != "/":
            raise PathNotFound(path)
        return sorted(children)

    def move(self, src: str, dst: str) -> None:
        check_path(src)
        check_path(dst)
        with self.lock:
            f = self.files.pop(src, None)
            if f is None:
                raise PathNotFound(src)
            self.files[dst] = f

    def delete(self, path: str) -> None:
        check_path(path)
        prefix = path.rstrip("/") + "/"
        with self.lock:
            keys = [k for k in self.files if k == path or k.startswith(prefix)]
            if not keys:
                raise PathNotFound(path)
            for k in keys:
                del self.files[k]

    def touch(self, path: str) -> None:
        check_path(path)
        with self.lock:
            f = self.files.get(path)
            if f is None:
                raise PathNotFound(path)
            f.mtime = time.time()
