"""Appendable files on S3: a writer streams as a multipart upload and leaves a whole object on close.

The writer's content is ``prefix`` bytes of the object stored at its key (kept, not yet sent),
then ``uploaded`` bytes in the parts of its multipart upload, then ``buf``. At most one part
(``chunksize``) is held in memory. When a part is due the upload starts: a prefix of 5 MiB or more
becomes its first parts by server-side ``UploadPartCopy``; a smaller one is read back into ``buf``.
``close``/``commit`` complete the upload (or, for small content, PUT it), so another process or
replica sees exactly what was written, and the writer starts over with everything as its prefix.
A part is sent by a worker thread while the next one fills (one in flight at most), so ``write``
returns without waiting for the network unless the object store is slower than the client.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from strata.server.storage.driver import FileWriter, InvalidOffset, StorageError
from strata.server.storage.s3objects import Bucket, ObjectInfo
from strata.server.storage.s3options import MIN_CHUNK_SIZE

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

__all__ = ["S3Writer"]

_MAX_PARTS = 10_000
_SENDERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="s3-part")


class S3Writer(FileWriter):
    def __init__(self, bucket: Bucket, key: str, path: str, stored: ObjectInfo | None, append: bool) -> None:
        self._b = bucket
        self._key = key
        self._path = path
        self._stored = stored.size if stored and append else None  # size of the object kept as our base
        self._etag = stored.etag if stored and append else None
        self._chunk = bucket.opts.chunksize
        self._buf = bytearray()
        self._parts: list[CompletedPartTypeDef] = []
        self._inflight: Future[CompletedPartTypeDef] | None = None
        self._lost_part = False  # a part failed: the upload's bytes past the prefix are not all there
        self._upload_id: str | None = None
        self._uploaded = 0
        self._origin = 0  # how much of the stored object the upload's first parts copied
        self._prefix = self._stored or 0
        self._dirty = not append
        self._closed = False

    @property
    def size(self) -> int:
        return self._prefix + self._uploaded + len(self._buf)

    def write(self, data: bytes) -> int:
        if self._closed:
            raise StorageError(f"writer for {self._path} is closed")
        self._buf += data
        self._dirty = True
        if len(self._buf) + (self._prefix if self._prefix < MIN_CHUNK_SIZE else 0) >= self._chunk:
            self._ensure_started()
            while len(self._buf) >= self._chunk:
                self._send_part(self._chunk)
        return len(data)

    def _ensure_started(self) -> None:
        if self._upload_id is not None:
            return
        self._upload_id = self._b.start(self._key)
        self._origin = self._prefix
        if self._prefix >= MIN_CHUNK_SIZE:
            self._parts = self._b.copy_parts(self._key, self._upload_id, self._prefix, self._etag)
            self._uploaded = self._prefix
        elif self._prefix:
            self._buf[0:0] = self._b.get_range(self._key, 0, self._prefix, self._etag)
        self._prefix = 0

    def _send_part(self, n: int) -> None:
        assert self._upload_id is not None
        with memoryview(self._buf) as view:
            data = bytes(view[:n])
        self._settle()
        if len(self._parts) >= _MAX_PARTS:
            raise StorageError(f"s3aws: {self._path}: more than {_MAX_PARTS} parts (raise chunksize)")
        number = len(self._parts) + 1
        self._inflight = _SENDERS.submit(self._b.upload_part, self._key, self._upload_id, number, data)
        self._uploaded += n
        del self._buf[:n]

    def _settle(self) -> None:
        """Wait for the part in flight (its failure is raised here)."""
        if self._inflight is not None:
            inflight, self._inflight = self._inflight, None
            try:
                self._parts.append(inflight.result())
            except BaseException:
                self._lost_part = True
                raise

    def _publish(self) -> None:
        """Store the content as the object at the key; afterwards it is all prefix."""
        size = self.size
        if self._upload_id is None and self._prefix < MIN_CHUNK_SIZE:
            if self._prefix:
                self._buf[0:0] = self._b.get_range(self._key, 0, self._prefix, self._etag)
                self._prefix = 0
            self._etag = self._b.put(self._key, bytes(self._buf))
        else:
            self._ensure_started()
            assert self._upload_id is not None
            if self._buf:
                self._send_part(len(self._buf))
            self._settle()
            self._etag = self._b.complete(self._key, self._upload_id, self._parts)
            self._upload_id = None
        self._reset(size)
        self._stored = size
        self._dirty = False

    def _reset(self, prefix: int) -> None:
        self._parts, self._uploaded, self._origin, self._lost_part = [], 0, 0, False
        self._buf.clear()
        self._prefix = prefix

    def _abort(self) -> None:
        if self._inflight is not None:
            self._inflight.exception()  # wait; the upload is dropped anyway
            self._inflight = None
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self._b.abort(self._key, upload_id)

    def truncate(self, size: int) -> None:
        if size < 0 or size > self.size:
            raise InvalidOffset(self._path, size)
        if size == self.size:
            return
        before = self._prefix + self._uploaded
        if size >= before:
            del self._buf[size - before :]
            self._dirty = True
            return
        if self._upload_id is not None and size > self._origin:
            # the bytes to keep are partly in parts sent by this writer: store them, keep a prefix
            if self._lost_part:
                raise StorageError(f"s3aws: {self._path}: cannot keep {size} bytes, a part was lost")
            self._buf.clear()
            self._settle()
            self._publish()
        self._abort()
        self._reset(size)
        self._dirty = size != self._stored

    def commit(self) -> None:
        if self._dirty:
            self._publish()

    def cancel(self) -> None:
        self._closed = True
        self._abort()
        self._b.delete_keys([self._key])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._dirty:
                self._publish()
        finally:
            self._abort()
