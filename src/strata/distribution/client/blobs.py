"""Blob downloads: ``BlobReader`` hashes as it reads, checks size and digest at the end, and resumes
with ``Range`` after a dropped connection (then from the next mirror, if there is one)."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import IO, BinaryIO

from strata.digest import Digest, ReaderBase, hasher
from strata.distribution.client.errors import describe
from strata.distribution.client.manifests import MAX_MANIFEST_SIZE
from strata.distribution.client.session import Session
from strata.distribution.client.transport import NETWORK_ERRORS, READ_CHUNK, Response
from strata.distribution.hosts import Endpoint
from strata.errors import DigestMismatch, RegistryError, TransportError

__all__ = ["BlobReader", "BlobsAPI", "copy_blob_to"]


class BlobsAPI(Session):
    def head_blob(self, repo: str, digest: Digest) -> int | None:
        """The blob's size if ``repo`` has it, else None."""
        resp = self.head(f"/v2/{repo}/blobs/{digest}", self.scopes(repo))
        if resp is None:
            return None
        size = resp.header("Content-Length")
        return int(size) if size.isdigit() else 0

    def get_blob_response(self, repo: str, digest: Digest, offset: int = 0) -> Response:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scopes=self.scopes(repo), headers=headers)
        return self.check(resp, 200, 206)

    def open_blob(
        self,
        repo: str,
        digest: Digest,
        size: int | None = None,
        on_read: Callable[[int], None] | None = None,
    ) -> BlobReader:
        """A verifying, resuming stream of a blob."""
        return BlobReader(self, repo, digest, size, on_read)

    def get_small_blob(self, repo: str, digest: Digest, limit: int = MAX_MANIFEST_SIZE * 4) -> bytes:
        """A config-sized blob, verified, in memory."""
        with self.open_blob(repo, digest) as r:
            data = r.read(limit + 1)
            if len(data) > limit:
                raise TransportError(f"blob {digest} too big: more than {limit} bytes")
            r.read()
        return data


class BlobReader(ReaderBase):
    """Reads one blob, hashing as it goes; resumes with ``Range`` after a dropped connection.

    At end of stream it checks the size and digest and raises ``DigestMismatch`` (nothing is returned
    as EOF from a bad blob), so a consumer writing to a temp file never commits bad content."""

    max_resumes = 5

    def __init__(
        self,
        client: BlobsAPI,
        repo: str,
        digest: Digest,
        size: int | None,
        on_read: Callable[[int], None] | None = None,
    ) -> None:
        self.client, self.repo, self.digest, self.expected_size = client, repo, digest, size
        self._hash = hasher(digest.algorithm)
        self.offset = 0
        self._resp: Response | None = None
        self._resumes = 0
        self._done = False
        self._on_read = on_read
        self._endpoint: Endpoint | None = None

    def _open(self) -> Response:
        resp = self.client.get_blob_response(self.repo, self.digest, self.offset)
        self._endpoint = resp.endpoint
        if self.offset and resp.status == 200:
            # server ignored Range: skip what we already have
            to_skip = self.offset
            while to_skip:
                chunk = resp.read(min(to_skip, READ_CHUNK))
                if not chunk:
                    break
                to_skip -= len(chunk)
        elif self.offset and resp.status == 206:
            cr = resp.header("Content-Range")
            if not cr.startswith(f"bytes {self.offset}-"):
                resp.close()
                raise TransportError(f"blob {self.digest}: server resumed at the wrong offset ({cr})")
        return resp

    def _drop(self, err: BaseException) -> None:
        self.close()
        self._resumes += 1
        if self._resumes > self.max_resumes:
            ep, self._endpoint = self._endpoint, None
            if ep is not None and self.client.fail_over(ep):
                self._resumes = 0  # resume (by Range) from the next mirror
                return
            raise TransportError(f"downloading blob {self.digest}: {describe(err)}") from err
        time.sleep(min(0.2 * self._resumes, 2.0))

    def _chunk(self, n: int) -> bytes | None:
        """Up to ``n`` bytes from the server; None after a dropped connection (resume and ask again)."""
        try:
            if self._resp is None:
                self._resp = self._open()
            return self._resp.read(n)
        except (TransportError, RegistryError):
            raise
        except NETWORK_ERRORS as e:
            if self.client.transport.cancelled:
                self.close()
                raise TransportError(f"downloading blob {self.digest}: cancelled") from e
            self._drop(e)
            return None

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            parts = []
            while chunk := self.read(READ_CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        while not self._done:
            data = self._chunk(n)
            if data is None:
                continue
            if data:
                self._take(data)
                return data
            # EOF from the server
            if self.expected_size is not None and self.offset < self.expected_size:
                self._drop(http.client.IncompleteRead(b"", self.expected_size - self.offset))
                continue
            self._finish()
        return b""

    def _take(self, data: bytes) -> None:
        if self.expected_size is not None and self.offset + len(data) > self.expected_size:
            self.close()
            raise DigestMismatch(
                f"filesystem layer verification failed for digest {self.digest}: more than {self.expected_size} bytes"
            )
        self._hash.update(data)
        self.offset += len(data)
        if self._on_read:
            self._on_read(len(data))

    def _finish(self) -> None:
        self._done = True
        self.close()
        if Digest(self.digest.algorithm, self._hash.hexdigest()) != self.digest:
            raise DigestMismatch(f"filesystem layer verification failed for digest {self.digest}")

    def close(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def copy_blob_to(reader: BlobReader, out: IO[bytes] | BinaryIO) -> int:
    total = 0
    while chunk := reader.read(READ_CHUNK):
        out.write(chunk)
        total += len(chunk)
    return total
