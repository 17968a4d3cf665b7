"""The global content-addressed blob store and each repository's linked view of it."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from strata.digest import Digest, digest_bytes
from strata.errors import InvalidDigest
from strata.server.storage import paths
from strata.server.storage.driver import FileInfo, PathNotFound, StorageDriver

__all__ = ["BlobStore", "DescriptorCache", "LinkedBlobs", "linked_digests", "list_or_empty", "read_link", "write_link"]


def read_link(driver: StorageDriver, path: str) -> Digest | None:
    """The digest a link file holds, or None if it is missing or damaged."""
    try:
        return Digest.parse(driver.get_content(path).decode("ascii", "replace").strip())
    except (PathNotFound, InvalidDigest):
        return None


def write_link(driver: StorageDriver, path: str, d: Digest) -> None:
    driver.put_content(path, str(d).encode())


class DescriptorCache(Protocol):
    """What a blob descriptor cache keeps: (size, mtime) per blob, and which repositories link it.
    ``drop``/``unlink`` must raise when they fail (a stale entry could claim a deleted blob)."""

    def get(self, d: Digest) -> tuple[int, float] | None: ...

    def put(self, d: Digest, size: int, mtime: float) -> None: ...

    def drop(self, d: Digest) -> None: ...

    def linked(self, repo: str, d: Digest) -> bool: ...

    def link(self, repo: str, d: Digest) -> None: ...

    def unlink(self, repo: str, d: Digest) -> None: ...


class _ContentLRU:
    """Small content (manifests) by digest, in this process: content under a digest never changes,
    so only whether it still exists must be asked (of the descriptor cache)."""

    def __init__(self, max_bytes: int = 32 << 20, max_item: int = 1 << 20) -> None:
        self.max_bytes, self.max_item = max_bytes, max_item
        self._items: OrderedDict[Digest, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, d: Digest) -> bytes | None:
        with self._lock:
            data = self._items.get(d)
            if data is not None:
                self._items.move_to_end(d)
            return data

    def put(self, d: Digest, data: bytes) -> None:
        if len(data) > self.max_item:
            return
        with self._lock:
            if d in self._items:
                return
            self._items[d] = data
            self._size += len(data)
            while self._size > self.max_bytes:
                self._size -= len(self._items.popitem(last=False)[1])

    def drop(self, d: Digest) -> None:
        with self._lock:
            data = self._items.pop(d, None)
            if data is not None:
                self._size -= len(data)


class BlobStore:
    """Blobs stored once, by digest, for every repository (descriptors optionally cached; with a
    cache, small content is also kept in this process and served once the cache says it exists)."""

    def __init__(self, driver: StorageDriver, touch_after: float = 600.0, cache: DescriptorCache | None = None) -> None:
        self.driver = driver
        self.touch_after = touch_after
        self.cache = cache
        # remote storage: keep small content here too (a round trip saved per manifest GET)
        remote = driver.name not in ("filesystem", "inmemory")
        self._content = _ContentLRU() if cache is not None or remote else None

    def stat(self, d: Digest) -> FileInfo | None:
        if self.cache is not None:
            hit = self.cache.get(d)
            if hit is not None:
                return FileInfo(paths.blob_data(d), hit[0], hit[1], False)
        try:
            info = self.driver.stat(paths.blob_data(d))
        except PathNotFound:
            return None
        if self.cache is not None:
            self.cache.put(d, info.size, info.mtime)
        return info

    def _forget(self, d: Digest) -> None:
        if self.cache is not None:
            self.cache.drop(d)
        if self._content is not None:
            self._content.drop(d)

    def get(self, d: Digest, vouched: bool = False) -> bytes | None:
        """Content by digest; ``vouched``: a link just read says it exists, so cached bytes need no stat."""
        if self._content is not None:
            data = self._content.get(d)
            if data is not None and (vouched or self.stat(d) is not None):
                return data
        try:
            data = self.driver.get_content(paths.blob_data(d))
        except PathNotFound:
            return None
        c = self._content
        if c is not None and len(data) <= c.max_item and digest_bytes(data, d.algorithm) == d:
            c.put(d, data)
        return data

    def put(self, data: bytes, algorithm: str = "sha256") -> Digest:
        """Store small content (manifests) under its digest by ``algorithm`` (the one the client used)."""
        d = digest_bytes(data, algorithm)
        path = paths.blob_data(d)
        info = self.stat(d)
        if info is not None and info.size == len(data):
            self.driver.touch(path)
        else:
            self.driver.put_content(path, data)
        self._forget(d)
        return d

    def reader(self, d: Digest, offset: int = 0) -> BinaryIO:
        return self.driver.reader(paths.blob_data(d), offset)

    def local_path(self, d: Digest) -> str | None:
        return self.driver.local_path(paths.blob_data(d))

    def adopt(self, src: str, d: Digest) -> None:
        """Make the verified file at driver path ``src`` the blob ``d`` (atomic move)."""
        dst = paths.blob_data(d)
        self._forget(d)
        if self.stat(d) is not None:
            self.driver.delete(src)
            self.driver.touch(dst)
        else:
            self.driver.move_and_touch(src, dst)
        self._forget(d)

    def is_stale(self, info: FileInfo) -> bool:
        """Old enough that a GC could take it if nothing refreshed it."""
        return time.time() - info.mtime > self.touch_after

    def keep_alive(self, d: Digest, info: FileInfo) -> None:
        """Refresh an old blob's time so a running GC's grace period protects it."""
        if self.is_stale(info):
            self._forget(d)
            try:
                self.driver.touch(paths.blob_data(d))
            except PathNotFound:
                pass

    def delete(self, d: Digest) -> None:
        self._forget(d)
        try:
            self.driver.delete(paths.blob_dir(d))
        except PathNotFound:
            pass
        self._forget(d)

    def all(self) -> Iterator[tuple[Digest, FileInfo]]:
        """Every stored blob with its data file's info."""
        root = paths.blobs_root()
        try:
            algos = self.driver.list(root)
        except PathNotFound:
            return
        for algo_dir in algos:
            algo = algo_dir.rsplit("/", 1)[1]
            for prefix in list_or_empty(self.driver, algo_dir):
                for blob_dir in list_or_empty(self.driver, prefix):
                    try:
                        d = Digest.parse(f"{algo}:{blob_dir.rsplit('/', 1)[1]}")
                        info = self.driver.stat(blob_dir + "/data")
                    except (InvalidDigest, PathNotFound):
                        continue
                    yield d, info


def list_or_empty(driver: StorageDriver, path: str) -> list[str]:
    """The entries under ``path``; none when it does not exist."""
    try:
        return driver.list(path)
    except PathNotFound:
        return []


def linked_digests(driver: StorageDriver, base: str) -> list[Digest]:
    """The digests of the ``<base>/<alg>/<hex>/link`` files (unreadable links skipped)."""
    out: list[Digest] = []
    for algo_dir in list_or_empty(driver, base):
        for hex_dir in list_or_empty(driver, algo_dir):
            d = read_link(driver, hex_dir + "/link")
            if d is not None:
                out.append(d)
    return out


class LinkedBlobs:
    """The blobs one repository may serve: links into the global store."""

    def __init__(self, blobs: BlobStore, name: str) -> None:
        self.blobs = blobs
        self.driver = blobs.driver
        self.name = name

    def stat(self, d: Digest) -> FileInfo | None:
        """Info of a blob linked into this repository and present, else None."""
        cache = self.blobs.cache
        if cache is None or not cache.linked(self.name, d):
            if read_link(self.driver, paths.layer_link(self.name, d)) != d:
                return None
            if cache is not None:
                cache.link(self.name, d)
        return self.blobs.stat(d)

    def link(self, d: Digest) -> None:
        path = paths.layer_link(self.name, d)
        if read_link(self.driver, path) != d:
            write_link(self.driver, path, d)

    def unlink(self, d: Digest) -> bool:
        cache = self.blobs.cache
        if cache is not None:
            cache.unlink(self.name, d)
        try:
            self.driver.delete(paths.layer_link(self.name, d).rsplit("/", 1)[0])
        except PathNotFound:
            return False
        finally:
            if cache is not None:
                cache.unlink(self.name, d)
        return True

    def all(self) -> list[Digest]:
        return linked_digests(self.driver, paths.layers_dir(self.name))
