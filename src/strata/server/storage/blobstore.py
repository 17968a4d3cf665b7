"""The global content-addressed blob store and each repository's linked view of it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import BinaryIO

from strata.digest import Digest, digest_bytes
from strata.errors import InvalidDigest
from strata.server.storage import paths
from strata.server.storage.driver import FileInfo, PathNotFound, StorageDriver

__all__ = ["BlobStore", "LinkedBlobs", "linked_digests", "list_or_empty", "read_link", "write_link"]


def read_link(driver: StorageDriver, path: str) -> Digest | None:
    """The digest a link file holds, or None if it is missing or damaged."""
    try:
        return Digest.parse(driver.get_content(path).decode("ascii", "replace").strip())
    except (PathNotFound, InvalidDigest):
        return None


def write_link(driver: StorageDriver, path: str, d: Digest) -> None:
    driver.put_content(path, str(d).encode())


class BlobStore:
    """Blobs stored once, by digest, for every repository."""

    def __init__(self, driver: StorageDriver, touch_after: float = 600.0) -> None:
        self.driver = driver
        self.touch_after = touch_after

    def stat(self, d: Digest) -> FileInfo | None:
        try:
            return self.driver.stat(paths.blob_data(d))
        except PathNotFound:
            return None

    def get(self, d: Digest) -> bytes | None:
        try:
            return self.driver.get_content(paths.blob_data(d))
        except PathNotFound:
            return None

    def put(self, data: bytes, algorithm: str = "sha256") -> Digest:
        """Store small content (manifests) under its digest by ``algorithm`` (the one the client used)."""
        d = digest_bytes(data, algorithm)
        path = paths.blob_data(d)
        info = self.stat(d)
        if info is not None and info.size == len(data):
            self.driver.touch(path)
        else:
            self.driver.put_content(path, data)
        return d

    def reader(self, d: Digest, offset: int = 0) -> BinaryIO:
        return self.driver.reader(paths.blob_data(d), offset)

    def local_path(self, d: Digest) -> str | None:
        return self.driver.local_path(paths.blob_data(d))

    def adopt(self, src: str, d: Digest) -> None:
        """Make the verified file at driver path ``src`` the blob ``d`` (atomic move)."""
        dst = paths.blob_data(d)
        if self.stat(d) is not None:
            self.driver.delete(src)
            self.driver.touch(dst)
        else:
            self.driver.move(src, dst)
            self.driver.touch(dst)

    def is_stale(self, info: FileInfo) -> bool:
        """Old enough that a GC could take it if nothing refreshed it."""
        return time.time() - info.mtime > self.touch_after

    def keep_alive(self, d: Digest, info: FileInfo) -> None:
        """Refresh an old blob's time so a running GC's grace period protects it."""
        if self.is_stale(info):
            try:
                self.driver.touch(paths.blob_data(d))
            except PathNotFound:
                pass

    def delete(self, d: Digest) -> None:
        try:
            self.driver.delete(paths.blob_dir(d))
        except PathNotFound:
            pass

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
        if read_link(self.driver, paths.layer_link(self.name, d)) != d:
            return None
        return self.blobs.stat(d)

    def link(self, d: Digest) -> None:
        path = paths.layer_link(self.name, d)
        if read_link(self.driver, path) != d:
            write_link(self.driver, path, d)

    def unlink(self, d: Digest) -> bool:
        try:
            self.driver.delete(paths.layer_link(self.name, d).rsplit("/", 1)[0])
        except PathNotFound:
            return False
        return True

    def all(self) -> list[Digest]:
        return linked_digests(self.driver, paths.layers_dir(self.name))
