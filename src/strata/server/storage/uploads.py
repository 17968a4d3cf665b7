"""Blob uploads in progress: private files under ``_uploads/<uuid>`` with a resumable hash.

Hash state lives in memory (``hashlib`` objects cannot be saved); when it is lost (another
process, a restart, a rolled-back chunk) the data is hashed again from storage at commit.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid as uuidlib
from dataclasses import dataclass

from strata.digest import CHUNK, Digest
from strata.server.storage import paths
from strata.server.storage.blobstore import list_or_empty
from strata.server.storage.driver import FileWriter, PathNotFound, StorageDriver

__all__ = ["HashState", "UploadStore", "is_upload_id"]

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_upload_id(text: str) -> bool:
    return bool(_UUID_RE.match(text))


@dataclass
class HashState:
    """A running sha256 over the first ``size`` bytes of an upload."""

    hash: hashlib._Hash
    size: int


class UploadStore:
    def __init__(self, driver: StorageDriver, name: str, hashes: dict[str, HashState]) -> None:
        self.driver = driver
        self.name = name
        self.hashes = hashes

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
        return self.driver.writer(paths.upload_data(self.name, uid), append=True)

    def data_path(self, uid: str) -> str:
        return paths.upload_data(self.name, uid)

    def hash_state(self, uid: str, size: int) -> HashState | None:
        """The in-memory hash if it covers exactly ``size`` bytes."""
        st = self.hashes.get(uid)
        if st is not None and st.size == size:
            return st
        return None

    def digest_of(self, uid: str, algorithm: str) -> Digest:
        """Digest of the whole upload, from memory when possible, else by reading it back."""
        size = self.size(uid)
        st = self.hashes.get(uid)
        if st is not None and st.size == size and algorithm == "sha256":
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
