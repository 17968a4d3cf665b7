"""Blob uploads in progress: private files under ``_uploads/<uuid>`` with a resumable hash.

Hash state lives in memory (``hashlib`` objects cannot be saved); when it is lost (another
process, a restart, a rolled-back chunk) the data is hashed again from storage at commit. Its size
must match the stored data's to be used, which is enough while one writer at a time appends to an
upload; across replicas an :class:`UploadLock` (Redis) makes that so.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid as uuidlib
from dataclasses import dataclass
from typing import Protocol

from strata.digest import CHUNK, Digest
from strata.server.storage import paths
from strata.server.storage.blobstore import list_or_empty
from strata.server.storage.driver import FileWriter, PathNotFound, StorageDriver, StorageError

__all__ = ["HashState", "UploadBusy", "UploadLock", "UploadStore", "is_upload_id"]


class UploadBusy(StorageError):
    """Another process is writing this upload right now."""


class UploadLock(Protocol):
    lease_ms: int

    def acquire(self, uid: str) -> str | None: ...

    def renew(self, uid: str, token: str) -> bool: ...

    def release(self, uid: str, token: str) -> None: ...


class _LockedWriter(FileWriter):
    """A writer that holds the upload's lock until closed, renewing its lease while it writes."""

    def __init__(self, inner: FileWriter, lock: UploadLock, uid: str, token: str) -> None:
        self.inner, self.lock, self.uid, self.token = inner, lock, uid, token
        self._renewed = time.monotonic()
        self._closed = False

    @property
    def size(self) -> int:
        return self.inner.size

    def _keep(self) -> None:
        if time.monotonic() - self._renewed > self.lock.lease_ms / 3000:
            if not self.lock.renew(self.uid, self.token):
                raise UploadBusy(f"upload {self.uid}: lost its lock (lease ran out)")
            self._renewed = time.monotonic()

    def write(self, data: bytes) -> int:
        self._keep()
        return self.inner.write(data)

    def commit(self) -> None:
        self._keep()
        self.inner.commit()

    def cancel(self) -> None:
        self.inner.cancel()

    def truncate(self, size: int) -> None:
        self.inner.truncate(size)

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            if not self._closed:
                self._closed = True
                self.lock.release(self.uid, self.token)

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_upload_id(text: str) -> bool:
    return bool(_UUID_RE.match(text))


@dataclass
class HashState:
    """A running sha256 over the first ``size`` bytes of an upload."""

    hash: hashlib._Hash
    size: int


class UploadStore:
    def __init__(
        self, driver: StorageDriver, name: str, hashes: dict[str, HashState], lock: UploadLock | None = None
    ) -> None:
        self.driver = driver
        self.name = name
        self.hashes = hashes
        self.lock = lock

    def create(self) -> str:
        uid = str(uuidlib.uuid4())
        self.driver.put_content(paths.upload_startedat(self.name, uid), str(time.time()).encode())
        w = self.driver.writer(paths.upload_data(self.name, uid))
        w.close()
        self.hashes[uid] = HashState(hashlib.sha256(), 0)
        return uid

    def size(self, uid: str) -> int | None:
        """Bytes received so far, or None for an unknown upload."""
        try:
            return self.driver.stat(paths.upload_data(self.name, uid)).size
        except PathNotFound:
            return None

    def writer(self, uid: str) -> FileWriter:
        """Appends to the upload; with a lock, refused (``UploadBusy``) while another process writes it."""
        if self.lock is None:
            return self.driver.writer(paths.upload_data(self.name, uid), append=True)
        token = self.lock.acquire(uid)
        if token is None:
            raise UploadBusy(f"upload {uid} is being written by another request")
        try:
            inner = self.driver.writer(paths.upload_data(self.name, uid), append=True)
        except BaseException:
            self.lock.release(uid, token)
            raise
        return _LockedWriter(inner, self.lock, uid, token)

    def data_path(self, uid: str) -> str:
        return paths.upload_data(self.name, uid)

    def _trusted(self) -> bool:
        """Whether an in-memory hash of the right size describes the stored bytes: on remote storage
        (S3), two processes appending at one offset leave one's bytes and the other's hash, so there
        only with the upload lock; a local file is appended to (``O_APPEND``), so sizes tell; memory is
        one process's, whose requests to one upload the handlers serialise."""
        if self.lock is not None or self.driver.name == "inmemory":
            return True
        return self.driver.local_path(paths.uploads_dir(self.name)) is not None

    def hash_state(self, uid: str, size: int) -> HashState | None:
        """The in-memory hash if it covers exactly ``size`` bytes (and can be trusted)."""
        st = self.hashes.get(uid)
        if st is not None and st.size == size and self._trusted():
            return st
        return None

    def digest_of(self, uid: str, algorithm: str) -> Digest:
        """Digest of the whole upload, from memory when possible, else by reading it back."""
        size = self.size(uid)
        st = self.hashes.get(uid)
        if st is not None and st.size == size and algorithm == "sha256" and self._trusted():
            return Digest("sha256", st.hash.hexdigest())
        h = hashlib.new(algorithm)
        with self.driver.reader(self.data_path(uid)) as r:
            while chunk := r.read(CHUNK):
                h.update(chunk)
        return Digest(algorithm, h.hexdigest())

    def remove(self, uid: str) -> bool:
        self.hashes.pop(uid, None)
        try:
            self.driver.delete(paths.upload_dir(self.name, uid))
        except PathNotFound:
            return False
        return True

    def started_at(self, uid: str) -> float | None:
        """When the upload began; its folder's time while ``startedat`` is being written."""
        try:
            return float(self.driver.get_content(paths.upload_startedat(self.name, uid)))
        except (PathNotFound, ValueError):
            pass
        try:
            return self.driver.stat(paths.upload_dir(self.name, uid)).mtime
        except PathNotFound:
            return None

    def all(self) -> list[str]:
        return [p.rsplit("/", 1)[1] for p in list_or_empty(self.driver, paths.uploads_dir(self.name))]
